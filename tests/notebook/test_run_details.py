"""RunDetails(run).show(): in a real Jupyter kernel (nbclient + ipykernel) it displays an
ipywidgets view that follows the run to its end; its pieces render a real run and a real
sweep; outside Jupyter it opens the window on the run."""
from __future__ import annotations

import json
import sys
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

from mltrain_desktop.compat.run_details import (RunDetails, charts_html, children_html, in_jupyter, metrics_html,
                                                snapshot, status_html, timeline_html)
from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace

SCRIPT = """
import sys, time
from mltrain_desktop.run import Run
run = Run.get_context()
lr = float(sys.argv[sys.argv.index('--lr') + 1]) if '--lr' in sys.argv else 0.1
for i in range(int(sys.argv[sys.argv.index('--steps') + 1]) if '--steps' in sys.argv else 6):
    run.log('loss', 1.0 / (i + 1))
    run.log('acc', 1 - lr / (i + 1))
    time.sleep(float(sys.argv[sys.argv.index('--sleep') + 1]) if '--sleep' in sys.argv else 0)
run.log('final', 0.5)
"""


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "train.py").write_text(SCRIPT)
    return d


@pytest.fixture
def ws(tmp_path):
    w = Workspace.create(tmp_path / "ws")
    yield w
    w.close()


def test_the_pieces_render_a_finished_run(ws, src):
    run = Experiment(ws, "rd").submit(ScriptRunConfig(source_directory=str(src), script="train.py"))
    run.wait_for_completion(timeout=120)
    s = snapshot(run)
    assert s["status"] == "Completed" and s["children"] is None
    assert "Completed" in status_html(s) and run.id in status_html(s)
    assert [e[1] for e in s["events"]][-1] == "Completed" and "Running" in timeline_html(s)
    assert "final" in metrics_html(s) and "0.5" in metrics_html(s)
    charts = charts_html(s)
    assert charts.count("<svg") == 2 and "loss (last 0.1667)" in charts and "6 points" in charts


def test_a_sweep_shows_its_children_with_hyperparameters(ws, src):
    from mltrain_desktop.train.hyperdrive import (HyperDriveConfig, PrimaryMetricGoal, RandomParameterSampling,
                                                  uniform)
    htc = HyperDriveConfig(run_config=ScriptRunConfig(source_directory=str(src), script="train.py"),
                           hyperparameter_sampling=RandomParameterSampling({"--lr": uniform(0.01, 0.5)}),
                           primary_metric_name="acc", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                           max_total_runs=2, max_concurrent_runs=2)
    htr = Experiment(ws, "rd-sweep").submit(htc)
    htr.wait_for_completion(timeout=180)
    s = snapshot(htr)
    assert s["primary_metric"] == "acc" and len(s["children"]) == 2
    table = children_html(s)
    assert "--lr" in table and all(c.id in table for c in htr.get_children())
    best = htr.get_best_run_by_primary_metric()
    assert max(k["best"] for k in s["children"]) == pytest.approx(max(best.get_metrics("acc")["acc"]))


def test_outside_jupyter_it_opens_the_window_on_the_run(ws, src, monkeypatch):
    run = Experiment(ws, "rd").submit(ScriptRunConfig(source_directory=str(src), script="train.py"))
    run.wait_for_completion(timeout=120)
    assert not in_jupyter()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    proc = RunDetails(run).show()
    try:
        assert proc.args[-2:] == ["--run", run.id] and str(ws.path) in proc.args
        with pytest.raises(Exception):
            proc.wait(timeout=4)  # the window stays up: it did not fail on its arguments
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="RunDetails takes a submitted run"):
        RunDetails("run-id")


NOTEBOOK_CELLS = [
    """
from mltrain_desktop.core import Workspace, Experiment, ScriptRunConfig
from mltrain_desktop.compat.run_details import RunDetails
ws = Workspace({ws!r})
run = Experiment(ws, 'nb').submit(ScriptRunConfig(source_directory={src!r}, script='train.py',
                                                  arguments=['--steps', 8, '--sleep', 0.4]))
""",
    """
rd = RunDetails(run, refresh_seconds=0.5)
rd.show()
""",
    """
run.wait_for_completion(timeout=120)
rd.wait(30)
print(rd.updates > 1, 'Completed' in rd._parts['status'].value, 'acc' in rd._parts['metrics'].value)
""",
]


def test_in_a_real_kernel_the_widget_follows_the_run_to_its_end(ws, src, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c.format(ws=str(ws.path), src=str(src))))
                for c in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    shown = nb.cells[1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown), json.dumps(shown)
    assert nb.cells[2].outputs[-1]["text"].split() == ["True", "True", "True"], nb.cells[2].outputs
