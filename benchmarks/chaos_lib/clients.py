"""The other clients of the workspace during a chaos run, and the faults that hit them.

- the window: ``python -m mltrain_desktop --workspace WS`` under ``QT_QPA_PLATFORM=offscreen``
  (its settings under a private ``MLTRAIN_HOME``); SIGKILLed at a seeded time and opened again;
- a CLI ``mltrain --workspace WS run logs RUN --follow`` on a run in flight, SIGKILLed;
- a second client: ``mltrain --workspace WS run list`` (opening a workspace runs recovery);
- an endpoint hitter: a thread that scores rows on each endpoint through the SDK
  (``Webservice.run``) every 0.2 s and records every failed request;
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HIT_EVERY_S = 0.2


def _env(home: Path) -> dict:
    env = dict(os.environ)
    env.update({"QT_QPA_PLATFORM": "offscreen", "MLTRAIN_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    env.pop("MLTRAIN_WORKSPACE", None)
    return env


def cli(ws: str, home: Path, *args: str, log: Path | None = None, wait: bool = True, timeout: float = 120):
    """Runs (or starts, ``wait=False``) ``mltrain --workspace WS ARGS``."""
    argv = [sys.executable, "-m", "mltrain_desktop.cli", "--workspace", ws, *args]
    if not wait:
        out = open(log, "ab") if log else subprocess.DEVNULL
        return subprocess.Popen(argv, env=_env(home), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return subprocess.run(argv, env=_env(home), capture_output=True, text=True, timeout=timeout)


def start_window(ws: str, home: Path, log: Path) -> subprocess.Popen:
    argv = [sys.executable, "-m", "mltrain_desktop", "--workspace", ws]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=_env(home), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def sigkill(proc: subprocess.Popen | None) -> bool:
    if proc is None or proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return True


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class EndpointHitter(threading.Thread):
    """Scores ``{"data": [[1, 2], [3, 4]]}`` on each endpoint until stopped; records failures."""

    def __init__(self, ws_path: str, names: list[str]):
        super().__init__(daemon=True, name="endpoint-hitter")
        self.ws_path, self.names = ws_path, names
        self.ok = {n: 0 for n in names}
        self.errors: list[tuple[float, str, str]] = []   # (time, endpoint, what)
        self._halt = threading.Event()

    def run(self) -> None:
        from mltrain_desktop.core import Webservice, Workspace
        ws = Workspace(self.ws_path)   # this thread's own connection, as another client has
        try:
            while not self._halt.is_set():
                for name in self.names:
                    self._hit(Webservice, ws, name)
                self._halt.wait(HIT_EVERY_S)
        finally:
            ws.close()

    def _hit(self, webservice, ws, name: str) -> None:
        try:
            answer = webservice(ws, name).run({"data": [[1, 2], [3, 4]]})
            if answer != {"result": [6, 14]}:
                raise ValueError(f"wrong answer {answer!r}")
            self.ok[name] += 1
        except Exception as exc:  # noqa: BLE001 - every failure is what this thread measures
            self.errors.append((time.time(), name, f"{type(exc).__name__}: {str(exc)[:300]}"))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
