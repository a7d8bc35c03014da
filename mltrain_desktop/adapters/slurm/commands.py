"""Running Slurm's commands on this machine or on a login host over SSH, with errors in words.

``Runner(config)`` runs ``sinfo``, ``sbatch``... as an argv: locally when the target has no
``login_host``, else ``ssh [-F ssh_config] [-i ssh_key] login_host -- 'quoted argv'`` (the
remote shell gets the argv joined with ``shlex.join``, so no value is re-split there). The first
command starts an SSH master connection (``ssh -M -N -f``, ended by ssh itself after
``MASTER_PERSIST_S`` idle) that the next commands share, so a poll costs milliseconds, not a
handshake; without it they connect one by one as before. A failure
is a ``SlurmCommandError`` that says what failed (login host unreachable, MUNGE refused the
credential, controller down, command missing) and what to do, with Slurm's own words kept.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile

DEFAULT_TIMEOUT_S = 30.0
SSH_CONNECT_TIMEOUT_S = 10
# One SSH connection per login host carries every command: ssh's master mode, kept this long idle.
MASTER_PERSIST_S = 60


class SlurmCommandError(RuntimeError):
    """A Slurm command failed; ``kind`` is unreachable, auth, controller, missing, timeout or slurm."""

    def __init__(self, message: str, kind: str = "slurm", stderr: str = ""):
        super().__init__(message)
        self.kind = kind
        self.stderr = stderr


def classify(where: str, argv: list[str], rc: int, stderr: str, via_ssh: bool) -> SlurmCommandError:
    """The error for a command that exited ``rc`` with ``stderr``."""
    text = stderr.strip()
    low = text.lower()
    cmd = argv[0] if argv else "?"
    if via_ssh and rc == 255 and not low.startswith(("sbatch:", "srun:", "squeue:", "sacct:", "sinfo:", "scontrol:")):
        return SlurmCommandError(
            f"cannot reach the Slurm login host {where}: {text or 'ssh exited with 255'}. Check login_host, that "
            "sshd runs there, and that ssh_key (or your ssh agent / ssh_config) logs in without a password "
            f"(try: ssh {where} sinfo)", "unreachable", text)
    if "munge" in low or "invalid authentication credential" in low or "protocol authentication error" in low:
        return SlurmCommandError(
            f"Slurm refused the MUNGE credential on {where} ({cmd}): {text}. Check that munged runs on the login "
            "host and on every node with the same /etc/munge/munge.key, and that their clocks agree "
            "(try: munge -n | unmunge)", "auth", text)
    if "unable to contact slurm controller" in low or "connection refused" in low and "slurm" in low:
        return SlurmCommandError(
            f"the Slurm controller does not answer ({cmd} on {where}): {text}. Check that slurmctld runs "
            "(scontrol ping) and that SlurmctldHost in slurm.conf is reachable", "controller", text)
    if rc == 127 or "command not found" in low or "no such file or directory" in low and cmd in low:
        return SlurmCommandError(
            f"{cmd} is not installed on {where}: {text}. Install Slurm's client commands there "
            "(Debian: apt-get install slurm-client) or set login_host to a machine that has them", "missing", text)
    return SlurmCommandError(f"{cmd} failed on {where} (exit {rc}): {text or 'no message'}", "slurm", text)


class Runner:
    """Runs Slurm commands where the target says: locally, or on ``login_host`` over SSH."""

    def __init__(self, config: dict):
        self.login_host = config.get("login_host")
        self.ssh_key = config.get("ssh_key")
        self.ssh_config = config.get("ssh_config")
        self._master_tried = False

    @property
    def where(self) -> str:
        return self.login_host or "this machine"

    def _ssh(self) -> list[str]:
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_S}"]
        if self.ssh_config:
            ssh += ["-F", self.ssh_config]
        if self.ssh_key:
            ssh += ["-i", self.ssh_key, "-o", "IdentitiesOnly=yes"]
        return ssh + ["-o", f"ControlPath={self.control_path()}"]

    def control_path(self) -> str:
        """The master connection's socket: one per (user, login host, ssh settings), in a private folder."""
        folder = os.path.join(tempfile.gettempdir(), f"mltrain-ssh-{os.getuid()}")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        key = "\0".join(str(x) for x in (self.login_host, self.ssh_key, self.ssh_config))
        return os.path.join(folder, hashlib.sha1(key.encode()).hexdigest()[:20])

    def ssh_shell(self) -> str:
        """The ssh command (one string) that reaches the login host over the shared connection: rsync's ``-e``."""
        return shlex.join(self._ssh() + ["-o", "ControlMaster=no"])

    def ensure_connection(self) -> None:
        """Starts the shared connection now (the first command does it otherwise)."""
        if self.login_host and not self._master_tried:
            self._start_master()

    def argv(self, argv: list[str]) -> list[str]:
        if not self.login_host:
            return list(argv)
        return self._ssh() + ["-o", "ControlMaster=no", self.login_host, "--", shlex.join(argv)]

    def _start_master(self) -> None:
        """Starts the shared connection once (no output pipes: a backgrounded ssh would hold them open)."""
        self._master_tried = True
        path = self.control_path()
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        try:
            if os.path.exists(path):
                if subprocess.run(self._ssh() + ["-O", "check", self.login_host], timeout=5, **quiet).returncode == 0:
                    return
                os.unlink(path)  # left by a master that died
        except (OSError, subprocess.TimeoutExpired):
            pass
        try:
            subprocess.run(self._ssh() + ["-o", "ControlMaster=yes", "-o", f"ControlPersist={MASTER_PERSIST_S}",
                                          "-N", "-f", self.login_host], timeout=SSH_CONNECT_TIMEOUT_S + 5, **quiet)
        except (OSError, subprocess.TimeoutExpired):
            pass  # the command itself then connects on its own and reports what is wrong

    def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT_S, check: bool = True
            ) -> subprocess.CompletedProcess:
        if self.login_host and not self._master_tried:
            self._start_master()
        full = self.argv(argv)
        try:
            done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            missing = full[0]
            raise SlurmCommandError(
                f"{missing} is not installed on this machine"
                + (" (needed to reach the login host; apt-get install openssh-client)" if self.login_host else
                   "; install Slurm's client commands (apt-get install slurm-client) or set login_host"),
                "missing") from exc
        except subprocess.TimeoutExpired as exc:
            raise SlurmCommandError(f"{argv[0]} on {self.where} did not answer within {timeout:.0f} s; check the "
                                    "login host and the Slurm controller (scontrol ping)", "timeout") from exc
        if check and done.returncode != 0:
            raise classify(self.where, argv, done.returncode, done.stderr, bool(self.login_host))
        return done
