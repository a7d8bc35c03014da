"""Endpoints: registered models deployed as local web services (the seed's ``Model.deploy``).

An endpoint is a row in the workspace database plus a folder ``endpoints/<name>/`` holding its
key file, ready file and log. The service is a detached process running
``mltrain_desktop.serving.server`` in the model's environment (an interpreter with TensorFlow),
or a container on a Docker compute target. It outlives the client that deployed it and is found
again by every client of the workspace.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..core.errors import MLTrainError, UserErrorException
from ..engine.process import is_same_process_alive, process_identity, start_process, stop_tree

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
READY_TIMEOUT_S = 180.0
NO_CODE_FRAMEWORKS = {"TensorFlow", "Keras", None, ""}


class WebserviceException(MLTrainError):
    pass


def endpoint_name_problem(name) -> str | None:
    """Why ``name`` cannot name an endpoint, or None when it can."""
    if not isinstance(name, str) or not name:
        return "Give the endpoint a name (e.g. tf-mnist-svc)."
    if len(name) > 32:
        return f"The name is {len(name)} characters long; an endpoint name has at most 32."
    if not _NAME.match(name):
        bad = sorted({c for c in name if not (c.islower() or c.isdigit() or c == "-") or not c.isascii()})
        what = f" (not allowed: {' '.join(repr(c) for c in bad)})" if bad else ""
        return f"Use lowercase letters, digits and '-' only, starting and ending with a letter or digit{what}."
    return None


_TF_DTYPES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_INT32": "int32",
              "DT_INT64": "int64", "DT_INT8": "int8", "DT_INT16": "int16", "DT_UINT8": "uint8",
              "DT_BOOL": "bool", "DT_STRING": "string"}


def signature_from_metadata(meta: dict) -> dict | None:
    """TF Serving's ``/metadata`` answer -> ``{"inputs": [...], "outputs": [...]}``."""
    try:
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    except (KeyError, TypeError):
        return None

    def specs(part: dict) -> list[dict]:
        out = []
        for name, info in (part or {}).items():
            shape = info.get("tensor_shape") or {}
            dims = None if shape.get("unknown_rank") else [int(d.get("size", -1)) for d in shape.get("dim", [])]
            out.append({"name": name, "dtype": _TF_DTYPES.get(info.get("dtype"), "float32"), "shape": dims})
        return out
    return {"inputs": specs(sig.get("inputs")), "outputs": specs(sig.get("outputs"))}


class InferenceConfig:
    """A custom scoring script (``init()`` and ``run(raw_data)``), the seed's classic deployment."""

    def __init__(self, entry_script: str, source_directory: str | None = None, environment=None):
        self.entry_script = entry_script
        self.source_directory = source_directory
        self.environment = environment

    def script_path(self) -> Path:
        p = Path(self.source_directory or ".") / self.entry_script
        if not p.is_file():
            raise UserErrorException(f"entry script {p} does not exist")
        return p.resolve()


class LocalWebservice:
    @staticmethod
    def deploy_configuration(port: int | None = None, python: str | None = None,
                             max_body_bytes: int = 10 << 20) -> dict:
        if port is not None and not (0 <= int(port) < 65536):
            raise UserErrorException(f"port {port} is not a TCP port number")
        return {"kind": "local", "port": port or 0, "python": python, "max_body_bytes": int(max_body_bytes)}


class Webservice:
    """A deployed endpoint: ``state``, ``scoring_uri``, ``run()``, ``get_logs()``, ``delete()``."""

    def __init__(self, workspace, name: str):
        self.workspace = workspace
        self.name = name
        if self._row() is None:
            known = [r[0] for r in workspace.db.execute("SELECT name FROM endpoints ORDER BY name")]
            raise WebserviceException(f"no endpoint named {name!r} (endpoints: {', '.join(known) or 'none'})")

    # -- stored facts ------------------------------------------------------------------------
    def _row(self) -> dict | None:
        cur = self.workspace.db.execute("SELECT * FROM endpoints WHERE name=?", [self.name])
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row)) if row else None

    @property
    def folder(self) -> Path:
        return self.workspace.path / "endpoints" / self.name

    @property
    def models(self) -> list[str]:
        return json.loads(self._row()["model_ids"])

    @property
    def port(self) -> int | None:
        return self._row()["port"]

    @property
    def state(self) -> str:
        """Healthy, Transitioning, Failed, Unhealthy (process gone) or Stopped."""
        row = self._row()
        if row is None:
            return "Deleted"
        if row["state"] == "Transitioning" and (self.folder / "ready.json").is_file():
            self.wait_for_deployment(timeout_sec=0.5)  # the deploying client may be gone: settle it here
            row = self._row()
        if row["state"] in ("Healthy", "Transitioning") and row["kind"] == "local" and \
                not is_same_process_alive(row["pid"], row["pid_started"]):
            self._set(state="Unhealthy", state_detail="the service process is no longer running; "
                                                      "start it again with Webservice.start()")
            return "Unhealthy"
        if row["state"] in ("Healthy", "Transitioning") and row["kind"] == "docker":
            from .container import container_running
            if not container_running(row):
                self._set(state="Unhealthy", state_detail="the service container is no longer running")
                return "Unhealthy"
        return row["state"]

    @property
    def state_detail(self) -> str:
        return self._row()["state_detail"]

    @property
    def model_name(self) -> str:
        return self.models[0].split(":")[0]

    @property
    def base_uri(self) -> str:
        row = self._row()
        return f"http://{row['host']}:{row['port']}"

    @property
    def scoring_uri(self) -> str:
        return f"{self.base_uri}/v1/models/{self.model_name}:predict"

    def get_keys(self) -> tuple[str, str]:
        k = self._row()["key"]
        return k, k

    def regen_key(self, key: str = "Primary") -> str:
        """Rotates the key; the running service picks it up without a restart."""
        new = secrets.token_urlsafe(32)
        _write_key(self.folder / "key", new)
        self._set(key=new)
        return new

    def _set(self, **fields) -> None:
        fields["updated"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.workspace.transaction() as conn:
            conn.execute(f"UPDATE endpoints SET {cols} WHERE name=?", [*fields.values(), self.name])

    # -- talking to it -------------------------------------------------------------------------
    def _request(self, path: str, body: bytes | None = None, timeout: float = 60.0):
        req = urllib.request.Request(self.base_uri + path, data=body, method="POST" if body is not None else "GET",
                                     headers={"Authorization": f"Bearer {self.get_keys()[0]}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"null")
            except ValueError:
                return exc.code, {"error": exc.reason}
        except (urllib.error.URLError, OSError) as exc:
            raise WebserviceException(f"endpoint {self.name} at {self.base_uri} did not answer: "
                                      f"{getattr(exc, 'reason', exc)} (state {self.state})") from exc

    def run(self, input_data) -> dict:
        """Sends ``input_data`` (a JSON string or a JSON-able object) to :predict; returns the answer."""
        body = input_data.encode() if isinstance(input_data, str) else json.dumps(input_data).encode()
        status, answer = self._request(f"/v1/models/{self.model_name}:predict", body)
        if status >= 400:
            raise WebserviceException(f"endpoint {self.name} answered {status}: "
                                      f"{(answer or {}).get('error', answer) if isinstance(answer, dict) else answer}")
        return answer

    def signature(self) -> dict | None:
        """``{"inputs": [{name, dtype, shape}], "outputs": [...]}`` of the served model, or None (an entry
        script, or a service that does not answer): from the ready file, else from ``/metadata``."""
        try:
            info = json.loads((self.folder / "ready.json").read_text(encoding="utf-8"))
            if isinstance(info, dict) and "signature" in info and "error" not in info:
                return info["signature"]
        except (OSError, ValueError):
            pass
        try:
            status, meta = self._request(f"/v1/models/{self.model_name}/metadata", None, timeout=5)
        except WebserviceException:
            return None
        return signature_from_metadata(meta) if status == 200 else None

    def stats(self) -> dict:
        status, answer = self._request("/v1/stats", None, timeout=5)
        return answer if status == 200 else {}

    def get_logs(self, num_lines: int = 5000) -> str:
        path = self.folder / "service.log"
        if self._row()["kind"] == "docker":
            from .container import container_logs
            return container_logs(self._row(), num_lines)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-num_lines:])

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_sec
        ready = self.folder / "ready.json"
        while time.monotonic() < deadline:
            row = self._row()
            if row["state"] != "Transitioning":
                break
            if ready.is_file():
                info = json.loads(ready.read_text())
                if "error" in info:
                    self._set(state="Failed", state_detail=f"{info.get('stage', 'start')}: {info['error']}")
                elif row["kind"] == "docker":  # the ready file names the port inside the container
                    self._set(state="Healthy", state_detail="")
                else:
                    self._set(state="Healthy", state_detail="", port=info["port"])
                break
            alive = is_same_process_alive(row["pid"], row["pid_started"]) if row["kind"] == "local" else True
            if not alive:
                self._set(state="Failed", state_detail="the service process ended before it was ready; "
                                                       "see get_logs()")
                break
            time.sleep(0.2)
        else:
            self._stop_process()
            self._set(state="Failed", state_detail=f"not ready after {timeout_sec:.0f} s; see get_logs()")
        if show_output:
            print(f"{self.name}: {self.state}. {self.state_detail}\n{self.get_logs(30)}", flush=True)
        return self.state

    # -- lifecycle --------------------------------------------------------------------------
    def _stop_process(self) -> None:
        row = self._row()
        if row["kind"] == "docker":
            from .container import remove_container
            remove_container(row)
        elif is_same_process_alive(row["pid"], row["pid_started"]):
            stop_tree(row["pid"], grace=5.0)

    def stop(self) -> None:
        self._stop_process()
        self._set(state="Stopped", state_detail="stopped by the user")

    def start(self) -> str:
        """Starts the service again (after stop(), a crash or a reboot)."""
        if self.state == "Healthy":
            return "Healthy"
        self._stop_process()
        _launch(self.workspace, self.name)
        return self.wait_for_deployment()

    def delete(self) -> None:
        self._stop_process()
        with self.workspace.transaction() as conn:
            conn.execute("DELETE FROM endpoints WHERE name=?", [self.name])
        shutil.rmtree(self.folder, ignore_errors=True)

    def as_dict(self) -> dict:
        row = self._row()
        state = self.state
        row = self._row()
        config = json.loads(row["config"])
        return {"name": self.name, "state": state, "detail": row["state_detail"], "kind": row["kind"],
                "models": json.loads(row["model_ids"]), "scoring_uri": self.scoring_uri if row["port"] else None,
                "port": row["port"], "created": row["created"], "updated": row["updated"], "pid": row["pid"],
                "compute_target": config.get("compute_target") or "", "entry_script": config.get("entry_script") or ""}

    @staticmethod
    def list(workspace) -> list["Webservice"]:
        return [Webservice(workspace, r[0]) for r in workspace.db.execute("SELECT name FROM endpoints ORDER BY name")]

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, state={self.state!r})"


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    os.replace(tmp, path)


def _server_args(row: dict, model_path: str, folder_in: str, entry_script: str | None) -> list[str]:
    config = json.loads(row["config"])
    name, version = json.loads(row["model_ids"])[0].split(":")
    args = ["-m", "mltrain_desktop.serving.server", "--model-name", name, "--model-version", version,
            "--model-path", model_path, "--key-file", f"{folder_in}/key", "--ready-file", f"{folder_in}/ready.json",
            "--max-body-bytes", str(config.get("max_body_bytes", 10 << 20))]
    if entry_script:
        args += ["--entry-script", entry_script]
    return args


def _launch(workspace, name: str) -> None:
    from ..core.model import Model
    from ..engine.jobkit import jobkit_dir
    ws = Webservice(workspace, name)
    row = ws._row()
    config = json.loads(row["config"])
    model = Model(workspace, id=json.loads(row["model_ids"])[0])
    folder = ws.folder
    folder.mkdir(parents=True, exist_ok=True)
    _write_key(folder / "key", row["key"])
    try:
        (folder / "ready.json").unlink()
    except FileNotFoundError:
        pass
    if config.get("kind") == "docker":
        from .container import start_container
        container_id, port = start_container(workspace, row, model, config, _server_args)
        ws._set(state="Transitioning", state_detail="starting the container", container_id=container_id, port=port,
                pid=None, pid_started=None)
        return
    python = config.get("python") or __import__("mltrain_desktop.engine.interpreters").engine.interpreters.default_python()
    args = [python, *_server_args(row, str(model.local_path), str(folder), config.get("entry_script")),
            "--host", row["host"], "--port", str(config.get("port") or 0)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(jobkit_dir(workspace.path))] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = start_process(args, folder, env, folder / "service.log")
    ws._set(state="Transitioning", state_detail="starting the service process", pid=proc.pid,
            pid_started=process_identity(proc.pid), port=None)


def deploy(workspace, name: str, models: list, inference_config: InferenceConfig | None = None,
           deployment_config: dict | None = None, deployment_target=None, overwrite: bool = False,
           wait: bool = True) -> Webservice:
    from ..core.model import Model
    problem = endpoint_name_problem(name)
    if problem:
        raise UserErrorException(f"endpoint name {name!r} is not valid: {problem}")
    models = list(models or [])
    if len(models) != 1 or not isinstance(models[0], Model):
        raise UserErrorException("deploy() takes a list with exactly one registered Model")
    model = models[0]
    if not model.local_path.exists():
        raise UserErrorException(f"the files of model {model.id} are missing from the registry ({model.local_path})")
    config = dict(deployment_config or LocalWebservice.deploy_configuration())
    if deployment_target is not None and config.get("kind") != "docker":
        from .container import DockerWebservice
        config = DockerWebservice.deploy_configuration(compute_target=getattr(deployment_target, "name",
                                                                              deployment_target))
    if inference_config is not None:
        config["entry_script"] = str(inference_config.script_path())
    elif model.model_framework not in NO_CODE_FRAMEWORKS:
        raise UserErrorException(f"model {model.id} is a {model.model_framework} model: no-code deployment serves "
                                 "TensorFlow models; pass inference_config=InferenceConfig(entry_script=...)")
    if config.get("kind") == "docker":
        from .container import _target_config
        config["target_config"] = _target_config(workspace, config["compute_target"])
        if model.resource_configuration:
            config.setdefault("resources", model.resource_configuration.to_dict())
    exists = workspace.db.execute("SELECT 1 FROM endpoints WHERE name=?", [name]).fetchone()
    if exists:
        if not overwrite:
            raise WebserviceException(f"an endpoint named {name!r} already exists; delete it first, choose another "
                                      "name, or pass overwrite=True")
        Webservice(workspace, name).delete()
    now = time.time()
    import sqlite3
    try:
        with workspace.transaction() as conn:
            conn.execute("INSERT INTO endpoints (name, kind, state, model_ids, config, host, key, created, updated) "
                         "VALUES (?,?,?,?,?,?,?,?,?)",
                         [name, config.get("kind", "local"), "Transitioning", json.dumps([model.id]),
                          json.dumps(config), "127.0.0.1", secrets.token_urlsafe(32), now, now])
    except sqlite3.IntegrityError:
        raise WebserviceException(f"an endpoint named {name!r} already exists (created just now by another "
                                  "client)") from None
    try:
        _launch(workspace, name)
    except Exception as exc:
        Webservice(workspace, name)._set(state="Failed", state_detail=str(exc))
        raise
    ws = Webservice(workspace, name)
    if wait:
        ws.wait_for_deployment()
    return ws
