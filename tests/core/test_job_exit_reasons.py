"""A failed local run's error says how its script ended: its exit code, or the signal that killed it.

Regression test for issue 14's B13: a local job killed by a signal was reported as "the script
exited with code -9". Real runs, real signals.
"""
from __future__ import annotations

import json
import signal
import time

import psutil
import pytest

from mltrain_desktop.core import Experiment
from mltrain_desktop.train.estimator import Estimator


def _run(ws, src):
    return Experiment(ws, "exits").submit(Estimator(source_directory=str(src), entry_script="job.py",
                                                    compute_target="local"))


def _job_process(run, timeout=60) -> psutil.Process:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run._row().get("backend_state") or "{}"
        pid = json.loads(state).get("pid")
        if pid and run.get_status() == "Running" and (run.run_dir / "outputs" / "started").exists():
            return psutil.Process(pid)
        time.sleep(0.1)
    raise AssertionError(f"run {run.id} did not start its job")


SLEEPER = """
import pathlib, time
pathlib.Path("outputs").mkdir(exist_ok=True)
pathlib.Path("outputs/started").write_text("")
time.sleep(300)
"""


@pytest.mark.parametrize("sig, name", [(signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM"),
                                       (signal.SIGSEGV, "SIGSEGV")])
def test_a_local_job_killed_by_a_signal_names_it(ws, make_script, sig, name):
    run = _run(ws, make_script(SLEEPER))
    _job_process(run).send_signal(sig)
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed"
    message = details["error"]["message"]
    assert message.startswith(f"the script was killed by signal {int(sig)} ({name})"), message[:300]
    assert "exited with code" not in message


def test_a_local_job_that_exits_non_zero_gives_its_code(ws, make_script):
    run = _run(ws, make_script("import sys\nprint('bye', flush=True)\nsys.exit(3)\n"))
    details = run.wait_for_completion(raise_on_error=False, timeout=60)
    assert details["status"] == "Failed" and details["exitCode"] == 3
    assert details["error"]["message"].startswith("the script exited with code 3"), details["error"]
    assert "bye" in details["error"]["message"]
