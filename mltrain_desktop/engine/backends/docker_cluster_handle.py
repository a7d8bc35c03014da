"""The containers of one running distributed Docker job: looked at on every poll, judged by the domain's rules.

The handle lists the run's containers on every poll (one engine call) and reads an exited
container's exit code once. What it sees of each rank or task becomes a
:class:`~mltrain_desktop.domain.distributed_policy.TaskObservation`; the run's
:class:`~mltrain_desktop.domain.distributed_policy.MpiPolicy` (the first bad rank fails the run)
or :class:`~mltrain_desktop.domain.distributed_policy.PsPolicy` (the chief decides) says when the
run is over and how. On a local engine the start-up watchdog looks at each container's
``/proc/<pid>/net/tcp`` (is the task's gRPC server listening yet?). Stopping is SIGTERM to every
container at once (the launcher forwards it to the script), a grace period, then SIGKILL; then
the containers and the network are removed.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

from .. import rank_launcher as rl
from ...adapters import tf_cluster as tfc
from ...adapters.docker import labels as lb
from ...adapters.docker.engine import ENGINE_PATIENCE_S, EngineSilence
from ...adapters.docker.logs import LogCursor, LogPump, parse_log_timestamp
from ...domain.distributed_policy import MpiPolicy, PsPolicy, TaskObservation
from ...domain.distribution import DEFAULT_STARTUP_TIMEOUT_S
from .base import JobContext, JobHandle
from .docker_cluster_network import remove_network
from .docker_cluster_specs import TASK_PORT
from .mpi import failure_report

CURSOR_PREFIX = ".docker-log-cursor."
POLL_EVERY_S = 0.25
KIND_MPI = "docker_mpi"
KIND_PS = "docker_parameter_server"


def finished_at(text: str | None) -> float | None:
    """Seconds since the epoch of a container's ``State.FinishedAt`` (None when unset)."""
    if not text:
        return None
    ns, _ = parse_log_timestamp((text + " ").encode())
    if ns is None or ns <= 0:
        return None
    return ns / 1e9


def how_it_ended(cname: str, ended: dict, status: dict) -> str:
    """``was killed by signal 9 (SIGKILL) (container ..., exit code 137; ...)``: a task's end in words.

    ``ended``: what the engine said ({"code", "oom", "gone", "memory"}); ``status``: the task
    launcher's own record of the script's end (empty when the launcher was killed first).
    """
    code = ended.get("code")
    if ended.get("gone"):
        return (f"disappeared: its container {cname} was removed while the run was going on "
                "(from outside, e.g. 'docker rm -f')")
    if ended.get("oom"):
        limit = ended.get("memory") or 0
        return (f"ran out of memory and was killed (container {cname}, exit code {code}"
                + (f", memory limit {limit / 2**30:.3g} GiB" if limit else "")
                + "); raise memory_gb on the target or use less memory")
    if status.get("ended"):  # the launcher saw the script end
        how = rl.describe_exit(status.get("exit_code"), status.get("signal"))
        return how + f" (container {cname}" + ("" if how == f"exited with code {code}" else f", exit code {code}") + ")"
    if code is not None and code > 128:  # the launcher itself was killed: the container was
        return (rl.describe_exit(None, code - 128) + f" (container {cname}, exit code {code}; "
                "stopped from outside, e.g. 'docker kill' or 'docker stop')")
    return f"exited with code {code} (container {cname})"


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
        self._ended: dict[str, dict] = {}    # tag -> {"code", "at", "oom", "gone", "memory"}
        self._pids: dict[str, int] = {}      # tag -> the container's init pid (local engines)
        started = state.get("started") or time.time()
        self._watch = bool(state.get("local_engine")) and not (
            reattached and time.time() - started > state.get("startup_timeout_s", 0))
        self._next_poll = 0.0
        self._silence = EngineSilence(self.ctx_log)
        self.cursors = {tag: LogCursor(self.run_dir / f"{CURSOR_PREFIX}{tag}") for tag in self.order}
        self.pumps: dict[str, LogPump] = {}
        if start_pumps:
            for tag in self.order:
                self._start_pump(tag)

    @functools.cached_property
    def policy(self) -> MpiPolicy | PsPolicy:
        """The run's rules (made on first use: a launch that failed half way has no chief to decide)."""
        rules = MpiPolicy if self.mpi else PsPolicy
        return rules(self.order, self._state.get("startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S),
                     self._state.get("started") or time.time(), watch=self._watch)

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
        mono = time.monotonic()
        if mono < self._next_poll:
            return None
        self._next_poll = mono + POLL_EVERY_S
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
        return self._judge(time.time())

    def _judge(self, now: float) -> int | None:
        """After a look at the containers: the run's exit code once the rules say it is over, else None."""
        decision = self.policy.decide(self._looks(now), now)
        if decision is None:
            return None
        if not decision.succeeded:
            self._detail = failure_report(decision, self.logs_dir)
        self._teardown(decision.grace_s)  # the run is over: nothing else may run
        return self._finish(decision.exit_code)

    def _finish(self, code: int) -> int:
        self._rc = code
        return code

    # -- what the engine says ----------------------------------------------------------------
    def _list(self) -> dict[str, dict] | None:
        """The run's containers by id (running or not); None when the engine does not answer."""
        try:
            found = self.api.containers(all=True, filters={"label": [f"{lb.RUN}={self._state['run_id']}"]})
        except Exception as exc:  # noqa: BLE001 - the engine restarting, a network hiccup
            self._silence.failed(exc)
            return None
        self._silence.answered()
        return {c["Id"]: c for c in found}

    def _observe(self, listing: dict[str, dict]) -> None:
        """Notes the containers that ended (their code, once), the init pids, and restarts ended log streams."""
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
                                    "at": finished_at(st.get("FinishedAt")) or time.time(),
                                    "memory": (info.get("HostConfig") or {}).get("Memory") or 0}
            elif status == "running":
                if tag not in self._pids and self.policy.watching:
                    try:
                        self._pids[tag] = int((self.api.inspect_container(cid).get("State") or {}).get("Pid") or 0)
                    except Exception:  # noqa: BLE001
                        pass
                pump = self.pumps.get(tag)
                if pump is not None and not pump.is_alive():  # the log stream ended early: follow again
                    self._start_pump(tag)

    def _looks(self, now: float) -> list[TaskObservation]:
        """Every task as the policy needs it: its end (the launcher's record, else the engine's), its socket."""
        statuses = rl.read_statuses(self.logs_dir) if self._ended else {}
        listening = self._sockets(now)
        looks = []
        for tag in self.order:
            cname = self.tasks[tag]["container_name"]
            look = TaskObservation(tag, address=self._address(tag), where=f"container {cname}",
                                   listening=listening.get(tag))
            ended = self._ended.get(tag)
            if ended is not None:
                st = statuses.get(tag, {})
                look = dataclasses.replace(
                    look, ended=True, exit_code=None if ended.get("gone") else ended.get("code"),
                    ended_at=min(st.get("ended") or float("inf"), ended["at"]), how=how_it_ended(cname, ended, st))
            looks.append(look)
        return looks

    # -- the startup deadline (local engines: each container's sockets) -------------------------
    def _sockets(self, now: float) -> dict[str, bool]:
        """Watched task -> listening, when the policy wants a look now; {} otherwise or when ports cannot be seen."""
        if not self.policy.port_check_due(now):
            return {}
        seen: dict[str, bool] = {}
        for tag in self.policy.watched:
            if tag in self.policy.joined:
                seen[tag] = True
            elif self._container_of(tag) in self._ended:
                seen[tag] = False
            else:
                listening = self._listening(tag)
                if listening is None:
                    self.policy.stop_watching()
                    return {}
                seen[tag] = listening
        return seen

    INIT_MARK = b"rank_launcher"  # in the cmdline of the container's first process

    def _container_of(self, tag: str) -> str:
        """The container (its tag) whose network the watched task ``tag`` listens in."""
        return tag

    def _port_of(self, tag: str) -> int:
        return int(self._state.get("port", TASK_PORT))

    def _listening(self, tag: str) -> bool | None:
        """Is the task's server listening? None: this cannot be seen from here (stop watching)."""
        box = self._container_of(tag)
        pid = self._pids.get(box)
        if not pid:
            return False
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if self.INIT_MARK not in fh.read():
                    return None  # not the container's process (another PID namespace): cannot tell
        except OSError:  # it ended meanwhile, or its pid is not visible here (an engine in a VM)
            try:
                st = self.api.inspect_container(self.tasks[box]["container_id"]).get("State") or {}
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
        return self._port_of(tag) in ports

    def _address(self, tag: str) -> str:
        return tfc.address(self.tasks[tag]["container_name"], int(self._state.get("port", TASK_PORT)))

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
        remove_network(self.api, self._state.get("network_id"), self.ctx_log)

    def _running(self, ids: dict[str, str]) -> list[str]:
        if not ids:
            return []
        try:
            listing = {c["Id"]: c for c in self.api.containers(
                all=True, filters={"label": [f"{lb.RUN}={self._state['run_id']}"]})}
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


__all__ = ["CURSOR_PREFIX", "KIND_MPI", "KIND_PS", "DockerClusterHandle", "finished_at", "how_it_ended"]
