"""run.log / log_list / log_row / tag / log_image on a submitted run, from the driver side (the
notebook's cells after exp.submit), and log_image inside a job: stored with the run, once."""
from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace  # noqa: E402
from mltrain_desktop.core.run_logging import DRIVER_METRICS_FILE  # noqa: E402

JOB = """
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from mltrain_desktop.run import Run
run = Run.get_context()
for i in range(3):
    run.log('acc', 0.5 + i / 10)
plt.plot([1, 2, 3], [3, 1, 2])
run.log_image('loss curve', plot=plt)
run.log_image('loss curve', plot=plt)
"""


@pytest.fixture
def done_run(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(JOB)
    run = Experiment(ws, "drv").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    run.wait_for_completion(timeout=120)
    yield run
    ws.close()


def test_the_jobs_images_are_stored_with_the_run(done_run):
    images = sorted(p for p in done_run.get_file_names() if p.startswith("outputs/images/"))
    assert images == ["outputs/images/loss_curve-000.png", "outputs/images/loss_curve-001.png"]
    assert (done_run.run_dir / images[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_driver_side_values_continue_the_jobs_series_and_are_stored_once(done_run):
    done_run.log("acc", 0.95)
    done_run.log_list("losses", [0.3, 0.2])
    done_run.log_row("table", epoch=1, value=0.9)
    done_run.tag("reviewed", "yes")
    m = done_run.get_metrics()
    assert m["acc"] == [0.5, 0.6, 0.7, 0.95] and m["losses"] == [0.3, 0.2]
    assert m["table"] == {"epoch": [1], "value": [0.9]}
    assert done_run.get_tags()["reviewed"] == "yes"
    # another client ingesting the same file stores nothing twice
    from mltrain_desktop.store.metrics import ingest_file
    other = Workspace(done_run.workspace.path)
    ingest_file(other.db.conn, done_run.id, done_run.run_dir / "logs" / DRIVER_METRICS_FILE)
    assert done_run.get_metrics("acc")["acc"] == [0.5, 0.6, 0.7, 0.95]
    other.close()


def test_driver_side_images_from_a_plot_and_from_a_file(done_run, tmp_path):
    fig = plt.figure()
    plt.plot([0, 1], [1, 0])
    first = done_run.log_image("loss curve", plot=fig)
    png = tmp_path / "cm.png"
    fig.savefig(png)
    second = done_run.log_image("confusion matrix", path=str(png))
    assert first.endswith("loss_curve-002.png") and second.endswith("confusion_matrix-000.png")
    assert "outputs/images/confusion_matrix-000.png" in done_run.get_file_names()


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of path="), ({"path": "x.png", "plot": plt}, "exactly one of path="),
    ({"path": "/nonexistent.png"}, "is not a file"), ({"plot": object()}, "must have savefig"),
])
def test_bad_log_image_calls_say_what_to_pass(done_run, kwargs, message):
    with pytest.raises(ValueError, match=message):
        done_run.log_image("x", **kwargs)


@pytest.mark.parametrize("name", ["../../escape", "/etc/passwd", "a\x00b", "..", "   "])
def test_image_names_stay_inside_the_images_folder(done_run, name, tmp_path):
    png = tmp_path / "p.png"
    plt.figure().savefig(png)
    if not name.strip():
        with pytest.raises(ValueError, match="needs a name"):
            done_run.log_image(name, path=str(png))
        return
    dest = done_run.log_image(name, path=str(png))
    images = (done_run.run_dir / "outputs" / "images").resolve()
    assert str(__import__("pathlib").Path(dest).resolve().parent) == str(images)


def test_driver_side_logging_does_not_print_offline(done_run, capsys):
    done_run.log("x", 1)
    assert "[offline run]" not in capsys.readouterr().out
