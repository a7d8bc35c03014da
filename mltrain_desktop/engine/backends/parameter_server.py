"""The parameter-server backend: ps tasks, workers and one chief, each a process with its TF_CONFIG.

Every task runs ``python -m mltrain_desktop.engine.rank_launcher --task-type T --task-index I --
script args`` in its own session on this machine, with a cluster of loopback addresses on ports
the engine picked (TensorFlow's gRPC servers listen on all interfaces whatever TF_CONFIG says).
Every TF_CONFIG says ``environment: cloud``; a ps or worker task runs the same script as the
chief, which is expected to start a ``tf.distribute.Server`` there and ``join()`` it.

The job's result is the chief's; the rules are
:class:`~mltrain_desktop.domain.distributed_policy.PsPolicy`, asked on every poll with what the
tasks' processes, records and sockets show. The engine stops the ps and worker tasks when the
chief ends, whatever its result, and fails the run within a poll (a fraction of a second, plus
the stop) when any task fails or is killed, when a ps or worker task ends before the chief, or
when a ps or worker task has not started its server by the startup deadline. The ps and worker
tasks also watch the chief themselves (``--watch-pid``), so none outlives it even if the supervisor dies.
Target config keys used: ``startup_timeout_s``, ``base_port`` (see the MPI backend).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ...adapters import tf_cluster as tfc
from ...adapters.process import is_same_process_alive, process_identity, start_process, tree
from ...domain import distribution as dd
from ...domain.distributed_policy import CHIEF, PsPolicy, TaskObservation
from .. import rank_launcher as rl
from .base import Backend, JobContext, JobHandle, PrepareError
from .local import job_environment
from .mpi import checked_distribution, failure_report, job_ports, kill_job_processes, startup_timeout, stop_processes


class ParameterServerBackend(Backend):
    kind = "parameter_server"

    def __init__(self, target: dict):
        self.target = target
        self.config = dict(target.get("config") or {})

    def _distribution(self, ctx: JobContext) -> dd.PsDistribution:
        return checked_distribution(ctx.distribution, dd.PsDistribution)

    def prepare(self, ctx: JobContext) -> None:
        self._distribution(ctx)
        startup_timeout(self.config)
        if not (ctx.snapshot_dir / ctx.entry_script).is_file():
            raise PrepareError(f"entry script {ctx.entry_script!r} is not in the source snapshot")
        if self.config.get("hosts"):
            ctx.log("[mltrain] note: parameter-server jobs run on this machine; the target's hosts "
                    "are used by MPI jobs")

    def launch(self, ctx: JobContext) -> JobHandle:
        dist = self._distribution(ctx)
        n_workers, n_ps = dist.worker_count, dist.parameter_server_count
        tags = [rl.task_tag(t, i) for t, i in dist.tasks()]
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
            if ctx.spec.get("compat"):
                argv.append("--compat")
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
    """The task processes of one cluster; their exits, records and sockets are looked at, the PsPolicy decides."""

    def __init__(self, state: dict, popens: dict[str, subprocess.Popen]):
        self._state = state
        self.popens = popens
        self.tasks = {t["tag"]: t for t in state["tasks"]}
        self.logs_dir = Path(state["logs_dir"])
        self._rc: int | None = None
        self._detail: str | None = None
        self._ended: dict[str, int] = {}        # tag -> launcher exit code
        self._seen_at: dict[str, float] = {}    # tag -> when the engine saw it end

    @functools.cached_property
    def policy(self) -> PsPolicy:
        """The rules (made on first use: a launch that failed half way has no chief to decide)."""
        return PsPolicy(list(self.tasks), self._state["startup_timeout_s"], self._state["started"])

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
        now = time.time()
        decision = self.policy.decide(self._observe(now), now)
        if decision is None:
            return None
        self._stop_all(decision.grace_s)  # the chief ended or something failed: nothing else may run
        if not decision.succeeded:
            self._detail = failure_report(decision, self.logs_dir)
        return self._finish(decision.exit_code)

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

    def _observe(self, now: float) -> list[TaskObservation]:
        """Every task: its exit as seen here, told the way its launcher's record tells it; its socket when due."""
        statuses = rl.read_statuses(self.logs_dir) if self._ended else {}
        ports = None
        if self.policy.port_check_due(now):
            ports = tfc.listening_ports()
            if ports is None:
                self.policy.stop_watching()
        looks = []
        for tag, t in self.tasks.items():
            look = TaskObservation(tag, address=f"{tfc.LOOPBACK}:{t['port']}",
                                   listening=t["port"] in ports if ports is not None else None)
            if tag in self._ended:
                st = statuses.get(tag, {})
                # the launcher's own record of the end, else (the launcher itself was killed) its exit code
                how = (rl.describe_exit(st.get("exit_code"), st.get("signal")) if st.get("ended")
                       else rl.describe_exit(self._ended[tag]))
                look = dataclasses.replace(look, ended=True, exit_code=self._ended[tag], how=how,
                                           ended_at=min(st.get("ended") or float("inf"), self._seen_at[tag]))
            looks.append(look)
        return looks

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
