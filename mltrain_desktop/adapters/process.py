"""Starting job processes in their own session and stopping whole process trees.

Stop = SIGTERM to every process of the tree, a grace period, then SIGKILL to whatever is left.
psutil is imported where it is used: loading it takes ~20 ms, and a supervisor starts its job first.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def start_process(argv: list[str], cwd: Path | str, env: dict[str, str], log_path: Path | str,
                  detach: bool = True) -> subprocess.Popen:
    """Starts ``argv`` in a new session with stdout and stderr appended to ``log_path``."""
    log = open(log_path, "ab", buffering=0)
    try:
        return subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=detach, close_fds=True)
    finally:
        log.close()


def process_identity(pid: int) -> float | None:
    """The create time of ``pid`` (with the pid, it identifies a process across pid reuse)."""
    import psutil
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_same_process_alive(pid: int | None, create_time: float | None) -> bool:
    """Whether ``pid`` is a live (not zombie) process started at ``create_time`` (None: any start).

    A pid that is not a positive number (None, 0, the -1 of a supervisor claim) names no process.
    """
    import psutil
    if pid is None or pid <= 0:
        return False
    try:
        p = psutil.Process(pid)
        if create_time is not None and abs(p.create_time() - create_time) > 0.5:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants, plus any process still in its session."""
    import psutil
    procs: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        procs[root.pid] = root
        for c in root.children(recursive=True):
            procs[c.pid] = c
    except psutil.NoSuchProcess:
        pass
    try:
        sid = os.getsid(pid)
    except OSError:
        sid = None
    if sid == pid:  # a session we created: catch re-parented grandchildren too
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.pid) == sid:
                    procs.setdefault(p.pid, p)
            except (OSError, psutil.Error):
                continue
    return list(procs.values())


def stop_tree(pid: int, grace: float = 5.0, first_signal: int = signal.SIGTERM) -> list[int]:
    """Signals the tree of ``pid``, waits up to ``grace`` seconds, then SIGKILLs the rest."""
    import psutil
    procs = tree(pid)
    for p in procs:
        try:
            p.send_signal(first_signal)
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return [p.pid for p in procs]


def wait_gone(pids: list[int], timeout: float = 10.0) -> bool:
    import psutil
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in pids if psutil.pid_exists(p)):
            return True
        time.sleep(0.05)
    return False
