"""``mltrain sweep submit|list|show|children|best|cancel`` through click's CliRunner, on a real workspace."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mltrain_desktop.cli import cli
from mltrain_desktop.cli.sweeps import sweep

SCRIPT = """
    import argparse, os, time
    from mltrain_desktop.core import Run
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    run = Run.get_context()
    for i in range(a.steps):
        run.log("acc", a.x * (i + 1) / a.steps)
        time.sleep(float(os.environ.get("STEP_SLEEP", "0.02")))
    os.makedirs("outputs/model", exist_ok=True)
    open("outputs/model/weights.txt", "w").write(str(a.x))
"""

if "sweep" not in cli.commands:  # until cli/__init__.py registers it
    cli.add_command(sweep)


def _invoke(ws, *args):
    result = CliRunner().invoke(cli, ["--workspace", str(ws.path), "--json", "sweep", *args])
    return result


def test_submit_wait_list_show_children_best(ws, make_script):
    src = make_script(SCRIPT)
    r = _invoke(ws, "submit", "-e", "clisweep", "-s", str(src), "-c", "job.py", "--sampling", "grid",
                "--param", "--x=choice(0.1, 0.7, 0.4)", "--metric", "acc", "--max-concurrent-runs", "2", "--wait",
                "--", "--steps", "2")
    assert r.exit_code == 0, r.output
    sweep_id = json.loads(r.output)["run_id"]
    assert json.loads(r.output)["status"] == "Completed"
    listed = json.loads(_invoke(ws, "list").output)
    assert [(s["id"], s["children"], s["status"]) for s in listed] == [(sweep_id, 3, "Completed")]
    shown = json.loads(_invoke(ws, "show", sweep_id).output)
    assert shown["children"] == {"Completed": 3} and shown["settings"]["sampling"]["name"] == "GRID"
    children = json.loads(_invoke(ws, "children", sweep_id, "--top", "2").output)
    assert [c["hyperparameters"]["--x"] for c in children] == [0.7, 0.4]
    best = json.loads(_invoke(ws, "best", sweep_id, "--register-model", "clibest").output)
    assert best["hyperparameters"] == {"--x": 0.7} and best["best_primary_metric"] == pytest.approx(0.7)
    assert best["run_id"] == shown["best_child_run_id"] and best["model"]
    text = CliRunner().invoke(cli, ["--workspace", str(ws.path), "sweep", "children", sweep_id])
    assert text.exit_code == 0 and "HYPERPARAMETERS" in text.output and "--x=0.7" in text.output


def test_cancel_through_the_cli(ws, make_script, monkeypatch):
    monkeypatch.setenv("STEP_SLEEP", "0.5")
    src = make_script(SCRIPT)
    r = _invoke(ws, "submit", "-e", "clicancel", "-s", str(src), "-c", "job.py", "--param",
                "--x=uniform(0, 1)", "--metric", "acc", "--max-total-runs", "4", "--max-concurrent-runs", "1",
                "--", "--steps", "100")
    assert r.exit_code == 0, r.output
    sweep_id = json.loads(r.output)["run_id"]
    out = _invoke(ws, "cancel", sweep_id, "--wait-seconds", "90")
    assert out.exit_code == 0 and json.loads(out.output)["status"] == "Canceled"
    shown = json.loads(_invoke(ws, "show", sweep_id).output)
    assert set(shown["children"]) <= {"Canceled"}


@pytest.mark.parametrize("param, message", [
    ("--x", "is not NAME=DISTRIBUTION(ARGS)"),
    ("--x=gaussian(0, 1)", "unknown distribution 'gaussian'"),
    ("--x=uniform(0, one)", "must be numbers or quoted strings"),
    ("--x=uniform(0)", "uniform"),
])
def test_bad_parameters_are_refused_with_what_to_write(ws, make_script, param, message):
    r = _invoke(ws, "submit", "-e", "clibad", "-s", str(make_script(SCRIPT)), "-c", "job.py", "--param", param,
                "--metric", "acc", "--max-total-runs", "2")
    assert r.exit_code != 0 and message in r.output, r.output
    assert json.loads(_invoke(ws, "list").output) == []


def test_bad_limits_and_grid_over_continuous_are_refused(ws, make_script):
    src = str(make_script(SCRIPT))
    base = ["submit", "-e", "clibad", "-s", src, "-c", "job.py", "--metric", "acc"]
    r = _invoke(ws, *base, "--param", "--x=uniform(0, 1)", "--max-total-runs", "0")
    assert r.exit_code != 0 and "max_total_runs must be between 1 and 1000" in r.output
    r = _invoke(ws, *base, "--param", "--x=uniform(0, 1)", "--sampling", "grid")
    assert r.exit_code != 0 and "GridParameterSampling supports only choice" in r.output
    r = _invoke(ws, "show", "nope")
    assert r.exit_code != 0 and "no run with id 'nope'" in r.output


def test_a_sweep_command_resumes_a_sweep_whose_driver_was_killed(ws, make_script):
    import os
    import signal
    import time
    from mltrain_desktop.core.runs import Run
    src = make_script(SCRIPT)
    r = _invoke(ws, "submit", "-e", "clikill", "-s", str(src), "-c", "job.py", "--sampling", "grid", "--param",
                "--x=choice(0.1, 0.2)", "--metric", "acc", "--max-concurrent-runs", "1", "--", "--steps", "20")
    htr = Run.get(ws, json.loads(r.output)["run_id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not htr.get_children():
        time.sleep(0.05)
    old = htr._require_row()["supervisor_pid"]
    os.kill(old, signal.SIGKILL)
    time.sleep(0.3)
    shown = json.loads(_invoke(ws, "show", htr.id).output)
    assert shown["status"] == "Running" and htr._require_row()["supervisor_pid"] not in (old, -1, None)
    assert htr.wait_for_completion(timeout=120)["status"] == "Completed" and len(htr.get_children()) == 2
