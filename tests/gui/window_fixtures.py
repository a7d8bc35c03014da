"""Fixtures for the window tests: private settings, a window, workspaces with finished runs."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TINY_SCRIPT = """
import os, sys, time
from mltrain_desktop.core import Run
run = Run.get_context()
n = int(sys.argv[sys.argv.index('--steps') + 1]) if '--steps' in sys.argv else 50
lr = sys.argv[sys.argv.index('--lr') + 1] if '--lr' in sys.argv else '0.1'
run.tag('lr', lr)
for i in range(n):
    run.log('loss', 1.0 / (i + 1) * float(lr) * 10)
    run.log('accuracy', 1 - 1.0 / (i + 2))
run.log('final_accuracy', 0.9)
os.makedirs('outputs/model', exist_ok=True)
open('outputs/model/weights.bin', 'wb').write(b'w' * 1000)
print('done', n, 'steps', flush=True)
"""


@pytest.fixture
def private_settings(tmp_path, monkeypatch):
    """MLTRAIN_HOME (default workspace and QSettings) under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MLTRAIN_HOME", str(home))
    from mltrain_desktop.gui.app import configure_settings
    configure_settings()
    return home


@pytest.fixture
def window(qtbot, private_settings):
    from mltrain_desktop.gui.main_window import MainWindow
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    path = w.workspace_path
    w.shutdown()
    if path:
        cancel_leftovers(path)


def cancel_leftovers(path) -> None:
    from mltrain_desktop.core import Workspace
    from mltrain_desktop.core.runs import Run
    ws = Workspace(path)
    try:
        for (rid,) in ws.db.execute("SELECT id FROM runs WHERE status NOT IN ('Completed','Failed','Canceled')"):
            try:
                Run.get(ws, rid).cancel(wait_seconds=20)
            except Exception:  # noqa: BLE001
                pass
    finally:
        ws.close()


def tiny_source(tmp_path: Path) -> Path:
    src = tmp_path / "tiny-src"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text(textwrap.dedent(TINY_SCRIPT))
    return src


def make_workspace_with_runs(tmp_path: Path, runs: int = 2, model: bool = True, dataset: bool = True) -> Path:
    """A workspace holding the sample subset dataset, ``runs`` finished tiny runs and a model."""
    from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace
    from mltrain_desktop.core.sample_flow import register_sample_dataset
    path = tmp_path / "ws-runs"
    ws = Workspace.create(path)
    if dataset:
        register_sample_dataset(ws, full=False)
    src = tiny_source(tmp_path)
    done = []
    for i in range(runs):
        r = Experiment(ws, "tiny").submit(ScriptRunConfig(source_directory=str(src), script="train.py",
                                                         arguments=["--steps", 40 + 20 * i, "--lr", 0.1 * (i + 1)]))
        done.append(r)
    for r in done:
        r.wait_for_completion(timeout=120)
    if model:
        done[0].register_model("tiny-model", "outputs/model", model_framework="Custom", tags={"kind": "test"})
    ws.close()
    return path


def mltrain_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mltrain")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "mltrain_desktop.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=dict(os.environ))
