"""Copying a run to the cluster's scratch folder and its results back: rsync over the login host's SSH.

A Slurm target whose nodes cannot see the workspace (it is not under ``shared_workspace``) but
that names a ``scratch_dir`` (a folder of the cluster's own file system, as the login host and
the nodes see it) gets its runs staged: before ``sbatch``, the snapshot, the job kit, each
dataset input and the batch script go to ``<scratch_dir>/mltrain/<run id>/`` on the login host;
while the job runs its ``logs/`` folder is brought back every few seconds; when it is over, its
``outputs/`` and ``logs/`` come back and the remote folder is removed.

Every copy is ``rsync -a`` with ``-e`` = the Runner's own ssh (the same login host, ssh_config,
key and shared connection as the Slurm commands). Failures are ``StagingError`` saying what
failed and what to do (rsync missing here or there, the login host unreachable, a folder that
cannot be written).
"""
from __future__ import annotations

import posixpath
import shlex
import subprocess

from .commands import Runner

RSYNC_TIMEOUT_S = 600.0
REMOTE_ROOT = "mltrain"


class StagingError(RuntimeError):
    """A copy to or from the cluster failed; the message says which and what to do."""


def remote_run_dir(scratch_dir: str, run_id: str) -> str:
    """``<scratch_dir>/mltrain/<run id>``: where the run lives on the cluster."""
    if "/" in run_id or run_id in ("", ".", ".."):
        raise ValueError(f"run id {run_id!r} cannot name a folder")
    return posixpath.join(scratch_dir, REMOTE_ROOT, run_id)


def rsync_command(runner: Runner, source: str, dest: str, *, excludes: tuple[str, ...] = (),
                  delete: bool = False) -> list[str]:
    """``rsync -a`` from ``source`` to ``dest`` (folders end with '/'); a remote side is ``host:path``."""
    argv = ["rsync", "-a", "--mkpath", *(["-e", runner.ssh_shell()] if runner.login_host else [])]
    if delete:
        argv.append("--delete")
    for pattern in excludes:
        argv += ["--exclude", pattern]
    return argv + [source, dest]


def _remote(runner: Runner, path: str) -> str:
    """The cluster side of a copy: ``host:path`` through the login host, or the path itself."""
    return f"{runner.login_host}:{path}" if runner.login_host else path


def _explain(runner: Runner, what: str, rc: int, stderr: str) -> StagingError:
    text = stderr.strip()
    last = text.splitlines()[-1] if text else f"exit code {rc}"
    low = text.lower()
    if "rsync: command not found" in low or "rsync: not found" in low or (rc == 127 and "rsync" in low):
        return StagingError(f"{what} failed: rsync is not installed on the login host {runner.login_host} ({last}); "
                            "install it there (Debian/Ubuntu: apt-get install rsync)")
    if rc == 255 or "connection closed" in low or "could not resolve" in low or "connection refused" in low:
        return StagingError(f"{what} failed: cannot reach the login host {runner.login_host} over SSH ({last}); "
                            f"check login_host and that ssh {runner.login_host} works without a password")
    if "permission denied" in low or "read-only file system" in low or "no space left" in low:
        return StagingError(f"{what} failed: {last}; check that scratch_dir is a folder you may write on the "
                            "cluster, with room for the run")
    return StagingError(f"{what} failed (rsync exit {rc}): {last}")


def copy(runner: Runner, source: str, dest: str, what: str, *, excludes: tuple[str, ...] = (),
         delete: bool = False, timeout: float = RSYNC_TIMEOUT_S) -> None:
    """Runs one rsync; StagingError when it fails."""
    runner.ensure_connection()
    argv = rsync_command(runner, source, dest, excludes=excludes, delete=delete)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise StagingError(f"{what} failed: rsync is not installed on this machine; install it "
                           "(Debian/Ubuntu: apt-get install rsync; scripts/setup.sh does)") from exc
    except subprocess.TimeoutExpired as exc:
        raise StagingError(f"{what} did not finish within {timeout:.0f} s; check the link to "
                           f"{runner.login_host}") from exc
    if done.returncode != 0:
        raise _explain(runner, what, done.returncode, done.stderr)


def push(runner: Runner, local: str, remote: str, what: str, **kw) -> None:
    copy(runner, local, _remote(runner, remote), what, **kw)


def pull(runner: Runner, remote: str, local: str, what: str, **kw) -> None:
    copy(runner, _remote(runner, remote), local, what, **kw)


def remove_remote(runner: Runner, scratch_dir: str, remote: str) -> None:
    """Removes a staged run's folder on the cluster (only a folder under ``<scratch_dir>/mltrain/``)."""
    root = posixpath.join(scratch_dir, REMOTE_ROOT) + "/"
    if not remote.startswith(root) or "/../" in remote + "/" or remote.rstrip("/") + "/" == root:
        raise ValueError(f"refusing to remove {remote!r}: not a run folder under {root}")
    runner.run(["rm", "-rf", "--", remote])


def check_writable(runner: Runner, scratch_dir: str, marker_name: str, token: str) -> str:
    """Writes ``token`` into ``<scratch_dir>/mltrain/<marker_name>`` on the login host; returns its path."""
    folder = posixpath.join(scratch_dir, REMOTE_ROOT)
    marker = posixpath.join(folder, marker_name)
    runner.run(["sh", "-c", f"mkdir -p {shlex.quote(folder)} && printf '%s\\n' {shlex.quote(token)} > "
                            f"{shlex.quote(marker)}"])
    return marker


__all__ = ["REMOTE_ROOT", "StagingError", "check_writable", "copy", "pull", "push", "remote_run_dir",
           "remove_remote", "rsync_command"]
