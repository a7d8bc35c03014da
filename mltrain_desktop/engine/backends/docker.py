"""The Docker backend: the job runs in a container on the compute target's engine.

prepare: engine reachable, dataset folders present, GPU support when use_gpu, base image
present, environment image found in cache or built (log streamed, cancel honoured).
launch: one container per run, made by the pure :func:`container_run_kwargs` over the adapter's
hardened builder (``adapters.docker.containers``: uid:gid, init, no-new-privileges, log rotation,
limits): the run folder at /mltrain/run (read-write; the job's cwd is its snapshot/), the job kit
read-only at /mltrain/jobkit on PYTHONPATH, each dataset input read-only at /mltrain/inputs/<name>,
labels naming the workspace and the run as owner, GPUs by device request, no host network unless
the target asks.
While it runs, the adapter's log pump streams the container's log into logs/driver.log and keeps
a cursor in the run folder, so a supervisor that restarts continues where the last one stopped.
Cancel stops the container (grace period, then kill) and removes it. An engine that restarts
under a run fails it saying so; one that stops answering for a minute fails it too.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path, PurePosixPath

from ...adapters.docker import labels as lb
from ...adapters.docker.cleanup import clean_containers
from ...adapters.docker.containers import container_kwargs
from ...adapters.docker.engine import ENGINE_PATIENCE_S, EngineSilence, for_each_engine
from ...adapters.docker.logs import LogCursor, LogPump, parse_log_timestamp
from ...store.runs import cancel_requested_at
from ..rank_launcher import script_argv
from .base import Backend, JobContext, JobHandle, PrepareError
from .paths import mapped_arguments, path_pairs
from .paths import map_path as to_container_path

RUN_DIR = "/mltrain/run"
JOBKIT_DIR = "/mltrain/jobkit"
INPUTS_DIR = "/mltrain/inputs"
LABEL_WORKSPACE, LABEL_RUN, LABEL_TARGET, LABEL_ROLE = lb.WORKSPACE, lb.RUN, lb.TARGET, lb.ROLE
CURSOR_FILE = ".docker-log-cursor"
REMOVE_PATIENCE_S = 30.0  # an engine coming back from a restart answers within seconds
# Runs python3 (or python) from the image whatever its ENTRYPOINT, with a clear error if none.
_LAUNCHER = ('py="$(command -v python3 || command -v python)" || '
             '{ echo "mltrain: the image has no python3 or python on PATH" >&2; exit 127; }; exec "$py" "$@"')


# -- pure helpers ------------------------------------------------------------------------------

def gpu_device_requests(spec) -> list:
    """Device requests for ``--gpus``-style GPU access (pure).

    spec: "all"/True/None -> every GPU (count=-1); an int N -> N GPUs; a list of device ids or
    UUIDs (or a "0,1" string) -> those GPUs. Capabilities [["gpu"]], as ``docker run --gpus``
    sends them. The CLI leaves the driver empty and the engine picks the driver offering the
    "gpu" capability, which is the NVIDIA one; naming "nvidia" selects that same driver and,
    where it is missing, makes the engine's error name it.
    """
    import docker
    from ...adapters.docker.engine import normalize_gpus
    g = normalize_gpus(spec)
    common = {"driver": "nvidia", "capabilities": [["gpu"]]}
    if g == "all":
        return [docker.types.DeviceRequest(count=-1, **common)]
    if isinstance(g, int):
        return [docker.types.DeviceRequest(count=g, **common)]
    return [docker.types.DeviceRequest(device_ids=list(g), **common)]


def gpu_pinning(spec) -> str:
    """What a run's GPU request pins, written like CUDA_VISIBLE_DEVICES: "all", "count=2" or "0,1"."""
    from ...adapters.docker.engine import normalize_gpus
    g = normalize_gpus(spec)
    if g == "all":
        return "all"
    if isinstance(g, int):
        return f"count={g}"
    return ",".join(g)


def container_name(run_id: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", run_id)
    return f"mltrain-{safe}"[:200]


def path_map(ctx: JobContext) -> list[tuple[str, str]]:
    """(host path, container path) pairs, most specific first."""
    return path_pairs(ctx, RUN_DIR, JOBKIT_DIR, INPUTS_DIR)


def container_arguments(ctx: JobContext, mapping: list[tuple[str, str]]) -> list[str]:
    return mapped_arguments(ctx, mapping, INPUTS_DIR)


def _parse_shm(value) -> str | int:
    if isinstance(value, int):
        return value
    return str(value).strip().lower().replace(" ", "")


def container_run_kwargs(ctx: JobContext, image: str, *, uid: int | None = None, gid: int | None = None,
                         config: dict | None = None) -> dict:
    """The ``containers.create`` keyword arguments for a run (pure: nothing is started).

    Limits come from the run's ``environment.docker`` (shm_size, cpus, memory_gb) over the
    target's config; GPUs only when the run has use_gpu.
    """
    import docker
    config = dict(config if config is not None else ctx.target.get("config") or {})
    run_docker = ((ctx.spec.get("environment") or {}).get("docker") or {})
    mapping = path_map(ctx)
    env = {k: to_container_path(str(v), mapping) for k, v in ctx.environment_variables.items()}
    user_pp = env.get("PYTHONPATH")
    env["PYTHONPATH"] = JOBKIT_DIR + (f":{user_pp}" if user_pp else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("HOME", "/tmp")
    env.setdefault("MLTRAIN_OUTPUTS_DIR", f"{RUN_DIR}/outputs")
    mounts = [
        docker.types.Mount(RUN_DIR, str(ctx.run_dir), type="bind", read_only=False),
        docker.types.Mount(JOBKIT_DIR, str(ctx.jobkit_dir), type="bind", read_only=True),
    ]
    for name, info in sorted(ctx.inputs.items()):
        mounts.append(docker.types.Mount(f"{INPUTS_DIR}/{name}", str(info["path"]), type="bind", read_only=True))
    snapshot_rel = PurePosixPath(Path(ctx.snapshot_dir).relative_to(ctx.run_dir).as_posix())
    labels = lb.run_labels(ctx.workspace_dir, ctx.run_id, ctx.target.get("name", ""), "job")
    kwargs = container_kwargs(
        image, labels, uid=uid, gid=gid,
        cpus=run_docker.get("cpus") or config.get("cpus"),
        memory_gb=run_docker.get("memory_gb") or config.get("memory_gb"),
        name=container_name(ctx.run_id),
        entrypoint=["/bin/sh", "-c", _LAUNCHER, "mltrain-job"],
        command=script_argv(ctx.entry_script, container_arguments(ctx, mapping), bool(ctx.spec.get("compat"))),
        working_dir=f"{RUN_DIR}/{snapshot_rel}",
        environment=env, mounts=mounts, tty=False, stdin_open=False,
        shm_size=_parse_shm(run_docker.get("shm_size") or config.get("shm_size") or "2g"))
    network = run_docker.get("network") or config.get("network")
    if network:
        kwargs["network_mode"] = network
    if ctx.use_gpu:
        gpus = run_docker.get("gpus") or config.get("gpus") or "all"
        kwargs["device_requests"] = gpu_device_requests(gpus)
        env["MLTRAIN_GPUS"] = gpu_pinning(gpus)
    return kwargs


# -- the job handle --------------------------------------------------------------------------------

class DockerJobHandle(JobHandle):
    def __init__(self, api, container_id: str, name: str, ctx: JobContext, image: str,
                 gpus: str | None = None, engine: str = ""):
        self.api = api
        self.container_id = container_id
        self.name = name
        self.image = image
        self.gpus = gpus
        self.engine = engine
        self.log_file = Path(ctx.logs_dir) / "driver.log"
        self.cursor = LogCursor(Path(ctx.run_dir) / CURSOR_FILE)
        self.ctx_log = ctx.log
        self._exit: int | None = None
        self._detail: str | None = None
        self._canceled = False
        self._engine_went_away = False  # a removal found the engine gone: it restarted under the run
        self._next_inspect = 0.0
        self._silence = EngineSilence(ctx.log)
        self.pump = self._start_pump()

    def _start_pump(self) -> LogPump:
        pump = LogPump(self.api, self.container_id, self.log_file, self.cursor)
        pump.start()
        return pump

    def _inspect(self) -> dict | None | bool:
        """The container's state; None when it is gone; False when the engine did not answer."""
        import docker
        try:
            info = self.api.inspect_container(self.container_id)
        except docker.errors.NotFound:
            return None
        except Exception as exc:  # noqa: BLE001 - the engine restarting, a network hiccup
            self._silence.failed(exc)
            return False
        self._silence.answered()
        return info

    def poll(self) -> int | None:
        if self._exit is not None:
            return self._exit
        now = time.monotonic()
        if now < self._next_inspect:
            return None
        self._next_inspect = now + 0.5
        info = self._inspect()
        if info is False:
            if not self._silence.too_long():
                return None
            self._detail = self._silence.lost_detail(self.engine, f"the run's container {self.name}")
            self.ctx_log(f"[mltrain] {self._detail}")
            self._exit = -1
            return self._exit
        if info is None:
            self.pump.join(timeout=5)
            self.cursor.close()
            self._detail = (f"the run's container {self.name} disappeared while the run was going on "
                            "(removed from outside, e.g. 'docker rm -f'); its output up to then is in driver.log")
            self.ctx_log(f"[mltrain] {self._detail}")
            self._exit = -1
            return self._exit
        state = info.get("State") or {}
        if state.get("Status") not in ("exited", "dead"):
            if not self.pump.is_alive():  # the log stream ended early: follow again from the cursor
                self.pump = self._start_pump()
            return None
        self.pump.join(timeout=15)
        self.pump.drain()
        self.cursor.close()
        rc = int(state.get("ExitCode", -1))
        if state.get("OOMKilled"):
            limit = (info.get("HostConfig") or {}).get("Memory") or 0
            self._detail = (f"the container ran out of memory and was killed (exit code {rc}"
                            + (f", memory limit {limit / 2**30:.1f} GiB" if limit else "")
                            + "); raise memory_gb on the target or use less memory")
        removed = self._remove()
        stopped = rc in (137, 143) and not self._canceled and not state.get("OOMKilled")
        if stopped and (self._silence.was_silent or not removed or self._engine_went_away):
            # killed while the engine went down
            self._detail = (f"the Docker engine restarted (or stopped) while the run's container {self.name} "
                            f"ran, and the container ended with it (exit code {rc}); submit the run again "
                            "once 'docker info' answers")
        elif stopped:
            sig = "SIGKILL" if rc == 137 else "SIGTERM"
            self._detail = (f"the container {self.name} was stopped from outside ({sig}, exit code {rc}), "
                            "e.g. by 'docker kill' or 'docker stop'")
        if self._detail:
            self.ctx_log(f"[mltrain] {self._detail}")
        self._exit = rc
        return rc

    def _remove(self, patience_s: float = REMOVE_PATIENCE_S) -> bool:
        """Removes the container, trying again while the engine does not answer or refuses (it may be
        coming back from a restart) for up to ``patience_s``; False when it could not (the next
        clean-up removes it)."""
        import docker
        deadline = time.monotonic() + patience_s
        said = None
        while True:
            try:
                self.api.remove_container(self.container_id, force=True)
                return True
            except docker.errors.NotFound:
                return True
            except docker.errors.APIError as exc:
                if "already in progress" in str(exc):
                    return True
                why = str(exc)
            except Exception as exc:  # noqa: BLE001 - requests' ConnectionError and friends: the engine went away
                why = f"the Docker engine does not answer ({type(exc).__name__}: {exc})"
                self._engine_went_away = True
            if said is None:
                self.ctx_log(f"[mltrain] could not remove container {self.name} yet: {why}; trying again for "
                             f"{patience_s:.0f} s")
                said = why
            if time.monotonic() >= deadline:
                self.ctx_log(f"[mltrain] could not remove container {self.name}: {why}")
                return False
            time.sleep(1.0)

    def cancel(self, grace_seconds: float = 5.0) -> None:
        """Stops the container (the stop signal, ``grace_seconds``, then KILL) and removes it; idempotent."""
        import docker
        self._canceled = True
        try:
            self.api.stop(self.container_id, timeout=max(0, int(round(grace_seconds))))
        except docker.errors.NotFound:
            pass
        except Exception:  # noqa: BLE001 - an API error or an engine that does not answer
            try:
                self.api.kill(self.container_id)
            except Exception:  # noqa: BLE001
                pass
        self.pump.join(timeout=10)
        self.cursor.close()
        try:
            self._remove(patience_s=5.0)  # a cancel must not hang on an engine that is gone
        except Exception as exc:  # noqa: BLE001
            self.ctx_log(f"[mltrain] could not remove container {self.name}: {exc}")

    def state(self) -> dict:
        return {"container_id": self.container_id, "container_name": self.name, "image": self.image,
                "engine": self.engine, "gpus": self.gpus}

    def failure_detail(self) -> str | None:
        if not self._detail:
            return None
        from ..supervisor import error_tail
        tail = error_tail(self.log_file, 15)
        return self._detail + (f"\nlast lines of the log:\n{tail}" if tail else "")


# -- the backend -----------------------------------------------------------------------------------

def _cancel_checker(ctx: JobContext):
    """True once the run's cancel was asked: ctx.cancel_requested when the supervisor provides it,
    or the run's row in the workspace database (read-only, at most every half second)."""
    fn = getattr(ctx, "cancel_requested", None)
    db = Path(ctx.workspace_dir) / "workspace.db"
    last = {"at": 0.0, "value": False}

    def from_db() -> bool:
        now = time.monotonic()
        if now - last["at"] < 0.5 or not db.exists():
            return last["value"]
        last["at"] = now
        seen = cancel_requested_at(db, ctx.run_id)
        if seen is not None:
            last["value"] = seen
        return last["value"]

    def check() -> bool:
        if callable(fn):
            try:
                if fn():
                    return True
            except Exception:  # noqa: BLE001 - fall back to the database
                pass
        return from_db()
    return check


class DockerBackend(Backend):
    kind = "docker"

    def __init__(self, target: dict):
        self.target = target
        self.config: dict = dict(target.get("config") or {})
        self._api = None
        self.uid: int | None = None  # the container's user; None: this process's uid:gid
        self.gid: int | None = None
        self.image: str | None = None
        self.environment = None  # docker_images.EnvironmentImage after prepare

    # -- engine --------------------------------------------------------------------------------
    @property
    def api(self):
        if self._api is None:
            from ...adapters.docker.engine import DockerEngineError, api_client
            try:
                self._api = api_client(self.config, timeout=120)
            except DockerEngineError as exc:
                raise PrepareError(f"compute target {self.target.get('name')!r}: {exc}") from exc
        return self._api

    def _engine(self) -> str:
        from ...adapters.docker.engine import engine_url
        return engine_url(self.config)

    # -- stages --------------------------------------------------------------------------------
    def check_inputs(self, ctx: JobContext) -> None:
        for name, info in sorted(ctx.inputs.items()):
            path = Path(info.get("path", ""))
            if not path.is_dir():
                what = f"dataset {info['dataset']} version {info.get('version')}" if info.get("dataset") else "a dataset"
                raise PrepareError(
                    f"dataset input {name!r} ({what}): its folder {path} no longer exists, so it cannot be "
                    "mounted into the container. Register the dataset again or submit the run with a version "
                    "whose files are present.")

    def check_gpu(self, ctx: JobContext) -> str | None:
        if not ctx.use_gpu:
            return None
        from ...adapters.docker.engine import NVIDIA_TOOLKIT_HINT, is_local_engine, nvidia_support
        info = self.api.info()
        ok, how = nvidia_support(info, is_local_engine(self.config))
        if not ok:
            raise PrepareError(
                f"use_gpu=True but the Docker engine of compute target {self.target.get('name')!r} "
                f"({self._engine()}) has no GPU support ({how}). To run on GPUs, {NVIDIA_TOOLKIT_HINT}; "
                "or submit with use_gpu=False.")
        gpus = self.config.get("gpus") or "all"
        ctx.log(f"[mltrain] GPUs: {gpu_pinning(gpus)} ({how})")
        return gpu_pinning(gpus)

    def prepare(self, ctx: JobContext) -> None:
        from ...adapters.docker.engine import DEFAULT_IMAGE, is_local_engine
        from ...adapters.docker.images import BuildCanceled, ensure_environment_image, environment_spec
        api = self.api
        if not is_local_engine(self.config):
            ctx.log(f"[mltrain] remote engine {self._engine()}: the run folder {ctx.run_dir} must exist at the "
                    "same path on that machine (a shared file system)")
        self.check_inputs(ctx)
        self.check_gpu(ctx)
        spec = environment_spec(ctx.spec, self.config, DEFAULT_IMAGE)
        try:
            env = ensure_environment_image(
                api, spec, log=ctx.log, ca_certificates=self.config.get("ca_certificates"),
                pip_index_url=self.config.get("pip_index_url"), network=self.config.get("network"),
                cancelled=_cancel_checker(ctx), lock_dir=Path(ctx.workspace_dir) / "envs")
        except BuildCanceled:
            ctx.log("[mltrain] environment build canceled; nothing was left behind")
            return
        self.environment = env
        self.image = env.tag

    def environment_record(self) -> dict | None:
        """After prepare: the environments-table row for the image built or found (None: base image as is)."""
        env = self.environment
        if env is None or not env.env_hash:
            return None
        return {"hash": env.env_hash[:16], "kind": "docker", "spec": json.dumps(env.spec.to_dict(), sort_keys=True),
                "location": env.tag, "state": "Ready", "image_id": env.image_id, "cached": env.cached}

    def _create(self, client, kwargs: dict):
        """Creates a container, turning the engine's errors into PrepareErrors that say what to do."""
        import docker
        try:
            return client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise PrepareError(f"the image {self.image!r} is not on the Docker engine: {exc.explanation}") from exc
        except docker.errors.APIError as exc:
            msg = str(exc.explanation or exc)
            if "bind source path does not exist" in msg:
                raise PrepareError(
                    f"the Docker engine at {self._engine()} cannot see this run's folders ({msg}). A remote "
                    "engine needs the workspace on a file system it shares at the same path; use a local "
                    "engine or share the workspace folder.") from exc
            raise PrepareError(f"creating the container {kwargs.get('name', '')} failed: {msg}") from exc

    def _remove_stale(self, name: str, ctx: JobContext) -> None:
        """A container with this run's name left by an earlier launch attempt of the same run."""
        import docker
        try:
            info = self.api.inspect_container(name)
        except docker.errors.NotFound:
            return
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get(LABEL_RUN) == ctx.run_id:
            ctx.log(f"[mltrain] removing the stale container {name} of an earlier attempt")
            self.api.remove_container(info["Id"], force=True)

    def _record_tags(self, ctx: JobContext, tags: dict[str, str]) -> None:
        """Records facts about the container as run tags, through the run's own metrics file."""
        path = Path(ctx.logs_dir) / "metrics.jsonl"
        with open(path, "a", encoding="utf-8") as fh:
            for k, v in tags.items():
                fh.write(json.dumps({"k": "t", "n": k, "v": v, "t": time.time()}) + "\n")

    def launch(self, ctx: JobContext) -> JobHandle:
        import docker
        if self.image is None:
            self.prepare(ctx)
            if self.image is None:
                raise PrepareError("the environment image was not prepared (the build was canceled)")
        api = self.api
        kwargs = container_run_kwargs(ctx, self.image, uid=self.uid, gid=self.gid, config=self.config)
        name = kwargs["name"]
        self._remove_stale(name, ctx)
        gpus = kwargs["environment"].get("MLTRAIN_GPUS")
        tags = {"docker.image": self.image, "docker.container": name}
        if gpus:
            tags["docker.gpus"] = gpus
        self._record_tags(ctx, tags)
        from ...adapters.docker.engine import client_over
        container = self._create(client_over(api), kwargs)
        try:
            container.start()
        except docker.errors.APIError as exc:
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass
            msg = str(exc.explanation or exc)
            if "device driver" in msg or "nvidia" in msg.lower():
                from ...adapters.docker.engine import NVIDIA_TOOLKIT_HINT
                raise PrepareError(f"the Docker engine could not give the container GPUs ({msg}). "
                                   f"To run on GPUs, {NVIDIA_TOOLKIT_HINT}; or submit with use_gpu=False.") from exc
            raise PrepareError(f"starting the container failed: {msg}") from exc
        ctx.log(f"[mltrain] container {name} ({container.id[:12]}) started from {self.image}: "
                f"{ctx.entry_script} in {kwargs['working_dir']} as user {kwargs['user']}"
                + (f", GPUs {gpus}" if gpus else ""))
        return DockerJobHandle(api, container.id, name, ctx, self.image, gpus, self._engine())

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        import docker
        api = self.api
        info = None
        cid = state.get("container_id")
        if cid:
            try:
                info = api.inspect_container(cid)
            except docker.errors.NotFound:
                info = None
        if info is None:
            found = find_run_containers(api, ctx.workspace_dir, ctx.run_id)
            info = found[0] if found else None
        if info is None:
            ctx.log(f"[mltrain] the run's container {state.get('container_name') or cid or ''} is gone "
                    "(removed while no supervisor watched it)")
            return None
        name = (info.get("Name") or "").lstrip("/") or state.get("container_name") or info["Id"][:12]
        return DockerJobHandle(api, info["Id"], name, ctx, state.get("image") or info.get("Image", ""),
                               state.get("gpus"), self._engine())


# -- finding containers again ---------------------------------------------------------------------

def find_run_containers(api, workspace_dir, run_id: str | None = None) -> list[dict]:
    """Inspect dicts of the containers labelled for this workspace (and run), running or not."""
    out = []
    for c in api.containers(all=True, filters=lb.workspace_filters(workspace_dir, {lb.RUN: run_id} if run_id else None)):
        try:
            out.append(api.inspect_container(c["Id"]))
        except Exception:  # noqa: BLE001 - removed meanwhile
            continue
    return out


def clean_orphans(workspace_dir, live_run_ids, config: dict | None = None, api=None) -> list[str]:
    """Removes this workspace's run containers whose run is not in ``live_run_ids``; returns their names.

    Endpoint containers and unlabelled ones are kept (the clean-up of ``adapters.docker.cleanup``).
    An engine that does not answer removes nothing (returns []).
    """
    live = set(live_run_ids)

    def over(kind: str, owner_id: str) -> bool:
        return kind == lb.OWNER_RUN and owner_id not in live
    if api is None:
        return for_each_engine([config or {}], lambda a: clean_containers(a, workspace_dir, over), timeout=15)
    return clean_containers(api, workspace_dir, over)


__all__ = ["DockerBackend", "DockerJobHandle", "container_run_kwargs", "gpu_device_requests", "gpu_pinning",
           "clean_orphans", "find_run_containers", "for_each_engine", "parse_log_timestamp", "LogCursor",
           "LogPump", "EngineSilence", "ENGINE_PATIENCE_S", "container_name"]
