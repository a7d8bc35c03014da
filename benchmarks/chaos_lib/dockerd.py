"""Docker engines the suite may restart: the one scripts/ensure_dockerd.sh started, or a private one.

Restarting an engine stops every container on it (``live-restore`` is off by default), so the
suite restarts either

- the engine ``scripts/ensure_dockerd.sh`` started (its pid file), with ``scripts/stop_dockerd.sh``
  then ``scripts/ensure_dockerd.sh``, as those scripts mean: stop only what we started; or
- with ``--private-dockerd``, a throwaway engine of its own: its own data root, exec root,
  socket and bridge (``mltchaos0``, 10.213.77.1/24), no iptables rules (so it cannot disturb the
  main engine's), with ``mltrain-tf:2.21`` copied in from the main engine (``docker save |
  docker load``, ~35 s the first time; the data root is kept for the next run). Containers on
  it can publish ports to 127.0.0.1 (the userland proxy) but cannot talk to each other over a
  bridge (the host's FORWARD policy drops it without the engine's rules), so Docker MPI runs
  are not sent there.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

PRIVATE_ROOT = Path("/var/lib/mltrain-chaos-docker")
PRIVATE_EXEC = Path("/run/mltrain-chaos-docker")
PRIVATE_SOCKET = PRIVATE_EXEC / "docker.sock"
PRIVATE_URL = f"unix://{PRIVATE_SOCKET}"
BRIDGE, BRIDGE_CIDR = "mltchaos0", "10.213.77.1/24"


def _answers(url: str | None) -> bool:
    env = dict(os.environ)
    if url:
        env["DOCKER_HOST"] = url
    try:
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class PrivateEngine:
    """A dockerd of the suite's own; ``start`` and ``stop`` touch nothing else."""

    def __init__(self, log: Path):
        self.log = log
        self.pidfile = PRIVATE_EXEC / "dockerd.pid"
        self.made_bridge = False

    def _pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            return pid if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd" else None
        except (OSError, ValueError):
            return None

    def start(self, wait_s: float = 60.0) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("--private-dockerd needs root (it starts a dockerd)")
        if self._pid() is None:
            if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0:
                subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
                subprocess.run(["ip", "addr", "add", BRIDGE_CIDR, "dev", BRIDGE], check=True)
                self.made_bridge = True
            subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
            PRIVATE_ROOT.mkdir(parents=True, exist_ok=True)
            PRIVATE_EXEC.mkdir(parents=True, exist_ok=True)
            with open(self.log, "ab") as out:
                subprocess.Popen(["dockerd", "--data-root", str(PRIVATE_ROOT), "--exec-root", str(PRIVATE_EXEC),
                                  "--pidfile", str(self.pidfile), "-H", PRIVATE_URL, "--bridge", BRIDGE,
                                  "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        deadline = time.monotonic() + wait_s
        while not _answers(PRIVATE_URL):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the private dockerd did not answer within {wait_s:.0f} s; see {self.log}")
            time.sleep(0.25)

    def ensure_image(self, image: str) -> None:
        env = dict(os.environ, DOCKER_HOST=PRIVATE_URL)
        if subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True).returncode == 0:
            return
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "load"], stdin=save.stdout, env=env, capture_output=True, text=True)
        save.wait()
        if load.returncode != 0 or save.returncode != 0:
            raise RuntimeError(f"copying {image} into the private engine failed: {load.stderr[-500:]}")

    def stop(self, wait_s: float = 30.0) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)

    def restart(self) -> tuple[bool, str]:
        t0 = time.monotonic()
        self.stop()
        t1 = time.monotonic()
        try:
            self.start()
        except RuntimeError as exc:
            return False, str(exc)
        return True, f"private dockerd stopped in {t1 - t0:.1f} s, answering again {time.monotonic() - t1:.1f} s later"

    def shut_down(self) -> None:
        """Stops the engine and removes the bridge if this run made it (the data root is kept)."""
        self.stop()
        if self.made_bridge:
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)


class ScriptEngine:
    """The engine scripts/ensure_dockerd.sh started (its pid file)."""

    def __init__(self, repo: Path, pidfile: Path):
        self.repo, self.pidfile = repo, pidfile

    def started_by_script(self) -> bool:
        try:
            pid = int(self.pidfile.read_text().strip())
            return Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd"
        except (OSError, ValueError):
            return False

    def restart(self) -> tuple[bool, str]:
        stop_r = subprocess.run(["bash", str(self.repo / "scripts" / "stop_dockerd.sh"), str(self.pidfile)],
                                capture_output=True, text=True, timeout=120)
        start_r = subprocess.run(["bash", str(self.repo / "scripts" / "ensure_dockerd.sh"), str(self.pidfile)],
                                 capture_output=True, text=True, timeout=180)
        said = (stop_r.stdout + stop_r.stderr + start_r.stdout + start_r.stderr).strip().replace("\n", "; ")
        return start_r.returncode == 0, said
