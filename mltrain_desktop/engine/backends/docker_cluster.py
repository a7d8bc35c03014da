"""Distributed jobs on a Docker target: one container per MPI rank or parameter-server task.

The run gets a bridge network of its own, ``mltrain-<run>``, created at launch and removed when
the run ends (every path: success, failure, cancel, a failed launch, orphan cleanup). Each rank
or task is a container on it, named ``mltrain-<run>-rank-1`` / ``...-worker-0`` /
``...-chief-0`` (its host name too), made by the single-container backend's pure
:func:`~.docker.container_run_kwargs` (mounts, user, limits, GPUs, labels) plus the label
``mltrain.task=<type>:<index>``. Each container runs the same rank launcher as local jobs::

    python3 -m mltrain_desktop.engine.rank_launcher --logs-dir /mltrain/run/logs
        (--rank R | --task-type T --task-index I) -- script.py args

so the per-rank logs, metrics files and status records land in the mounted run folder exactly
as locally, and the launcher's prefixed output (``[worker 0] ...``) is streamed from every
container into ``driver.log``. ``TF_CONFIG`` addresses are ``<container name>:2222``: each
container has its own network namespace, so every task uses the same port, nothing is
published on the host, and only the run's own containers can reach the servers.

MPI-configured jobs run one container per rank with no ``mpirun``: each rank gets its rank
(``MLTRAIN_RANK``) and a ``TF_CONFIG`` worker list, which is what
``tf.distribute.MultiWorkerMirroredStrategy`` needs. Horovod needs mpirun between its ranks and
therefore the local target.

The handle lists the run's containers on every poll (one engine call), and reads an exited
container's exit code once. MPI: the run fails as soon as one rank ends non-zero (or its
container is killed or removed), and succeeds when all ranks ended with 0. Parameter server:
the result is the chief's; when the chief ends, or any task ends first, every other container
is stopped. Stopping is SIGTERM to every container at once (the launcher forwards it, with
SIGINT, to the script), a grace period, then SIGKILL; then the containers and the network are
removed. On a local engine the handle also enforces the startup deadline by reading each
container's ``/proc/<pid>/net/tcp`` (is the task's gRPC server listening yet?).
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from pathlib import Path, PurePosixPath

from .. import rank_launcher as rl
from ...adapters import tf_cluster as tfc
from .base import JobContext, JobHandle, PrepareError
from .docker import (ENGINE_PATIENCE_S, LABEL_ROLE, LABEL_RUN, LABEL_TARGET, LABEL_WORKSPACE, RUN_DIR, DockerBackend,
                     EngineSilence, LogCursor, LogPump, container_run_kwargs, parse_log_timestamp)
from .mpi import FAILURE_GRACE_S, startup_timeout

LABEL_TASK = "mltrain.task"
TASK_PORT = 2222                 # every task's gRPC port, inside its own container
CURSOR_PREFIX = ".docker-log-cursor."
POLL_EVERY_S = 0.25
PORT_CHECK_EVERY_S = 0.5
EARLY_EXIT_CONFIRM_S = 1.0
CHIEF = "chief_0"
KIND_MPI = "docker_mpi"
KIND_PS = "docker_parameter_server"
_SLUG_MAX = 40


# -- names and specs (pure) -------------------------------------------------------------------

def run_slug(run_id: str) -> str:
    """The run id as a DNS label part: lower case, ``[a-z0-9-]``, at most 40 characters.

    A longer id is cut and given 8 hex digits of its hash, so that names stay distinct.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-") or "run"
    if len(slug) > _SLUG_MAX:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
        slug = slug[: _SLUG_MAX - 9].rstrip("-") + "-" + digest
    return slug


def network_name(run_id: str) -> str:
    return f"mltrain-{run_slug(run_id)}"


def task_container_name(run_id: str, tag: str) -> str:
    """``mltrain-<run>-worker-0``: a valid host name (at most 63 characters, no underscores)."""
    return f"mltrain-{run_slug(run_id)}-{tag.replace('_', '-')}"


def mpi_tasks(distribution: dict | None) -> list[tuple[None, int]]:
    """The ranks of an MPI-configured job: node_count x process_count_per_node, all on one engine."""
    dist = distribution or {}
    nodes, ppn = dist.get("node_count", 1), dist.get("process_count_per_node", 1)
    for name, v in (("process_count_per_node", ppn), ("node_count", nodes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PrepareError(f"{name} must be a whole number of at least 1, got {v!r}")
    return [(None, r) for r in range(nodes * ppn)]


def ps_tasks(distribution: dict | None) -> list[tuple[str, int]]:
    """The tasks of a parameter-server job in start order: ps, workers, then the chief."""
    dist = distribution or {}
    workers, ps = dist.get("worker_count", 1), dist.get("parameter_server_count", 1)
    for name, v in (("worker_count", workers), ("parameter_server_count", ps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PrepareError(f"{name} must be a whole number of at least 1, got {v!r}")
    return [("ps", i) for i in range(ps)] + [("worker", i) for i in range(workers)] + [("chief", 0)]


def cluster_spec(run_id: str, tasks: list[tuple[str | None, int]], port: int = TASK_PORT) -> dict:
    """The TensorFlow cluster: every address is ``<container name>:<port>``."""
    def addr(ttype, index):
        return tfc.address(task_container_name(run_id, rl.task_tag(ttype, index)), port)

    if all(t is None for t, _ in tasks):
        return tfc.mpi_cluster([addr(None, i) for _, i in tasks])
    by_type: dict[str, list[int]] = {}
    for t, i in tasks:
        by_type.setdefault(t, []).append(i)
    return tfc.ps_cluster(addr("chief", 0), [addr("worker", i) for i in by_type.get("worker", [])],
                          [addr("ps", i) for i in by_type.get("ps", [])])


def run_labels(ctx: JobContext, role: str) -> dict:
    return {LABEL_WORKSPACE: str(Path(ctx.workspace_dir).resolve()), LABEL_RUN: ctx.run_id,
            LABEL_TARGET: str(ctx.target.get("name", "")), LABEL_ROLE: role}


def network_create_kwargs(ctx: JobContext) -> dict:
    """The ``create_network`` keyword arguments of the run's own bridge network."""
    return {"name": network_name(ctx.run_id), "driver": "bridge", "check_duplicate": True,
            "labels": run_labels(ctx, "network")}


def task_container_kwargs(ctx: JobContext, image: str, task_type: str | None, index: int, cluster: dict, *,
                          token: str, world_size: int | None = None, uid: int | None = None,
                          gid: int | None = None, config: dict | None = None) -> dict:
    """The ``containers.create`` keyword arguments of one rank or task (pure: nothing is started)."""
    tag = rl.task_tag(task_type, index)
    env = dict(ctx.environment_variables)
    env[rl.ENV_CLUSTER] = json.dumps(cluster, separators=(",", ":"))
    env[rl.ENV_TOKEN] = token
    if world_size is not None:
        env["MLTRAIN_WORLD_SIZE"] = str(world_size)
    kwargs = container_run_kwargs(ctx.replace(environment_variables=env), image,
                                  uid=uid, gid=gid, config=config)
    logs_rel = PurePosixPath(Path(ctx.logs_dir).relative_to(ctx.run_dir).as_posix())
    who = ["--rank", str(index)] if task_type is None else ["--task-type", task_type, "--task-index", str(index)]
    # kwargs["command"] is [script, *arguments] with host paths already mapped into the container
    kwargs["command"] = ["-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", f"{RUN_DIR}/{logs_rel}",
                         *who, "--", *kwargs["command"]]
    name = task_container_name(ctx.run_id, tag)
    kwargs["name"] = name
    kwargs["hostname"] = name
    kwargs.pop("network_mode", None)  # the run's own network, whatever the target's `network` says
    kwargs["network"] = network_name(ctx.run_id)
    kwargs["labels"] = {**kwargs["labels"], LABEL_ROLE: "task", LABEL_TASK: f"{task_type or 'rank'}:{index}"}
    return kwargs


def _finished_at(text: str | None) -> float | None:
    """Seconds since the epoch of a container's ``State.FinishedAt`` (None when unset)."""
    if not text:
        return None
    ns, _ = parse_log_timestamp((text + " ").encode())
    if ns is None or ns <= 0:
        return None
    return ns / 1e9


def _names(tags) -> str:
    return ", ".join(rl.task_name(t) for t in tags)


# -- the backends -----------------------------------------------------------------------------

class _DockerClusterBackend(DockerBackend):
    state_kind = "abstract"

    def tasks(self, ctx: JobContext) -> list[tuple[str | None, int]]:
        raise NotImplementedError

    def prepare(self, ctx: JobContext) -> None:
        self.tasks(ctx)  # bad counts fail before any image is built
        startup_timeout(self.config)
        if not (Path(ctx.snapshot_dir) / ctx.entry_script).is_file():
            raise PrepareError(f"entry script {ctx.entry_script!r} is not in the source snapshot")
        self.notes(ctx)
        super().prepare(ctx)

    def notes(self, ctx: JobContext) -> None:
        run_docker = ((ctx.spec.get("environment") or {}).get("docker") or {})
        net = run_docker.get("network") or self.config.get("network")
        if net:
            ctx.log(f"[mltrain] note: distributed runs on Docker use a network of their own "
                    f"({network_name(ctx.run_id)}); the target's network {net!r} is not used")

    # -- launch ----------------------------------------------------------------------------------
    def launch(self, ctx: JobContext) -> JobHandle:
        import docker
        from ...adapters.docker.engine import client_over, is_local_engine
        if self.image is None:
            self.prepare(ctx)
            if self.image is None:
                raise PrepareError("the environment image was not prepared (the build was canceled)")
        api = self.api
        tasks = self.tasks(ctx)
        cluster = cluster_spec(ctx.run_id, tasks)
        token = f"{ctx.run_id}-{secrets.token_hex(4)}"
        world = len(tasks) if self.state_kind == KIND_MPI else None
        specs = [task_container_kwargs(ctx, self.image, t, i, cluster, token=token, world_size=world,
                                       uid=self.uid, gid=self.gid, config=self.config) for t, i in tasks]
        tags = [rl.task_tag(t, i) for t, i in tasks]
        self._remove_stale_cluster(ctx, [k["name"] for k in specs])
        what = (f"{len(tasks)} rank(s)" if self.state_kind == KIND_MPI else
                f"{sum(t == 'ps' for t, _ in tasks)} ps, {sum(t == 'worker' for t, _ in tasks)} worker(s), 1 chief")
        ctx.log(f"[mltrain] {'MPI' if self.state_kind == KIND_MPI else 'parameter-server'} job on Docker: "
                f"{what}, one container each on network {network_name(ctx.run_id)}; cluster "
                + json.dumps(cluster))
        try:
            net = api.create_network(**network_create_kwargs(ctx))
        except docker.errors.APIError as exc:
            raise PrepareError(f"creating the run's network {network_name(ctx.run_id)} failed: "
                               f"{exc.explanation or exc}") from exc
        state = {"kind": self.state_kind, "run_id": ctx.run_id,
                 "workspace": str(Path(ctx.workspace_dir).resolve()),
                 "network_id": net["Id"], "network_name": network_name(ctx.run_id), "tasks": [],
                 "port": TASK_PORT, "token": token, "image": self.image, "engine": self._engine(),
                 "gpus": specs[0]["environment"].get("MLTRAIN_GPUS"), "local_engine": is_local_engine(self.config),
                 "startup_timeout_s": startup_timeout(self.config), "logs_dir": str(ctx.logs_dir)}
        client = client_over(api)
        try:
            for tag, kwargs in zip(tags, specs):
                container = self._create(client, kwargs)
                state["tasks"].append({"tag": tag, "container_id": container.id, "container_name": kwargs["name"]})
            for t in state["tasks"]:
                self._start(api, t["container_id"], t["container_name"])
        except BaseException:
            DockerClusterHandle(api, state, ctx, start_pumps=False).cancel(0)
            raise
        state["started"] = time.time()
        self._record_tags(ctx, {"docker.image": self.image, "docker.network": state["network_name"],
                                "docker.containers": ",".join(t["container_name"] for t in state["tasks"])})
        ctx.log(f"[mltrain] containers started from {self.image} as user {specs[0]['user']}: "
                + ", ".join(f"{t['container_name']} ({t['container_id'][:12]})" for t in state["tasks"]))
        return DockerClusterHandle(api, state, ctx)

    def _start(self, api, container_id: str, name: str) -> None:
        import docker
        try:
            api.start(container_id)
        except docker.errors.APIError as exc:
            msg = str(exc.explanation or exc)
            if "device driver" in msg or "nvidia" in msg.lower():
                from ...adapters.docker.engine import NVIDIA_TOOLKIT_HINT
                raise PrepareError(f"the Docker engine could not give the container {name} GPUs ({msg}). "
                                   f"To run on GPUs, {NVIDIA_TOOLKIT_HINT}; or submit with use_gpu=False.") from exc
            raise PrepareError(f"starting the container {name} failed: {msg}") from exc

    def _remove_stale_cluster(self, ctx: JobContext, names: list[str]) -> None:
        """Containers and the network of an earlier launch attempt of this same run."""
        import docker
        api = self.api
        for name in names:
            try:
                info = api.inspect_container(name)
            except docker.errors.NotFound:
                continue
            if ((info.get("Config") or {}).get("Labels") or {}).get(LABEL_RUN) == ctx.run_id:
                ctx.log(f"[mltrain] removing the stale container {name} of an earlier attempt")
                api.remove_container(info["Id"], force=True)
        for net in api.networks(names=[network_name(ctx.run_id)]):
            if net.get("Name") == network_name(ctx.run_id) and (net.get("Labels") or {}).get(LABEL_RUN) == ctx.run_id:
                ctx.log(f"[mltrain] removing the stale network {net['Name']} of an earlier attempt")
                _remove_network(api, net["Id"], ctx.log, api_containers_too=True)

    # -- reattach --------------------------------------------------------------------------------
    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        if state.get("kind") != self.state_kind or not state.get("tasks"):
            return None
        api = self.api
        ids = {t["container_id"] for t in state["tasks"]}
        found = [c for c in api.containers(all=True, filters={"label": [f"{LABEL_RUN}={ctx.run_id}"]})
                 if c["Id"] in ids]
        if not found:
            ctx.log(f"[mltrain] the run's containers ({', '.join(t['container_name'] for t in state['tasks'])}) "
                    "are gone (removed while no supervisor watched them)")
            _remove_network(api, state.get("network_id"), ctx.log)
            return None
        return DockerClusterHandle(api, state, ctx, reattached=True)


class DockerMpiBackend(_DockerClusterBackend):
    """MPI-configured jobs: one container per rank, each with its TF_CONFIG (no mpirun)."""
    kind = "docker_mpi"
    state_kind = KIND_MPI

    def tasks(self, ctx: JobContext) -> list[tuple[str | None, int]]:
        return mpi_tasks(ctx.distribution)

    def notes(self, ctx: JobContext) -> None:
        super().notes(ctx)
        dist = ctx.distribution or {}
        if dist.get("node_count", 1) > 1:
            ctx.log(f"[mltrain] note: node_count={dist['node_count']}: the target is one Docker engine, so all "
                    f"{len(self.tasks(ctx))} ranks run there, one container each")
        try:
            text = (Path(ctx.snapshot_dir) / ctx.entry_script).read_text(errors="replace")
        except OSError:
            text = ""
        if "horovod" in text.lower():
            ctx.log("[mltrain] warning: the script mentions Horovod. On a Docker target each rank is a container of "
                    "its own with TF_CONFIG and no mpirun, so Horovod would see one rank per container "
                    "(hvd.size() == 1). Use tf.distribute.MultiWorkerMirroredStrategy, or submit Horovod jobs to a "
                    "local target, where mpirun starts the ranks.")


class DockerParameterServerBackend(_DockerClusterBackend):
    """Parameter-server jobs: one container per ps, worker and chief task."""
    kind = "docker_parameter_server"
    state_kind = KIND_PS

    def tasks(self, ctx: JobContext) -> list[tuple[str | None, int]]:
        return ps_tasks(ctx.distribution)


# -- the running job --------------------------------------------------------------------------

def _remove_network(api, network_id: str | None, log=None, api_containers_too: bool = False) -> bool:
    """Removes a network (retrying while endpoints are being released); True when it is gone."""
    import docker
    if not network_id:
        return True
    for attempt in range(25):
        try:
            if api_containers_too and attempt == 0:
                info = api.inspect_network(network_id)
                for cid in (info.get("Containers") or {}):
                    try:
                        api.remove_container(cid, force=True)
                    except docker.errors.APIError:
                        pass
            api.remove_network(network_id)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "active endpoints" in str(exc) and attempt < 24:
                time.sleep(0.2)
                continue
            if log:
                log(f"[mltrain] could not remove the network {network_id[:12]}: {exc.explanation or exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - an engine that does not answer
            if log:
                log(f"[mltrain] could not remove the network {network_id[:12]}: {exc}")
            return False
    return False


class DockerClusterHandle(JobHandle):
    """The containers of one distributed run; see the module docstring for the rules."""

    def __init__(self, api, state: dict, ctx: JobContext, reattached: bool = False, start_pumps: bool = True):
        self.api = api
        self._state = state
        self.tasks = {t["tag"]: t for t in state["tasks"]}
        self.order = [t["tag"] for t in state["tasks"]]
        self.mpi = state["kind"] == KIND_MPI
        self.logs_dir = Path(ctx.logs_dir)
        self.run_dir = Path(ctx.run_dir)
        self.driver_log = self.logs_dir / "driver.log"
        self.ctx_log = ctx.log
        self._rc: int | None = None
        self._detail: str | None = None
        self._closed = False
        self._ended: dict[str, dict] = {}    # tag -> {"code", "at", "oom", "gone"}
        self._pids: dict[str, int] = {}      # tag -> the container's init pid (local engines)
        self._joined: set[str] = set()        # tasks seen listening on their TF_CONFIG port
        started = state.get("started") or time.time()
        self._watch = bool(state.get("local_engine")) and not (
            reattached and time.time() - started > state.get("startup_timeout_s", 0))
        self._early_exit_since: float | None = None
        self._last_port_check = 0.0
        self._next_poll = 0.0
        self._silence = EngineSilence(self.ctx_log)
        self.cursors = {tag: LogCursor(self.run_dir / f"{CURSOR_PREFIX}{tag}") for tag in self.order}
        self.pumps: dict[str, LogPump] = {}
        if start_pumps:
            for tag in self.order:
                self._start_pump(tag)

    def _start_pump(self, tag: str) -> None:
        pump = LogPump(self.api, self.tasks[tag]["container_id"], self.driver_log, self.cursors[tag])
        pump.start()
        self.pumps[tag] = pump

    # -- JobHandle ---------------------------------------------------------------------------
    def state(self) -> dict:
        return dict(self._state)

    def metrics_files(self) -> list[Path]:
        return [rl.metrics_file(self.logs_dir, tag) for tag in self.order if not rl.is_primary(tag)]

    def failure_detail(self) -> str | None:
        return self._detail

    def cancel(self, grace_seconds: float = 5.0) -> None:
        """Stops every container (SIGTERM, ``grace_seconds``, SIGKILL), removes them and the network."""
        self._teardown(grace_seconds)

    def poll(self) -> int | None:
        if self._rc is not None:
            return self._rc
        now = time.monotonic()
        if now < self._next_poll:
            return None
        self._next_poll = now + POLL_EVERY_S
        listing = self._list()
        if listing is None:
            if not self._silence.too_long():
                return None
            self._detail = (f"the Docker engine ({self._state.get('engine')}) stopped answering for "
                            f"{ENGINE_PATIENCE_S:.0f} s while the run's containers ran; check that dockerd "
                            "runs ('docker info')")
            self.ctx_log(f"[mltrain] {self._detail}")
            self._teardown(0)
            return self._finish(-1)
        self._observe(listing)
        return self._decide_mpi() if self.mpi else self._decide_ps()

    # -- what the engine says ----------------------------------------------------------------
    def _list(self) -> dict[str, dict] | None:
        """The run's containers by id (running or not); None when the engine does not answer."""
        try:
            found = self.api.containers(all=True, filters={"label": [f"{LABEL_RUN}={self._state['run_id']}"]})
        except Exception as exc:  # noqa: BLE001 - the engine restarting, a network hiccup
            self._silence.failed(exc)
            return None
        self._silence.answered()
        return {c["Id"]: c for c in found}

    def _observe(self, listing: dict[str, dict]) -> None:
        import docker
        for tag in self.order:
            if tag in self._ended:
                continue
            cid = self.tasks[tag]["container_id"]
            summary = listing.get(cid)
            if summary is None:
                self._ended[tag] = {"code": None, "gone": True, "at": time.time()}
                continue
            status = summary.get("State")
            if status in ("exited", "dead"):
                try:
                    info = self.api.inspect_container(cid)
                except docker.errors.NotFound:
                    self._ended[tag] = {"code": None, "gone": True, "at": time.time()}
                    continue
                except Exception:  # noqa: BLE001 - try again on the next poll
                    continue
                st = info.get("State") or {}
                self._ended[tag] = {"code": int(st.get("ExitCode", -1)), "oom": bool(st.get("OOMKilled")),
                                    "at": _finished_at(st.get("FinishedAt")) or time.time(),
                                    "memory": (info.get("HostConfig") or {}).get("Memory") or 0}
            elif status == "running":
                if tag not in self._pids and self._watch:
                    try:
                        self._pids[tag] = int((self.api.inspect_container(cid).get("State") or {}).get("Pid") or 0)
                    except Exception:  # noqa: BLE001
                        pass
                pump = self.pumps.get(tag)
                if pump is not None and not pump.is_alive():  # the log stream ended early: follow again
                    self._start_pump(tag)

    def _first(self, tags) -> str:
        """The task that ended first: its launcher's record, else the container's end time."""
        statuses = rl.read_statuses(self.logs_dir)

        def when(tag):
            return min(statuses.get(tag, {}).get("ended") or float("inf"), self._ended[tag]["at"])
        return min(tags, key=lambda t: (when(t), self.order.index(t)))

    # -- decisions ---------------------------------------------------------------------------
    def _decide_mpi(self) -> int | None:
        failed = [t for t, e in self._ended.items() if e.get("gone") or e.get("code") != 0]
        if failed:
            first = self._first(failed)
            others = [t for t in self.order if t != first]
            self._detail = self._report(first, f"the engine stopped {_names(others)}" if others else "")
            self._teardown(FAILURE_GRACE_S)
            return self._finish(self._code(first))
        if len(self._ended) == len(self.order):
            self._teardown(0)
            return self._finish(0)
        problem = self._mpi_watchdog()
        if problem:
            self._detail = problem
            self._teardown(FAILURE_GRACE_S)
            return self._finish(1)
        return None

    def _decide_ps(self) -> int | None:
        if not self._ended:
            problem = self._ps_watchdog()
            if problem:
                self._detail = problem
                self._teardown(FAILURE_GRACE_S)
                return self._finish(1)
            return None
        first = self._first(list(self._ended))
        code = self._code(first)
        if first == CHIEF and code == 0:
            self._teardown(FAILURE_GRACE_S)  # the chief is done: nothing else may run
            return self._finish(0)
        others = [t for t in self.order if t != first]
        hint = "" if first == CHIEF or code != 0 else (
            "before the chief finished; ps and worker tasks must serve until the chief ends "
            "(tf.distribute.Server(...).join())")
        stopped = f"the engine stopped {_names(others)}" + (" (they serve only while the chief runs)"
                                                             if first == CHIEF else "")
        self._detail = self._report(first, "; ".join(x for x in (hint, stopped) if x))
        self._teardown(FAILURE_GRACE_S)
        return self._finish(code if code != 0 else 1)

    def _code(self, tag: str) -> int:
        e = self._ended.get(tag, {})
        return -1 if e.get("gone") or e.get("code") is None else int(e["code"])

    def _finish(self, code: int) -> int:
        self._rc = code
        return code

    def _report(self, tag: str, hint: str = "") -> str:
        """``worker 1 was killed by signal 9 (SIGKILL) (container ..., exit code 137)`` + its last lines."""
        e = self._ended.get(tag, {})
        st = rl.read_statuses(self.logs_dir).get(tag, {})
        cname = self.tasks[tag]["container_name"]
        code = e.get("code")
        if e.get("gone"):
            how = (f"disappeared: its container {cname} was removed while the run was going on "
                   "(from outside, e.g. 'docker rm -f')")
        elif e.get("oom"):
            limit = e.get("memory") or 0
            how = (f"ran out of memory and was killed (container {cname}, exit code {code}"
                   + (f", memory limit {limit / 2**30:.3g} GiB" if limit else "")
                   + "); raise memory_gb on the target or use less memory")
        elif st.get("ended"):  # the launcher saw the script end
            how = rl.describe_exit(st.get("exit_code"), st.get("signal"))
            how += f" (container {cname}" + ("" if how == f"exited with code {code}" else f", exit code {code}") + ")"
        elif code is not None and code > 128:  # the launcher itself was killed: the container was
            how = (rl.describe_exit(None, code - 128) + f" (container {cname}, exit code {code}; "
                   "stopped from outside, e.g. 'docker kill' or 'docker stop')")
        else:
            how = f"exited with code {code} (container {cname})"
        return rl.failure_report(rl.task_name(tag), how, rl.log_file(self.logs_dir, tag), hint=hint)

    # -- the startup deadline (local engines: each container's sockets) -------------------------
    def _listening(self, tag: str) -> bool | None:
        """Is the task's server listening? None: this cannot be seen from here (stop watching)."""
        pid = self._pids.get(tag)
        if not pid:
            return False
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"rank_launcher" not in fh.read():
                    return None  # not the container's process (another PID namespace): cannot tell
        except OSError:  # it ended meanwhile, or its pid is not visible here (an engine in a VM)
            try:
                st = self.api.inspect_container(self.tasks[tag]["container_id"]).get("State") or {}
            except Exception:  # noqa: BLE001
                return False
            return None if st.get("Running") and int(st.get("Pid") or 0) == pid else False
        ports: set[int] = set()
        readable = False
        for name in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{name}", encoding="ascii") as fh:
                    ports |= tfc.parse_proc_net_tcp(fh.read())
                readable = True
            except OSError:
                continue
        if not readable:
            return None
        return int(self._state.get("port", TASK_PORT)) in ports

    def _check_ports(self, tags) -> bool:
        """Adds the tasks now listening to ``_joined``; False when ports cannot be seen."""
        for tag in tags:
            if tag in self._joined or tag in self._ended:
                continue
            seen = self._listening(tag)
            if seen is None:
                self._watch = False
                return False
            if seen:
                self._joined.add(tag)
        return True

    def _due(self) -> bool:
        if not self._watch or time.monotonic() - self._last_port_check < PORT_CHECK_EVERY_S:
            return False
        self._last_port_check = time.monotonic()
        return True

    def _address(self, tag: str) -> str:
        return tfc.address(self.tasks[tag]["container_name"], int(self._state.get("port", TASK_PORT)))

    def _mpi_watchdog(self) -> str | None:
        """A rank that left without joining while others wait, or no join by the deadline."""
        if not self._due() or not self._check_ports(self.order):
            return None
        if len(self._joined) == len(self.order):
            self._watch = False  # everyone joined: the startup phase is over
            return None
        limit = float(self._state["startup_timeout_s"])
        elapsed = time.time() - self._state["started"]
        if not self._joined:
            if elapsed > limit:
                self._watch = False  # nobody uses TF_CONFIG: the ranks' exits decide alone
            return None
        waiting = [t for t in self.order if t in self._joined and t not in self._ended]
        left = [t for t in self.order if t not in self._joined and self._ended.get(t, {}).get("code") == 0]
        if left and waiting:
            now = time.monotonic()
            if self._early_exit_since is None:
                self._early_exit_since = now
            elif now - self._early_exit_since >= EARLY_EXIT_CONFIRM_S:
                t = left[0]
                return rl.failure_report(
                    rl.task_name(t), f"exited with code 0 without joining the TensorFlow cluster "
                    f"(container {self.tasks[t]['container_name']})", rl.log_file(self.logs_dir, t),
                    hint=(f"it never listened on its TF_CONFIG address {self._address(t)}, and {_names(waiting)} "
                          "waited for it; every rank must create tf.distribute.MultiWorkerMirroredStrategy() "
                          "(Horovod needs a local target). The engine stopped the job."))
            return None
        self._early_exit_since = None
        if elapsed > limit:
            missing = [t for t in self.order if t not in self._joined]
            return rl.failure_report(
                _names(missing), f"did not join the TensorFlow cluster within the startup deadline ({limit:.0f} s)",
                rl.log_file(self.logs_dir, missing[0]),
                hint=(f"no listener on {', '.join(self._address(t) for t in missing)} while {_names(waiting)} "
                      "waited; raise startup_timeout_s in the compute target's config if the script does long "
                      "work before creating its strategy"))
        return None

    def _ps_watchdog(self) -> str | None:
        """Every ps and worker task must serve on its port by the startup deadline."""
        servers = [t for t in self.order if t != CHIEF]
        if not self._due() or not self._check_ports(servers):
            return None
        if all(t in self._joined for t in servers):
            self._watch = False
            return None
        limit = float(self._state["startup_timeout_s"])
        if time.time() - self._state["started"] <= limit:
            return None
        missing = [t for t in servers if t not in self._joined]
        return rl.failure_report(
            _names(missing), f"did not start serving within the startup deadline ({limit:.0f} s)",
            rl.log_file(self.logs_dir, missing[0]),
            hint=(f"no listener on {', '.join(self._address(t) for t in missing)}; a ps or worker task must start "
                  "tf.distribute.Server with its TF_CONFIG and join() it; raise startup_timeout_s in the compute "
                  "target's config if it needs longer"))

    # -- stopping ----------------------------------------------------------------------------
    def _teardown(self, grace: float) -> None:
        """SIGTERM every running container at once, wait ``grace``, SIGKILL the rest; then remove the
        containers and the network. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        ids = {tag: self.tasks[tag]["container_id"] for tag in self.order}
        running = self._running(ids)
        for tag in running:
            self._kill(ids[tag], "SIGTERM")
        deadline = time.monotonic() + max(0.0, grace)
        while running and time.monotonic() < deadline:
            time.sleep(0.1)
            running = self._running({t: ids[t] for t in running})
        for tag in running:
            self._kill(ids[tag], "SIGKILL")
        deadline = time.monotonic() + 10
        while running and time.monotonic() < deadline:
            running = self._running({t: ids[t] for t in running})
            if running:
                time.sleep(0.1)
        deadline = time.monotonic() + 5  # the log streams end with their containers
        for pump in self.pumps.values():
            pump.join(timeout=max(0.05, deadline - time.monotonic()))
            pump.drain()
        for cursor in self.cursors.values():
            cursor.close()
        self._remove_containers(ids)
        _remove_network(self.api, self._state.get("network_id"), self.ctx_log)

    def _running(self, ids: dict[str, str]) -> list[str]:
        if not ids:
            return []
        try:
            listing = {c["Id"]: c for c in self.api.containers(
                all=True, filters={"label": [f"{LABEL_RUN}={self._state['run_id']}"]})}
        except Exception:  # noqa: BLE001 - an engine that does not answer: assume they run
            return list(ids)
        return [t for t, cid in ids.items()
                if cid in listing and listing[cid].get("State") not in ("exited", "dead", "created")]

    def _kill(self, cid: str, sig: str) -> None:
        try:
            self.api.kill(cid, signal=sig)
        except Exception:  # noqa: BLE001 - gone, not running, or the engine does not answer
            pass

    def _remove_containers(self, ids: dict[str, str]) -> None:
        import docker
        for tag, cid in ids.items():
            for attempt in range(3):
                try:
                    self.api.remove_container(cid, force=True)
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError as exc:
                    if "already in progress" in str(exc):
                        break
                    if attempt == 2:
                        self.ctx_log(f"[mltrain] could not remove container {self.tasks[tag]['container_name']}: "
                                     f"{exc.explanation or exc}")
                    time.sleep(0.2)
                except Exception as exc:  # noqa: BLE001
                    self.ctx_log(f"[mltrain] could not remove container {self.tasks[tag]['container_name']}: {exc}")
                    break


# -- orphan cleanup ------------------------------------------------------------------------------

def clean_orphan_networks(workspace_dir, live_run_ids, config: dict | None = None, api=None) -> list[str]:
    """Removes the networks labelled for this workspace whose run is not live; returns their names.

    Containers of the workspace still attached to such a network (runs that are over) are removed
    first. ``live_run_ids``: runs that are not terminal. An engine that does not answer removes
    nothing (returns []).
    """
    import docker
    own_api = api is None
    if own_api:
        from ...adapters.docker.engine import DockerEngineError, api_client
        try:
            api = api_client(config or {}, timeout=15)
        except DockerEngineError:
            return []
    ws = str(Path(workspace_dir).resolve())
    live = set(live_run_ids)
    removed = []
    try:
        for net in api.networks(filters={"label": [f"{LABEL_WORKSPACE}={ws}"]}):
            labels = net.get("Labels") or {}
            if labels.get(LABEL_RUN) in live or labels.get(LABEL_WORKSPACE) != ws:
                continue
            try:
                info = api.inspect_network(net["Id"])
            except docker.errors.NotFound:
                continue
            for cid in (info.get("Containers") or {}):
                try:
                    c = api.inspect_container(cid)
                except docker.errors.NotFound:
                    continue
                c_labels = (c.get("Config") or {}).get("Labels") or {}
                if c_labels.get(LABEL_WORKSPACE) == ws and c_labels.get(LABEL_RUN) not in live:
                    try:
                        api.remove_container(cid, force=True)
                    except docker.errors.APIError:
                        pass
            if _remove_network(api, net["Id"]):
                removed.append(net.get("Name") or net["Id"][:12])
    except Exception:  # noqa: BLE001 - cleanup must never fail its caller
        pass
    finally:
        if own_api:
            api.close()
    return removed


def clean_orphan_networks_for_targets(workspace_dir, target_configs: list[dict], live_run_ids,
                                      timeout: float = 3.0) -> list[str]:
    """clean_orphan_networks on each distinct engine of the workspace's docker targets; never raises."""
    from .docker import for_each_engine
    return for_each_engine(target_configs,
                           lambda api: clean_orphan_networks(workspace_dir, live_run_ids, api=api), timeout)


__all__ = ["DockerMpiBackend", "DockerParameterServerBackend", "DockerClusterHandle", "cluster_spec",
           "clean_orphan_networks", "clean_orphan_networks_for_targets", "mpi_tasks", "network_create_kwargs",
           "network_name", "ps_tasks", "run_slug", "task_container_kwargs", "task_container_name"]
