"""The parameter-server backend: ps tasks, workers and one chief, each a process with its TF_CONFIG.

Every task runs ``python -m mltrain_desktop.engine.rank_launcher --task-type T --task-index I --
script args`` in its own session on this machine, with a cluster of loopback addresses on ports
the engine picked (TensorFlow's gRPC servers listen on all interfaces whatever TF_CONFIG says).
Every TF_CONFIG says ``environment: cloud``; a ps or worker task runs the same script as the
chief, which is expected to start a ``tf.distribute.Server`` there and ``join()`` it.

The job's result is the chief's. The engine stops the ps and worker tasks when the chief ends,
whatever its result, and fails the run within a poll (a fraction of a second, plus the stop) when
any task fails or is killed, when a ps or worker task ends before the chief, or when a ps or
worker task has not started its server by the startup deadline. The ps and worker tasks also
watch the chief themselves (``--watch-pid``), so none outlives it even if the supervisor dies.
Target config keys used: ``startup_timeout_s``, ``base_port`` (see the MPI backend).
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psutil

from .. import rank_launcher as rl
from .. import tf_config as tfc
from ..process import is_same_process_alive, process_identity, start_process, tree
from .base import Backend, JobContext, JobHandle, PrepareError
from .local import job_environment
from .mpi import (FAILURE_GRACE_S, PORT_CHECK_EVERY_S, job_ports, kill_job_processes, startup_timeout,
                  stop_processes)

CHIEF = "chief_0"


class ParameterServerBackend(Backend):
    kind = "parameter_server"

    def __init__(self, target: dict):
        self.target = target
        self.config = dict(target.get("config") or {})

    def _counts(self, ctx: JobContext) -> tuple[int, int]:
        dist = ctx.distribution or {}
        workers = dist.get("worker_count", 1)
        ps = dist.get("parameter_server_count", 1)
        for name, v in (("worker_count", workers), ("parameter_server_count", ps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise PrepareError(f"{name} must be a whole number of at least 1, got {v!r}")
        return workers, ps

    def prepare(self, ctx: JobContext) -> None:
        self._counts(ctx)
        startup_timeout(self.config)
        if not (ctx.snapshot_dir / ctx.entry_script).is_file():
            raise PrepareError(f"entry script {ctx.entry_script!r} is not in the source snapshot")
        if self.config.get("hosts"):
            ctx.log("[mltrain] note: parameter-server jobs run on this machine; the target's hosts "
                    "are used by MPI jobs")

    def launch(self, ctx: JobContext) -> JobHandle:
        n_workers, n_ps = self._counts(ctx)
        tags = [rl.task_tag(t, i) for t, i in
                [("ps", i) for i in range(n_ps)] + [("worker", i) for i in range(n_workers)] + [("chief", 0)]]
        ports = dict(zip(tags, job_ports(self.config, len(tags), [rl.task_name(t) for t in tags],
                                         [True] * len(tags))))

        def addr(tag):
            return tfc.address(tfc.LOOPBACK, ports[tag])

        cluster = tfc.ps_cluster(addr(CHIEF), [addr(f"worker_{i}") for i in range(n_workers)],
                                 [addr(f"ps_{i}") for i in range(n_ps)])
        token = f"{ctx.run_id}-{secrets.token_hex(4)}"
        env = job_environment(ctx)
        env[rl.ENV_CLUSTER] = json.dumps(cluster, separators=(",", ":"))
        env[rl.ENV_TOKEN] = token
        logs_dir = Path(os.path.abspath(ctx.logs_dir))
        logs_dir.mkdir(parents=True, exist_ok=True)
        workdir = os.path.abspath(ctx.snapshot_dir)
        interpreter = ctx.interpreter or sys.executable
        ctx.log(f"[mltrain] parameter-server job: {n_ps} ps, {n_workers} worker(s), 1 chief; cluster "
                + json.dumps(cluster))

        tasks: list[dict] = []
        popens: dict[str, subprocess.Popen] = {}

        def start(tag: str, watch: int | None) -> int:
            ttype, index = tag.rsplit("_", 1)
            argv = [interpreter, "-m", "mltrain_desktop.engine.rank_launcher", "--logs-dir", str(logs_dir),
                    "--task-type", ttype, "--task-index", index]
            if watch:
                argv += ["--watch-pid", str(watch)]
            argv += ["--", ctx.entry_script, *ctx.arguments]
            p = start_process(argv, workdir, env, logs_dir / "driver.log")
            popens[tag] = p
            tasks.append({"tag": tag, "pid": p.pid, "create_time": process_identity(p.pid), "port": ports[tag]})
            return p.pid

        try:
            chief_pid = start(CHIEF, None)  # first, so that the others can watch it
            for tag in tags[:-1]:
                start(tag, chief_pid)
        except OSError as exc:
            handle = PsJobHandle(self._state(token, tasks, logs_dir), popens)
            handle.cancel(0.5)
            raise PrepareError(f"could not start the cluster's tasks: {exc}") from exc
        started = ", ".join(f"{rl.task_name(t['tag'])} (pid {t['pid']})" for t in tasks)
        ctx.log(f"[mltrain] started {started}")
        return PsJobHandle(self._state(token, tasks, logs_dir), popens)

    def _state(self, token: str, tasks: list[dict], logs_dir: Path) -> dict:
        return {"kind": "parameter_server", "token": token, "tasks": tasks, "started": time.time(),
                "startup_timeout_s": startup_timeout(self.config), "logs_dir": str(logs_dir)}

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        if state.get("kind") != "parameter_server":
            return None
        if not any(is_same_process_alive(t["pid"], t.get("create_time")) for t in state.get("tasks", [])):
            return None
        return PsJobHandle(state, {})


class PsJobHandle(JobHandle):
    def __init__(self, state: dict, popens: dict[str, subprocess.Popen]):
        self._state = state
        self.popens = popens
        self.tasks = {t["tag"]: t for t in state["tasks"]}
        self.logs_dir = Path(state["logs_dir"])
        self._rc: int | None = None
        self._detail: str | None = None
        self._ended: dict[str, int] = {}        # tag -> launcher exit code
        self._seen_at: dict[str, float] = {}    # tag -> when the engine saw it end
        self._joined: set[str] = set()          # ps/worker tasks seen serving on their port
        self._watch = True
        self._last_check = 0.0

    # -- JobHandle ---------------------------------------------------------------------------
    def state(self) -> dict:
        return dict(self._state)

    def metrics_files(self) -> list[Path]:
        return [rl.metrics_file(self.logs_dir, tag) for tag in self.tasks if tag != CHIEF]

    def poll(self) -> int | None:
        if self._rc is not None:
            return self._rc
        for tag in self.tasks:
            if tag not in self._ended:
                code = self._exit_code(tag)
                if code is not None:
                    self._ended[tag] = code
                    self._seen_at[tag] = time.time()
        if not self._ended:
            late = self._startup_check()
            if late:
                self._detail = late
                self._stop_all(FAILURE_GRACE_S)
                return self._finish(1)
            return None
        statuses = rl.read_statuses(self.logs_dir)

        def when(tag):  # the task's own record of its end, else when the engine saw it
            return min(statuses.get(tag, {}).get("ended") or float("inf"), self._seen_at[tag])

        first = min(self._ended, key=when)
        code = self._ended[first]
        self._stop_all(FAILURE_GRACE_S)  # the chief ended or something failed: nothing else may run
        if first == CHIEF and code == 0:
            return self._finish(0)
        hint = "" if first == CHIEF or code != 0 else (
            "before the chief finished; ps and worker tasks must serve until the chief ends "
            "(tf.distribute.Server(...).join())")
        self._detail = self._report(first, statuses, hint)
        return self._finish(code if code != 0 else 1)

    def cancel(self, grace_seconds: float = 5.0) -> None:
        self._stop_all(grace_seconds)

    def failure_detail(self) -> str | None:
        return self._detail

    # -- internals ---------------------------------------------------------------------------
    def _finish(self, code: int) -> int:
        self._rc = code
        return code

    def _exit_code(self, tag: str) -> int | None:
        p = self.popens.get(tag)
        if p is not None:
            return p.poll()
        t = self.tasks[tag]
        if is_same_process_alive(t["pid"], t.get("create_time")):
            return None
        # Reattached (not our child): the launcher's record has the script's result.
        st = rl.read_statuses(self.logs_dir).get(tag, {})
        code = st.get("exit_code")
        if code is None:
            return -1
        return 128 - code if code < 0 else code

    def _report(self, tag: str, statuses: dict, hint: str = "") -> str:
        st = statuses.get(tag, {})
        if st.get("ended"):
            how = rl.describe_exit(st.get("exit_code"), st.get("signal"))
        else:  # the launcher itself was killed before it could write
            how = rl.describe_exit(self._ended.get(tag))
        others = [rl.task_name(t) for t in self.tasks if t != tag]
        extra = f"the engine stopped {', '.join(others)}" if tag != CHIEF else \
            f"the engine stopped {', '.join(others)} (they serve only while the chief runs)"
        return rl.failure_report(rl.task_name(tag), how, rl.log_file(self.logs_dir, tag),
                                 hint="; ".join(x for x in (hint, extra) if x))

    def _startup_check(self) -> str | None:
        """Every ps and worker task must serve on its port by the startup deadline."""
        if not self._watch or time.monotonic() - self._last_check < PORT_CHECK_EVERY_S:
            return None
        self._last_check = time.monotonic()
        servers = [t for t in self.tasks if t != CHIEF]
        ports = tfc.listening_ports()
        if ports is None:
            self._watch = False
            return None
        self._joined |= {t for t in servers if self.tasks[t]["port"] in ports}
        if len(self._joined) == len(servers):
            self._watch = False
            return None
        if time.time() - self._state["started"] <= self._state["startup_timeout_s"]:
            return None
        missing = [t for t in servers if t not in self._joined]
        addrs = ", ".join(f"{tfc.LOOPBACK}:{self.tasks[t]['port']}" for t in missing)
        return rl.failure_report(
            ", ".join(rl.task_name(t) for t in missing),
            f"did not start serving within the startup deadline ({self._state['startup_timeout_s']:.0f} s)",
            rl.log_file(self.logs_dir, missing[0]),
            hint=(f"no listener on {addrs}; a ps or worker task must start tf.distribute.Server with its "
                  "TF_CONFIG and join() it; raise startup_timeout_s in the compute target's config if it "
                  "needs longer"))

    def _stop_all(self, grace: float) -> None:
        """TERM every task's process tree, wait up to ``grace``, KILL the rest, sweep, reap."""
        procs: dict[int, psutil.Process] = {}
        for t in self.tasks.values():
            if is_same_process_alive(t["pid"], t.get("create_time")):
                procs.update((p.pid, p) for p in tree(t["pid"]))
        stop_processes(procs.values(), grace)
        kill_job_processes(self._state["token"])
        for p in self.popens.values():
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
