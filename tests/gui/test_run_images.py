"""The run detail's Images tab shows what run.log_image stored (a real run, the real window)."""
from __future__ import annotations

import pytest

from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace

from window_fixtures import private_settings, window  # noqa: F401

pytestmark = [pytest.mark.gui]

JOB = """
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from mltrain_desktop.run import Run
run = Run.get_context()
plt.plot([1, 2, 3], [3, 1, 2])
run.log_image('loss curve', plot=plt)
"""


def test_images_of_a_run_are_shown_in_its_images_tab(qtbot, window, tmp_path):  # noqa: F811
    ws = Workspace.create(tmp_path / "ws")
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(JOB)
    run = Experiment(ws, "img").submit(ScriptRunConfig(source_directory=str(src), script="job.py"))
    run.wait_for_completion(timeout=120)
    run.log_image("from the notebook", plot=__import__("matplotlib.pyplot").pyplot)
    ws.close()
    window.open_workspace(str(tmp_path / "ws"))
    qtbot.waitUntil(lambda: window.workspace_path is not None, timeout=15_000)
    view = window.show_run(run.id)
    qtbot.waitUntil(lambda: len(view.images.shown) == 2, timeout=20_000)
    assert view.images.shown == ["outputs/images/from_the_notebook-000.png", "outputs/images/loss_curve-000.png"]
    thumbs = view.images.thumbnails()
    assert len(thumbs) == 2 and all(t.pixmap() is not None and not t.pixmap().isNull() for t in thumbs)
    view.tabs.setCurrentWidget(view.images)
    view.grab().save(str(tmp_path / "images.png"))
