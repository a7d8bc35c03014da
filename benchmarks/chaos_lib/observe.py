"""What is alive for a workspace: its runs' processes, containers and networks, seen from outside.

A process belongs to a run when its environment says ``MLTRAIN_RUN_ID=<run>`` (every job
process: scripts, rank launchers, mpirun) or when it is that run's supervisor
(``mltrain_desktop.engine.supervisor WORKSPACE RUN``). Processes inside containers are left to
the container listing. Containers and networks belong to a run through the labels
``mltrain.workspace`` and ``mltrain.run``; endpoint containers carry ``mltrain.endpoint``.
Nothing here asks the product: this is the suite's independent view.
"""
from __future__ import annotations

import dataclasses
import json
import os

import psutil

SUPERVISOR_MODULE = "mltrain_desktop.engine.supervisor"
_OWN_PID_NS = None


@dataclasses.dataclass
class Proc:
    pid: int
    run_id: str
    role: str               # supervisor | job
    cmdline: list[str]
    environ: dict

    @property
    def tf_task(self) -> tuple[str, int] | None:
        """(task type, index) from TF_CONFIG, for a job process that has one."""
        try:
            task = json.loads(self.environ.get("TF_CONFIG") or "{}").get("task") or {}
            return (task["type"], int(task["index"])) if task else None
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def is_launcher(self) -> bool:
        return "mltrain_desktop.engine.rank_launcher" in self.cmdline

    @property
    def is_script(self) -> bool:
        return any(a.endswith("chaos_job.py") for a in self.cmdline) and not self.is_launcher


def _pid_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def run_processes(workspace: str, run_ids: set[str]) -> list[Proc]:
    """Every live (non-zombie) process of the given runs on this machine, outside containers."""
    global _OWN_PID_NS
    if _OWN_PID_NS is None:
        _OWN_PID_NS = _pid_ns("self")
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = p.info["cmdline"] or []
            if any(SUPERVISOR_MODULE in a for a in cmd) and workspace in cmd:
                rid = next((a for a in cmd if a in run_ids), None)
                if rid:
                    out.append(Proc(p.pid, rid, "supervisor", cmd, {}))
                continue
            env = p.environ()
            rid = env.get("MLTRAIN_RUN_ID")
            if rid in run_ids and _pid_ns(p.pid) == _OWN_PID_NS:
                out.append(Proc(p.pid, rid, "job", cmd, env))
        except (psutil.Error, OSError):
            continue
    return out


def docker_api(base_url: str | None = None):
    """A low-level Docker client (DOCKER_HOST / the default socket, or ``base_url``), or None
    when no engine answers."""
    try:
        import docker
        api = docker.APIClient(base_url=base_url, timeout=10) if base_url else docker.APIClient(timeout=10)
        api.ping()
        api.chaos_url = base_url  # for the `docker` commands the faults run against the same engine
        return api
    except Exception:  # noqa: BLE001 - no engine: nothing of Docker to look at
        return None


def workspace_containers(api, workspace: str) -> list[dict]:
    """Running or stopped containers labelled for the workspace ([] when the engine is away)."""
    if api is None:
        return []
    try:
        return api.containers(all=True, filters={"label": f"mltrain.workspace={workspace}"})
    except Exception:  # noqa: BLE001 - the engine restarting
        return []


def workspace_networks(api, workspace: str) -> list[dict]:
    if api is None:
        return []
    try:
        return api.networks(filters={"label": f"mltrain.workspace={workspace}"})
    except Exception:  # noqa: BLE001
        return []


def container_host_pids(api, container_id: str) -> list[int]:
    """Host pids of the container's processes (init first)."""
    try:
        info = api.inspect_container(container_id)
        root = int((info.get("State") or {}).get("Pid") or 0)
        if not root:
            return []
        parent = psutil.Process(root)
        return [root] + [c.pid for c in parent.children(recursive=True)]
    except Exception:  # noqa: BLE001
        return []


def foreign_running_containers(api, workspace: str) -> list[str]:
    """Names of running containers that are not this workspace's (a dockerd restart stops them)."""
    if api is None:
        return []
    out = []
    for c in api.containers():
        if (c.get("Labels") or {}).get("mltrain.workspace") != workspace:
            out.append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
    return out
