"""The local backend: the job is a process tree on this machine, in its own session."""
from __future__ import annotations

import os
import subprocess

from ...adapters.process import is_same_process_alive, process_identity, start_process, stop_tree
from ..rank_launcher import script_argv
from .base import Backend, JobContext, JobHandle, PrepareError


def job_environment(ctx: JobContext) -> dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("MLTRAIN_") or k in ("TF_CONFIG", "PYTHONHOME"):
            env.pop(k)
    env.update(ctx.environment_variables)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ctx.jobkit_dir)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


class LocalJobHandle(JobHandle):
    def __init__(self, pid: int, create_time: float | None, popen: subprocess.Popen | None = None):
        self.pid = pid
        self.create_time = create_time
        self.popen = popen
        self._exit: int | None = None

    def poll(self) -> int | None:
        if self._exit is not None:
            return self._exit
        if self.popen is not None:
            rc = self.popen.poll()
            if rc is not None:
                self._exit = rc
            return rc
        # Reattached: not our child, so no exit status; a vanished process counts as lost.
        if is_same_process_alive(self.pid, self.create_time):
            return None
        self._exit = -1
        return self._exit

    def cancel(self, grace_seconds: float = 5.0) -> None:
        if is_same_process_alive(self.pid, self.create_time):
            stop_tree(self.pid, grace=grace_seconds)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def state(self) -> dict:
        return {"pid": self.pid, "create_time": self.create_time}


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, target: dict):
        self.target = target

    def prepare(self, ctx: JobContext) -> None:
        if not ctx.interpreter:
            raise PrepareError("no interpreter was resolved for this job")

    def launch(self, ctx: JobContext) -> JobHandle:
        argv = [ctx.interpreter, *script_argv(ctx.entry_script, ctx.arguments, bool(ctx.spec.get("compat")))]
        ctx.log(f"starting: {' '.join(argv)}  (cwd {ctx.snapshot_dir})")
        popen = start_process(argv, ctx.snapshot_dir, job_environment(ctx), ctx.logs_dir / "driver.log")
        return LocalJobHandle(popen.pid, process_identity(popen.pid), popen)

    def reattach(self, ctx: JobContext, state: dict) -> JobHandle | None:
        pid, ct = state.get("pid"), state.get("create_time")
        if pid and is_same_process_alive(pid, ct):
            return LocalJobHandle(pid, ct)
        return None


def job_pids_alive(state: dict) -> bool:
    import psutil
    try:
        return is_same_process_alive(state.get("pid"), state.get("create_time"))
    except psutil.Error:
        return False
