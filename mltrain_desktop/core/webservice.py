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
import posixpath
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from .errors import MLTrainError, UserErrorException
from .signatures import strict_kwargs
from ..adapters.process import is_same_process_alive, process_identity, start_process, stop_tree
from ..domain.endpoint_state import EndpointState
from ..store import endpoints as endpoint_rows

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
READY_TIMEOUT_S = 180.0
NO_CODE_FRAMEWORKS = {"TensorFlow", "Keras", None, ""}



class DockerWebservice:
    @staticmethod
    @strict_kwargs()
    def deploy_configuration(compute_target: str, port: int | None = None, image: str | None = None,
                             max_body_bytes: int = 10 << 20, auth_enabled: bool = True, **_none) -> dict:
        if not compute_target:
            raise UserErrorException("a Docker deployment needs compute_target, the name of a docker target")
        return {"kind": "docker", "compute_target": compute_target, "port": port or 0, "image": image,
                "max_body_bytes": int(max_body_bytes), "auth_enabled": _auth_flag(auth_enabled)}


def _auth_flag(auth_enabled) -> bool:
    if not isinstance(auth_enabled, bool):
        raise UserErrorException(f"auth_enabled must be True (a key is needed) or False (no key), "
                                 f"not {auth_enabled!r}")
    return auth_enabled


def _target_config(workspace, name: str) -> dict:
    from .compute import ComputeTarget
    t = ComputeTarget(workspace, name)
    if t.kind != "docker":
        raise UserErrorException(f"compute target {name!r} is a {t.kind} target; a container deployment needs "
                                 "a docker target")
    return t.config

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

    @strict_kwargs(ignored=("runtime", "conda_file", "extra_docker_file_steps", "enable_gpu", "description",
                            "base_image", "base_image_registry", "cuda_version"))
    def __init__(self, entry_script: str, source_directory: str | None = None, environment=None, **_azure_only):
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
    @strict_kwargs()
    def deploy_configuration(port: int | None = None, python: str | None = None,
                             max_body_bytes: int = 10 << 20, auth_enabled: bool = False, **_none) -> dict:
        """As on Azure, a local web service needs no key; ``auth_enabled=True`` gives it one."""
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536):
            raise UserErrorException(f"port {port!r} is not a TCP port number (0 to 65535; 0 picks a free one)")
        return {"kind": "local", "port": port or 0, "python": python, "max_body_bytes": int(max_body_bytes),
                "auth_enabled": _auth_flag(auth_enabled)}


# AciWebservice.deploy_configuration arguments that mean nothing on this machine (one warning each).
ACI_ONLY = ("properties", "location", "ssl_enabled", "enable_app_insights", "ssl_cert_pem_file", "ssl_key_pem_file",
            "ssl_cname", "dns_name_label", "primary_key", "secondary_key", "collect_model_data",
            "cmk_vault_base_url", "cmk_key_name", "cmk_key_version", "vnet_name", "subnet_name")


class AciWebservice:
    """The seed's container instance, here a local endpoint: a process, or a container when the
    workspace has a docker compute target (``cpu_cores`` and ``memory_gb`` then limit it)."""

    @staticmethod
    @strict_kwargs(ignored=ACI_ONLY)
    def deploy_configuration(cpu_cores: float | None = None, memory_gb: float | None = None, tags=None,
                             description: str | None = None, auth_enabled: bool = False, port: int | None = None,
                             **_azure_only) -> dict:
        from .resource_configuration import ResourceConfiguration
        try:
            resources = ResourceConfiguration(cpu=cpu_cores, memory_in_gb=memory_gb).to_dict()
        except ValueError as exc:
            raise UserErrorException(str(exc).replace("ResourceConfiguration.cpu", "cpu_cores")
                                     .replace("ResourceConfiguration.memory_in_gb", "memory_gb")) from None
        if tags is not None and not (isinstance(tags, dict) and all(isinstance(k, str) for k in tags)):
            raise UserErrorException("tags must be a dict of str keys, e.g. {'data': 'mnist'}")
        config = LocalWebservice.deploy_configuration(port=port, auth_enabled=auth_enabled)
        config.update(aci=True, tags={k: str(v) for k, v in (tags or {}).items()}, description=description or "")
        if resources:
            config["resources"] = resources
        return config


def _aci_target(workspace, config: dict) -> dict:
    """An ACI configuration runs in a container on the workspace's first usable docker target, if any."""
    if not config.get("aci") or config.get("kind") != "local":
        return config
    from .compute import ComputeTarget
    dockers = [t for t in ComputeTarget.list(workspace).values() if t.kind == "docker"
               and t.provisioning_state == "Succeeded" and t.config.get("image")]
    if not dockers:
        return config
    return {**DockerWebservice.deploy_configuration(compute_target=dockers[0].name), **{
        k: v for k, v in config.items() if k not in ("kind", "python")}, "compute_target": dockers[0].name}


class Webservice:
    """A deployed endpoint: ``state``, ``refresh()``, ``scoring_uri``, ``run()``, ``get_logs()``, ``delete()``.

    Reading a property only reads the database; :meth:`refresh` probes the service (ready file,
    process or container) and records what it finds.
    """

    def __init__(self, workspace, name: str):
        self.workspace = workspace
        self.name = name
        if self._row() is None:
            known = endpoint_rows.names(workspace.db.conn)
            raise WebserviceException(f"no endpoint named {name!r} (endpoints: {', '.join(known) or 'none'})")

    # -- stored facts ------------------------------------------------------------------------
    @property
    def _conn(self):
        return self.workspace.db.conn

    def _row(self) -> dict | None:
        return endpoint_rows.get(self._conn, self.name)

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
    def state(self) -> EndpointState:
        """The state last recorded: Transitioning, Healthy, Unhealthy, Failed, Stopped, or Deleted
        once the endpoint is gone. Reading it changes nothing; :meth:`refresh` looks at the service."""
        row = self._row()
        return EndpointState.DELETED if row is None else EndpointState(row["state"])

    def refresh(self) -> EndpointState:
        """Probes the service and records a change: a Transitioning endpoint whose ready file
        appeared becomes Healthy or Failed (the deploying client may be gone), a live one whose
        process or container vanished becomes Unhealthy. Returns the state now recorded."""
        row = self._row()
        if row is None:
            return EndpointState.DELETED
        if row["state"] == EndpointState.TRANSITIONING and (self.folder / "ready.json").is_file():
            self._settle(row)
            row = self._row()
            if row is None:
                return EndpointState.DELETED
        state = EndpointState(row["state"])
        if state.is_live():
            gone = None
            if row["kind"] == "local" and not is_same_process_alive(row["pid"], row["pid_started"]):
                gone = "the service process is no longer running; start it again with Webservice.start()"
            elif row["kind"] == "docker":
                from ..serving.container import container_running
                if not container_running(row):
                    gone = "the service container is no longer running"
            if gone:
                endpoint_rows.set_state(self._conn, self.name, EndpointState.UNHEALTHY, gone, expect=state)
        return self.state

    def _record(self, new: EndpointState, detail: str = "", expect: EndpointState | None = None,
                **fields) -> bool:
        return endpoint_rows.set_state(self._conn, self.name, new, detail, expect=expect, **fields)

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

    @property
    def auth_enabled(self) -> bool:
        """Whether requests need the key; an endpoint deployed with ``auth_enabled=False`` has none."""
        return bool(self._row()["key"])

    def _keyless_error(self) -> WebserviceException:
        return WebserviceException(
            f"endpoint {self.name} was deployed without auth (auth_enabled=False), so it has no key: send "
            "requests without an Authorization header. To require a key, deploy it again with "
            "AciWebservice.deploy_configuration(auth_enabled=True) (or LocalWebservice.deploy_configuration("
            "auth_enabled=True)) and overwrite=True")

    def get_keys(self) -> tuple[str, str]:
        k = self._row()["key"]
        if not k:
            raise self._keyless_error()
        return k, k

    def regen_key(self, key: str = "Primary") -> str:
        """Rotates the key; the running service picks it up without a restart."""
        if not self.auth_enabled:
            raise self._keyless_error()
        new = secrets.token_urlsafe(32)
        _write_key(self.folder / "key", new)
        endpoint_rows.update(self._conn, self.name, key=new)
        return new

    # -- talking to it -------------------------------------------------------------------------
    def _request(self, path: str, body: bytes | None = None, timeout: float = 60.0):
        headers = {"Content-Type": "application/json"}
        if self.auth_enabled:
            headers["Authorization"] = f"Bearer {self.get_keys()[0]}"
        req = urllib.request.Request(self.base_uri + path, data=body, method="POST" if body is not None else "GET",
                                     headers=headers)
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
                                      f"{getattr(exc, 'reason', exc)} (state {self.refresh()})") from exc

    def run(self, input_data) -> dict:
        """Sends ``input_data`` (JSON text as str or bytes, or a JSON-able dict/list) to :predict; returns the answer."""
        if isinstance(input_data, (bytes, bytearray)):
            body = bytes(input_data)
        elif isinstance(input_data, str):
            body = input_data.encode("utf-8")
        else:
            try:
                body = json.dumps(input_data).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise UserErrorException(f"input_data must be JSON text (str or bytes) or a JSON-able dict or list; "
                                         f"a {type(input_data).__name__} cannot be sent: {exc}") from None
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
            from ..serving.container import container_logs
            return container_logs(self._row(), num_lines)
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-num_lines:])

    def _settle(self, row: dict) -> bool:
        """One look at a Transitioning endpoint: records Healthy or Failed when its ready file is
        there or its process ended; True when it is no longer Transitioning."""
        ready = self.folder / "ready.json"
        if ready.is_file():
            try:
                info = json.loads(ready.read_text())
            except ValueError:     # written by rename, so whole; unreadable means not ours
                info = {"error": f"the ready file {ready} is not JSON", "stage": "start"}
            if "error" in info:
                self._record(EndpointState.FAILED, f"{info.get('stage', 'start')}: {info['error']}",
                             expect=EndpointState.TRANSITIONING)
            elif row["kind"] == "docker":  # the ready file names the port inside the container
                self._record(EndpointState.HEALTHY, expect=EndpointState.TRANSITIONING)
            else:
                self._record(EndpointState.HEALTHY, expect=EndpointState.TRANSITIONING, port=info["port"])
            return True
        if row["kind"] == "local" and not is_same_process_alive(row["pid"], row["pid_started"]):
            self._record(EndpointState.FAILED, "the service process ended before it was ready; see get_logs()",
                         expect=EndpointState.TRANSITIONING)
            return True
        return False

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = READY_TIMEOUT_S) -> EndpointState:
        deadline = time.monotonic() + timeout_sec
        while time.monotonic() < deadline:
            row = self._row()
            if row is None or row["state"] != EndpointState.TRANSITIONING or self._settle(row):
                break
            time.sleep(0.2)
        else:
            self._stop_process()
            self._record(EndpointState.FAILED, f"not ready after {timeout_sec:.0f} s; see get_logs()",
                         expect=EndpointState.TRANSITIONING)
        if show_output:
            print(f"{self.name}: {self.state}. {self.state_detail}\n{self.get_logs(30)}", flush=True)
        return self.state

    # -- lifecycle --------------------------------------------------------------------------
    def _stop_process(self) -> None:
        row = self._row()
        if row is None:
            return
        if row["kind"] == "docker":
            from ..serving.container import remove_container
            remove_container(row)
        elif is_same_process_alive(row["pid"], row["pid_started"]):
            stop_tree(row["pid"], grace=5.0)

    def stop(self) -> None:
        self._stop_process()
        self._record(EndpointState.STOPPED, "stopped by the user")

    def start(self) -> EndpointState:
        """Starts the service again (after stop(), a crash or a reboot)."""
        if self.refresh() == EndpointState.HEALTHY:
            return EndpointState.HEALTHY
        self._stop_process()
        _launch(self.workspace, self.name)
        return self.wait_for_deployment()

    def delete(self) -> None:
        self._stop_process()
        endpoint_rows.delete(self._conn, self.name)
        shutil.rmtree(self.folder, ignore_errors=True)

    def as_dict(self) -> dict:
        """The stored record (call :meth:`refresh` first for a probed state)."""
        row = self._row()
        if row is None:
            raise WebserviceException(f"endpoint {self.name!r} was deleted")
        config = json.loads(row["config"])
        return {"name": self.name, "state": EndpointState(row["state"]), "detail": row["state_detail"],
                "kind": row["kind"], "models": json.loads(row["model_ids"]),
                "scoring_uri": self.scoring_uri if row["port"] else None,
                "port": row["port"], "auth_enabled": bool(row["key"]), "created": row["created"], "updated": row["updated"], "pid": row["pid"],
                "compute_target": config.get("compute_target") or "", "entry_script": config.get("entry_script") or ""}

    @staticmethod
    def list(workspace) -> list["Webservice"]:
        return [Webservice(workspace, n) for n in endpoint_rows.names(workspace.db.conn)]

    def __repr__(self) -> str:
        return f"Webservice(name={self.name!r}, state={str(self.state)!r})"


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
    if entry_script:  # as on Azure, AZUREML_MODEL_DIR is the folder holding the registered model's files
        model_path = (posixpath if model_path.startswith("/mltrain/") else os.path).dirname(model_path)
    args = ["-m", "mltrain_desktop.serving.server", "--model-name", name, "--model-version", version,
            "--model-path", model_path, *(["--key-file", f"{folder_in}/key"] if row["key"] else ["--no-auth"]),
            "--ready-file", f"{folder_in}/ready.json", "--max-body-bytes", str(config.get("max_body_bytes", 10 << 20))]
    if entry_script:
        args += ["--entry-script", entry_script]
    return args


def _launch(workspace, name: str) -> None:
    from .model import Model
    from ..engine.jobkit import jobkit_dir
    ws = Webservice(workspace, name)
    row = ws._row()
    config = json.loads(row["config"])
    model = Model(workspace, id=json.loads(row["model_ids"])[0])
    folder = ws.folder
    folder.mkdir(parents=True, exist_ok=True)
    if row["key"]:
        _write_key(folder / "key", row["key"])
    for stale in ([] if row["key"] else ["key"]) + ["ready.json"]:
        try:
            (folder / stale).unlink()
        except FileNotFoundError:
            pass
    if config.get("kind") == "docker":
        from ..serving.container import start_container
        target = _target_config(workspace, config["compute_target"])
        container_id, port = start_container(workspace, row, model, config, target, _server_args)
        _record_launch(ws, dict(row, container_id=container_id), "starting the container",
                       container_id=container_id, port=port, pid=None, pid_started=None)
        return
    from ..adapters.interpreters import default_python
    python = config.get("python") or default_python()
    args = [python, *_server_args(row, str(model.local_path), str(folder), config.get("entry_script")),
            "--host", row["host"], "--port", str(config.get("port") or 0)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(jobkit_dir(workspace.path))] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = start_process(args, folder, env, folder / "service.log")
    _record_launch(ws, dict(row, kind="local", pid=proc.pid), "starting the service process",
                   pid=proc.pid, pid_started=process_identity(proc.pid), port=None)


def _record_launch(ws: Webservice, started: dict, detail: str, **fields) -> None:
    """Records the service just started as Transitioning; if another client moved or deleted the
    endpoint meanwhile, stops that service again instead and says so."""
    if ws._record(EndpointState.TRANSITIONING, detail, **fields):
        return
    if started.get("kind") == "docker":
        from ..serving.container import remove_container
        remove_container(started)
    else:
        stop_tree(started["pid"], grace=5.0)
    raise WebserviceException(f"endpoint {ws.name} changed while it was being started (it is {ws.state} now); "
                              "the service just started was stopped again")


def deploy(workspace, name: str, models: list, inference_config: InferenceConfig | None = None,
           deployment_config: dict | None = None, deployment_target=None, overwrite: bool = False,
           wait: bool = True) -> Webservice:
    from .model import Model
    problem = endpoint_name_problem(name)
    if problem:
        raise UserErrorException(f"endpoint name {name!r} is not valid: {problem}")
    models = list(models or [])
    if len(models) != 1 or not isinstance(models[0], Model):
        raise UserErrorException("deploy() takes a list with exactly one registered Model")
    model = models[0]
    if not model.local_path.exists():
        raise UserErrorException(f"the files of model {model.id} are missing from the registry ({model.local_path})")
    # no deployment_config: a keyed local process, as before; an explicit configuration says its auth_enabled
    config = _aci_target(workspace, dict(deployment_config or LocalWebservice.deploy_configuration(auth_enabled=True)))
    if deployment_target is not None and config.get("kind") != "docker":
        config = DockerWebservice.deploy_configuration(compute_target=getattr(deployment_target, "name",
                                                                              deployment_target),
                                                       auth_enabled=config.get("auth_enabled", True))
    if inference_config is not None:
        config["entry_script"] = str(inference_config.script_path())
    elif model.model_framework not in NO_CODE_FRAMEWORKS:
        raise UserErrorException(f"model {model.id} is a {model.model_framework} model: no-code deployment serves "
                                 "TensorFlow models; pass inference_config=InferenceConfig(entry_script=...)")
    if config.get("kind") == "docker":
        config["target_config"] = _target_config(workspace, config["compute_target"])
        if model.resource_configuration:
            config.setdefault("resources", model.resource_configuration.to_dict())
    conn = workspace.db.conn
    if endpoint_rows.exists(conn, name):
        if not overwrite:
            raise WebserviceException(f"an endpoint named {name!r} already exists; delete it first, choose another "
                                      "name, or pass overwrite=True")
        Webservice(workspace, name).delete()
    if not endpoint_rows.insert(conn, name, config.get("kind", "local"), [model.id], config,
                                key=secrets.token_urlsafe(32) if config.get("auth_enabled", True) else ""):
        raise WebserviceException(f"an endpoint named {name!r} already exists (created just now by another "
                                  "client)")
    try:
        _launch(workspace, name)
    except Exception as exc:
        endpoint_rows.set_state(conn, name, EndpointState.FAILED, str(exc))
        raise
    ws = Webservice(workspace, name)
    if wait:
        ws.wait_for_deployment()
    return ws
