"""``mltrain run logs --follow``: it ends when the run ends, also when the run's supervisor died.

Regression test for issue 14's B10: the follower settled nothing, so a run whose supervisor was
killed stayed Running and the follow never ended. Real CLI process, real run, real SIGKILL.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from mltrain_desktop.core import Experiment
from mltrain_desktop.train.estimator import Estimator

SLEEPER = """
import time
print("job started", flush=True)
time.sleep(300)
"""


def _follow(ws, run_id):
    env = {k: v for k, v in os.environ.items() if k != "MLTRAIN_WORKSPACE"}
    return subprocess.Popen([sys.executable, "-m", "mltrain_desktop.cli", "-w", str(ws.path), "run", "logs",
                             run_id, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _submit(ws, src):
    return Experiment(ws, "follow").submit(Estimator(source_directory=str(src), entry_script="job.py",
                                                     compute_target="local"))


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_follow_ends_with_the_final_state_when_the_supervisor_died(ws, make_script):
    run = _submit(ws, make_script(SLEEPER))
    _wait(lambda: "job started" in (run.run_dir / "logs" / "driver.log").read_text(errors="replace")
          if (run.run_dir / "logs" / "driver.log").exists() else False, 60, "the job to start")
    follower = _follow(ws, run.id)
    try:
        time.sleep(1.0)
        assert follower.poll() is None, "the follow ended while the run was running"
        sup = psutil.Process(run._row()["supervisor_pid"])
        killed_at = time.monotonic()
        sup.kill()
        out, err = follower.communicate(timeout=30)
        took = time.monotonic() - killed_at
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 0, err
    assert "job started" in out
    assert run.get_status() == "Failed"
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"[mltrain] run {run.id} Failed: the run's supervisor process"), err
    assert took < 15, f"the follow took {took:.1f} s to notice the dead supervisor"


def test_follow_of_a_run_that_completes_says_so(ws, make_script):
    run = _submit(ws, make_script("import time\ntime.sleep(1.5)\nprint('done', flush=True)\n"))
    follower = _follow(ws, run.id)
    try:
        out, err = follower.communicate(timeout=60)
    finally:
        follower.kill()
        follower.wait()
    assert follower.returncode == 0, err
    assert "done" in out
    assert err.strip().splitlines()[-1] == f"[mltrain] run {run.id} Completed"
