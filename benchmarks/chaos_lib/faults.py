"""The faults themselves: each finds its victim from outside and kills it, or says it found none.

Every injector returns a short description of what it hit (for the report), or None when
the victim was not there (the run had already ended, or not yet started that part), in which
case the fault counts as not injected and the run keeps its no-fault expectation.
"""
from __future__ import annotations

import os
import signal
import subprocess

import psutil

from . import observe

_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MLTRAIN_RANK")


def _kill(pid: int) -> bool:
    """SIGKILL ``pid`` if it is still running: a process that already exited and waits to be
    reaped (a zombie) is not hit, so the run keeps its no-fault expectation."""
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
        os.kill(pid, signal.SIGKILL)
        return True
    except (OSError, psutil.Error):
        return False


def _procs(ws: str, run_id: str) -> list[observe.Proc]:
    return observe.run_processes(ws, {run_id})


def kill_supervisor(ws: str, run_id: str, **_) -> str | None:
    for p in _procs(ws, run_id):
        if p.role == "supervisor" and _kill(p.pid):
            return f"SIGKILL supervisor pid {p.pid}"
    return None


def _rank(p: observe.Proc) -> int | None:
    for var in _RANK_VARS:
        if p.environ.get(var, "").isdigit():
            return int(p.environ[var])
    return None


def kill_main(ws: str, run_id: str, kind: str, backend_state: dict, api=None, **_) -> str | None:
    """The job's main process: the script (local), mpirun (mpi), the chief's script (ps), or
    the script inside the run's container (docker, killed from the host)."""
    if kind == "docker":
        return _kill_in_container(api, run_id)
    if kind == "ps":
        return _kill_task(ws, run_id, "chief", 0)
    pid = backend_state.get("pid")
    if pid and any(p.pid == pid for p in _procs(ws, run_id)) and _kill(pid):
        return f"SIGKILL {'mpirun' if kind == 'mpi' else 'job process'} pid {pid}"
    return None


def kill_rank(ws: str, run_id: str, **_) -> str | None:
    """The script of MPI rank 1 (not its launcher)."""
    for p in _procs(ws, run_id):
        if p.role == "job" and p.is_script and _rank(p) == 1 and _kill(p.pid):
            return f"SIGKILL rank 1 script pid {p.pid}"
    return None


def _kill_task(ws: str, run_id: str, ttype: str, index: int) -> str | None:
    for p in _procs(ws, run_id):
        if p.role == "job" and p.is_script and p.tf_task == (ttype, index) and _kill(p.pid):
            return f"SIGKILL {ttype} {index} script pid {p.pid}"
    return None


def kill_ps_worker(ws: str, run_id: str, **_) -> str | None:
    return _kill_task(ws, run_id, "worker", 0)


def kill_ps_task(ws: str, run_id: str, **_) -> str | None:
    return _kill_task(ws, run_id, "ps", 0)


def _containers(api, ws: str, run_id: str, task: str | None = None) -> list[dict]:
    out = []
    for c in observe.workspace_containers(api, ws):
        labels = c.get("Labels") or {}
        if labels.get("mltrain.run") == run_id and c.get("State") == "running":
            if task is None or labels.get("mltrain.task") == task:
                out.append(c)
    return out


def _docker_kill(api, ws: str, run_id: str, task: str | None) -> str | None:
    found = _containers(api, ws, run_id, task)
    if not found:
        return None
    name = (found[0].get("Names") or [found[0]["Id"]])[0].lstrip("/")
    env = dict(os.environ)
    if getattr(api, "chaos_url", None):  # the engine the suite's targets use (see observe.docker_api)
        env["DOCKER_HOST"] = api.chaos_url
    r = subprocess.run(["docker", "kill", name], capture_output=True, text=True, timeout=30, env=env)
    return f"docker kill {name}" if r.returncode == 0 else None


def docker_kill(ws: str, run_id: str, api=None, **_) -> str | None:
    return _docker_kill(api, ws, run_id, None)


def docker_kill_rank(ws: str, run_id: str, api=None, **_) -> str | None:
    return _docker_kill(api, ws, run_id, "rank:1")


def _kill_in_container(api, run_id: str) -> str | None:
    """SIGKILL, from the host, of the script running in the run's container."""
    if api is None:
        return None
    for c in api.containers(filters={"label": f"mltrain.run={run_id}"}):
        for pid in observe.container_host_pids(api, c["Id"]):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmd = fh.read().split(b"\0")
            except OSError:
                continue
            if any(a.endswith(b"chaos_job.py") for a in cmd) and _kill(pid):
                return f"SIGKILL the script in container {c['Names'][0].lstrip('/')} (host pid {pid})"
    return None


RUN_INJECTORS = {
    "kill_supervisor": kill_supervisor,
    "kill_main": kill_main,
    "kill_rank": kill_rank,
    "kill_ps_worker": kill_ps_worker,
    "kill_ps_task": kill_ps_task,
    "docker_kill": docker_kill,
    "docker_kill_rank": docker_kill_rank,
}
