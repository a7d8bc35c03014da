"""The sweep driver for real on small scripts: detached driver, real supervisors, real SQLite, real Optuna journal."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mltrain_desktop.core import Experiment, ScriptRunConfig
from mltrain_desktop.core.errors import UserErrorException
from mltrain_desktop.core.runs import Run
from mltrain_desktop.train.hyperdrive import (BanditPolicy, BayesianParameterSampling, GridParameterSampling,
                                              HyperDriveConfig, PrimaryMetricGoal, RandomParameterSampling, choice,
                                              uniform)
from mltrain_desktop.train.hyperdrive.recovery import recover_sweeps
from mltrain_desktop.train.hyperdrive.run import HyperDriveRun
from mltrain_desktop.train.hyperdrive.sampling import JOURNAL_FILE, SweepSampler

# acc after step i is x * (i + 1) / steps: the larger --x, the better; --fail-above makes large x fail.
SCRIPT = """
    import argparse, sys, time
    from mltrain_desktop.core import Run
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, required=True)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--sleep", type=float, default=0.05)
    p.add_argument("--fail-above", type=float, default=99.0)
    p.add_argument("--metric", default="acc")
    p.add_argument("--resume-from")
    a = p.parse_args()
    if a.resume_from:
        print("resuming from", a.resume_from, flush=True)
    if a.x > a.fail_above:
        sys.exit("x too large: failing on purpose")
    run = Run.get_context()
    for i in range(a.steps):
        run.log(a.metric, a.x * (i + 1) / a.steps)
        time.sleep(a.sleep)
    run.log("acc", "not a number")  # a string point and a NaN are ignored, not fatal
    run.log("acc", float("nan"))
"""


def _src(make_script, *args):
    return ScriptRunConfig(source_directory=str(make_script(SCRIPT)), script="job.py", arguments=list(args),
                           compute_target="local")


def _config(rc, space=None, **kw):
    args = dict(run_config=rc, hyperparameter_sampling=GridParameterSampling(space or {"--x": choice(0.2, 0.5, 0.9)}),
                primary_metric_name="acc", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=3,
                max_concurrent_runs=2)
    args.update(kw)
    return HyperDriveConfig(**args)


def _wait(htr, timeout=180):
    return htr.wait_for_completion(raise_on_error=False, timeout=timeout)


def test_a_grid_sweep_runs_every_child_and_finds_the_best(ws, make_script):
    htr = Experiment(ws, "sweep").submit(_config(_src(make_script, "--steps", 3)), tags={"who": "test"})
    assert isinstance(htr, HyperDriveRun) and isinstance(Run.get(ws, htr.id), HyperDriveRun)
    details = _wait(htr)
    assert details["status"] == "Completed", details
    children = htr.get_children()
    assert len(children) == 3 and all(c.get_status() == "Completed" for c in children)
    assert sorted(c.hyperparameters["--x"] for c in children) == [0.2, 0.5, 0.9]
    for c in children:
        d = c.get_details()
        assert d["parentRunId"] == htr.id and d["hyperparameters"] == c.hyperparameters
        assert json.loads(d["tags"]["hyperparameters"]) == c.hyperparameters
        assert d["arguments"][-2:] == ["--x", str(c.hyperparameters["--x"])]
    best = htr.get_best_run_by_primary_metric()
    assert best.hyperparameters == {"--x": 0.9} and best.get_metrics("acc")["acc"][-3:-1] == [pytest.approx(0.9), "not a number"]
    ranked = htr.get_children_sorted_by_primary_metric(top=2)
    assert [r["hyperparameters"]["--x"] for r in ranked] == [0.9, 0.5]
    assert ranked[0]["best_primary_metric"] == pytest.approx(0.9) and ranked[0]["run_id"] == best.id
    assert htr.get_tags()["best_child_run_id"] == best.id and details["bestChildRunId"] == best.id
    with pytest.raises(Exception, match="cancel it before deleting it"):
        Experiment(ws, "sweep2").submit(_config(_src(make_script, "--steps", 3))).delete()
    exp = Experiment(ws, "sweep")
    assert [type(r).__name__ for r in exp.get_runs()] == ["HyperDriveRun"]
    assert len(list(exp.get_runs(include_children=True))) == 4
    assert best.get_parent().id == htr.id and best.parent_id == htr.id and htr.parent_id is None
    # at most 2 children were unfinished at any time
    spans = [(c.get_events()[0]["at"], c.get_events()[-1]["at"]) for c in children]
    assert max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans) <= 2
    # the Optuna journal in the parent's folder holds every trial, told
    sampler = SweepSampler(htr.settings.sampling, htr.run_dir)
    assert (htr.run_dir / JOURNAL_FILE).is_file()
    assert sorted((t.state, t.value) for t in sampler.trials()) == [
        ("Completed", pytest.approx(v)) for v in (0.2, 0.5, 0.9)]


def test_bandit_stops_the_poor_children_with_the_reason_in_their_details(ws, make_script):
    rc = _src(make_script, "--steps", "30", "--sleep", "0.2")
    htc = _config(rc, {"--x": choice(1.0, 0.3)}, max_total_runs=2, max_concurrent_runs=2,
                  policy=BanditPolicy(evaluation_interval=2, slack_factor=0.1))
    htr = Experiment(ws, "bandit").submit(htc)
    assert _wait(htr)["status"] == "Completed"
    by_x = {c.hyperparameters["--x"]: c for c in htr.get_children()}
    good, poor = by_x[1.0], by_x[0.3]
    assert good.get_status() == "Completed"
    assert poor.get_status() == "Canceled"
    reason = poor.get_details()["earlyTermination"]
    assert reason.startswith("early terminated by BanditPolicy: ") and "< best" in reason and "/ 1.1" in reason
    assert any(e["detail"] == reason for e in poor.get_events())
    assert len(poor.get_metrics("acc")["acc"]) < 30  # stopped before its end
    assert htr.get_best_run_by_primary_metric().id == good.id


def test_a_failing_child_does_not_stop_the_sweep(ws, make_script):
    htr = Experiment(ws, "somefail").submit(_config(_src(make_script, "--fail-above", "0.6")))
    assert _wait(htr)["status"] == "Completed"
    states = {c.hyperparameters["--x"]: c.get_status() for c in htr.get_children()}
    assert states == {0.2: "Completed", 0.5: "Completed", 0.9: "Failed"}
    assert htr.get_best_run_by_primary_metric().hyperparameters == {"--x": 0.5}


def test_every_child_failing_fails_the_sweep_saying_so(ws, make_script):
    htr = Experiment(ws, "allfail").submit(_config(_src(make_script, "--fail-above", "0.0")))
    details = _wait(htr)
    assert details["status"] == "Failed"
    assert "every child run failed (3)" in details["error"]["message"]
    assert "failing on purpose" in details["error"]["message"]
    assert htr.get_best_run_by_primary_metric() is None


def test_a_primary_metric_no_child_logs_ends_the_sweep_saying_so(ws, make_script):
    htc = _config(_src(make_script, "--metric", "accuracy"), primary_metric_name="val_acc")
    htr = Experiment(ws, "nometric").submit(htc)
    details = _wait(htr, timeout=120)
    assert details["status"] == "Failed"
    msg = details["error"]["message"]
    assert "without logging the primary metric 'val_acc'" in msg and "accuracy" in msg


def test_cancel_right_after_the_children_start_cancels_every_child(ws, make_script):
    # cancelled as soon as the first child is recorded: children are Queued or Preparing then
    htr = Experiment(ws, "cancel").submit(_config(_src(make_script, "--steps", "50", "--sleep", "0.2")))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not htr.get_children():
        time.sleep(0.01)
    seen = [c.get_status() for c in htr.get_children()]
    assert seen and set(seen) <= {"Queued", "Preparing", "Running"}
    assert htr.cancel(wait_seconds=90) == "Canceled"
    children = htr.get_children()
    assert children and all(c.get_status() == "Canceled" for c in children), [c.get_status() for c in children]
    assert len(children) <= 2
    assert htr.get_events()[-1]["detail"] == "canceled by the user"


def test_a_killed_driver_is_found_and_the_sweep_resumed(ws, make_script):
    rc = _src(make_script, "--steps", "10", "--sleep", "0.2")
    htr = Experiment(ws, "killed").submit(_config(rc, max_concurrent_runs=1))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not htr.get_children():
        time.sleep(0.05)
    old_pid = htr._require_row()["supervisor_pid"]
    os.kill(old_pid, signal.SIGKILL)
    time.sleep(0.5)
    assert recover_sweeps(ws) == [htr.id]
    assert recover_sweeps(ws) == []  # the new driver is alive: nothing to do
    new_pid = htr._require_row()["supervisor_pid"]
    assert new_pid not in (old_pid, -1, None)
    details = _wait(htr)
    assert details["status"] == "Completed"
    children = htr.get_children()
    assert len(children) == 3 and {c.get_status() for c in children} == {"Completed"}
    assert sorted(c.hyperparameters["--x"] for c in children) == [0.2, 0.5, 0.9]  # the grid was not repeated
    log = htr.read_log()[0]
    assert "driver restarted" in log
    best = htr.get_best_run_by_primary_metric()
    (best.run_dir / "outputs" / "w.txt").write_text("w")
    best.register_model("swept", "outputs/w.txt")
    from mltrain_desktop.core.errors import RunError
    with pytest.raises(RunError, match="have registered models"):
        htr.delete()
    assert len(htr.get_children()) == 3  # nothing was deleted
    other = [c for c in children if c.id != best.id][0]
    other.delete()
    assert len(htr.get_children()) == 2


def test_a_killed_driver_of_a_sweep_being_cancelled_ends_it_canceled(ws, make_script):
    rc = _src(make_script, "--steps", "50", "--sleep", "0.2")
    htr = Experiment(ws, "killcancel").submit(_config(rc, max_concurrent_runs=1))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not htr.get_children():
        time.sleep(0.05)
    os.kill(htr._require_row()["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.3)
    from mltrain_desktop.store import runs as run_rows
    run_rows.request_cancel(ws.db.conn, htr.id)
    assert recover_sweeps(ws) == [htr.id]
    assert htr.get_status() == "Canceled"
    child = htr.get_children()[0]
    assert child.wait_for_completion(raise_on_error=False, timeout=60)["status"] == "Canceled"


# -- bad input: refused at HyperDriveConfig() or at submit, nothing stored ------------------------------------

def test_bad_sweeps_are_refused_before_anything_is_stored(ws, make_script):
    rc = _src(make_script)
    with pytest.raises(ValueError, match="GridParameterSampling supports only choice"):
        GridParameterSampling({"--x": uniform(0, 1)})
    with pytest.raises(UserErrorException, match="Early termination policy for Bayesian sampling is not supported"):
        _config(rc, hyperparameter_sampling=BayesianParameterSampling({"--x": uniform(0, 1)}),
                policy=BanditPolicy(slack_factor=0.1))
    for bad in (0, -1, 1001):
        with pytest.raises(UserErrorException, match="max_total_runs must be between 1 and 1000"):
            _config(rc, hyperparameter_sampling=RandomParameterSampling({"--x": uniform(0, 1)}), max_total_runs=bad)
    for bad in (0, -3):
        with pytest.raises(UserErrorException, match="max_concurrent_runs must be at least 1"):
            _config(rc, max_concurrent_runs=bad)
    with pytest.raises(UserErrorException, match="hyperparameter '--x' is also a fixed script argument"):
        _config(_src(make_script, "--x", "0.5"))
    exp = Experiment(ws, "bad")
    with pytest.raises(UserErrorException, match="not a sweep"):
        exp.submit(_config(rc, resume_from=["nope"]))
    assert list(exp.get_runs()) == [] and not any(ws.runs_dir.glob("bad_*"))


def test_b12_an_experiment_name_too_long_for_run_folders_is_refused_and_nothing_is_made(ws, make_script):
    from mltrain_desktop.core.experiment import MAX_NEW_NAME
    with pytest.raises(UserErrorException, match=r"at most 200.*255-character limit"):
        Experiment(ws, "e" * 236)
    assert not any(e.name.startswith("eee") for e in Experiment.list(ws))
    exp = Experiment(ws, "e" * MAX_NEW_NAME)  # the longest allowed name can run and sweep
    htr = exp.submit(_config(_src(make_script), max_total_runs=1))
    assert _wait(htr)["status"] == "Completed" and htr.get_children()[0].get_status() == "Completed"


def test_warm_start_from_an_earlier_sweep_and_resumed_children(ws, make_script):
    rc = _src(make_script, "--steps", "2")
    first = Experiment(ws, "warm").submit(_config(rc, {"--x": choice(0.2, 0.5)}, max_total_runs=2))
    assert _wait(first)["status"] == "Completed"
    earlier_best = first.get_best_run_by_primary_metric()
    second = Experiment(ws, "warm").submit(_config(rc, {"--x": choice(0.2, 0.5, 0.9)}, resume_from=[first],
                                                   resume_child_runs=[earlier_best]))
    assert _wait(second)["status"] == "Completed"
    children = second.get_children()
    # the resumed child runs again with --resume-from; of the grid only 0.9 is new (0.2 and 0.5 were seeded)
    resumed = [c for c in children if c.get_tags().get("hyperdrive.resumed_from") == earlier_best.id]
    assert len(resumed) == 1 and resumed[0].hyperparameters == {"--x": 0.5}
    assert resumed[0].get_details()["arguments"][-2:] == ["--resume-from", str(earlier_best.run_dir / "outputs")]
    assert "resuming from" in resumed[0].read_log()[0]
    assert sorted(c.hyperparameters["--x"] for c in children) == [0.5, 0.9]
    assert second.get_best_run_by_primary_metric().hyperparameters == {"--x": 0.9}
    assert "warm start from sweep" in second.read_log()[0]


def test_max_duration_ends_the_sweep_and_cancels_what_still_runs(ws, make_script):
    rc = _src(make_script, "--steps", "400", "--sleep", "0.05")
    htr = Experiment(ws, "duration").submit(_config(rc, max_duration_minutes=0.08))  # ~5 s
    details = _wait(htr, timeout=120)
    assert details["status"] == "Completed"
    assert "max_duration_minutes=0.08 reached" in htr.get_events()[-1]["detail"]
    children = htr.get_children()
    assert len(children) == 2 and {c.get_status() for c in children} == {"Canceled"}
    best = htr.get_best_run_by_primary_metric()  # cancelled children count, with what they logged
    assert best.hyperparameters["--x"] == max(c.hyperparameters["--x"] for c in children)
    from mltrain_desktop.train.hyperdrive import HyperDriveRun as exported
    assert exported is HyperDriveRun


def test_the_targets_concurrent_run_limit_bounds_the_sweep(ws, make_script):
    from mltrain_desktop.core.compute import ComputeTarget, LocalCompute
    ComputeTarget.create(ws, "single", LocalCompute.provisioning_configuration(max_concurrent_runs=1))
    rc = ScriptRunConfig(source_directory=str(make_script(SCRIPT)), script="job.py", arguments=["--steps", "3"],
                         compute_target="single")
    htr = Experiment(ws, "bounded").submit(_config(rc, max_concurrent_runs=3))
    assert _wait(htr)["status"] == "Completed"
    children = htr.get_children()
    assert len(children) == 3
    for before, after in zip(children, children[1:]):  # each child was submitted after the one before ended
        assert before.get_events()[-1]["at"] <= after.get_events()[0]["at"]
    assert "1 at once" in htr.get_events()[2]["detail"]
    assert ComputeTarget(ws, "single").provisioning_state == "Succeeded"


def test_a_finished_sweep_is_deleted_with_its_children(ws, make_script):
    htr = Experiment(ws, "gone").submit(_config(_src(make_script), max_total_runs=2))
    assert _wait(htr)["status"] == "Completed"
    folders = [htr.run_dir] + [c.run_dir for c in htr.get_children()]
    htr.delete()
    assert not any(f.exists() for f in folders)
    assert list(Experiment(ws, "gone").get_runs(include_children=True)) == []


def test_a_killed_driver_whose_sweep_cannot_go_on_is_failed_with_why(ws, make_script):
    rc = _src(make_script, "--steps", "50", "--sleep", "0.2")
    htr = Experiment(ws, "unreadable").submit(_config(rc, max_concurrent_runs=1))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not htr.get_children():
        time.sleep(0.05)
    os.kill(htr._require_row()["supervisor_pid"], signal.SIGKILL)
    spec = htr.spec
    spec["hyperdrive"]["sampling"]["name"] = "NOSUCH"
    ws.db.execute("UPDATE runs SET spec=? WHERE id=?", [json.dumps(spec), htr.id])
    time.sleep(0.3)
    assert recover_sweeps(ws) == [htr.id]
    details = htr.get_details()
    assert details["status"] == "Failed"
    assert "could not be continued: ValueError: unknown sampling 'NOSUCH'" in details["error"]["message"]
    child = htr.get_children()[0]
    assert child.wait_for_completion(raise_on_error=False, timeout=60)["status"] == "Canceled"


def test_a_distributed_child_is_one_run_with_its_ranks(ws, make_script):
    import shutil
    if shutil.which("mpirun") is None:
        pytest.skip("mpirun is not installed")
    from mltrain_desktop import AmlCompute, ComputeTarget, MpiConfiguration
    ComputeTarget.create(ws, "local2", AmlCompute.provisioning_configuration(vm_size="x", max_nodes=2))
    rc = ScriptRunConfig(source_directory=str(make_script(SCRIPT)), script="job.py", arguments=["--steps", "3"],
                         compute_target="local2", distributed_job_config=MpiConfiguration(process_count_per_node=2))
    htr = Experiment(ws, "mpi").submit(_config(rc, {"--x": choice(0.3, 0.6)}, max_total_runs=2,
                                               max_concurrent_runs=1))
    assert _wait(htr)["status"] == "Completed"
    children = htr.get_children()
    assert len(children) == 2 and {c.get_status() for c in children} == {"Completed"}
    for c in children:
        assert c.spec["distribution"]["process_count_per_node"] == 2
        assert c.get_metrics("acc", rank=1)["acc"][:3] == pytest.approx([c.hyperparameters["--x"] * k / 3
                                                                         for k in (1, 2, 3)])
    assert htr.get_best_run_by_primary_metric().hyperparameters == {"--x": 0.6}
