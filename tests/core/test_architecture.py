"""The core runs headless: no Qt under core, store, engine, serving or the in-job API."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contract_holds():
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "2 kept, 0 broken" in out.stdout


def _lint_copy(tmp_path, module: str, source: str):
    """lint-imports over a copy of the package with one extra module in it."""
    import shutil
    shutil.copytree(REPO / "mltrain_desktop", tmp_path / "mltrain_desktop",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / (module.replace(".", "/") + ".py")
    target.write_text(source)
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run([str(exe), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("module, source", [
    ("mltrain_desktop.store.upward_probe", "def f():\n    from mltrain_desktop.core import workspace\n"),
    ("mltrain_desktop.domain.upward_probe", "import mltrain_desktop.store.db\n"),
    ("mltrain_desktop.adapters.upward_probe", "def f():\n    from ..engine import supervisor\n"),
    ("mltrain_desktop.engine.upward_probe", "from mltrain_desktop.core.runs import Run\n"),
    ("mltrain_desktop.core.upward_probe", "def f():\n    import mltrain_desktop.compat\n"),
    ("mltrain_desktop.compat.upward_probe", "def f():\n    import mltrain_desktop.app\n"),
    ("mltrain_desktop.serving.upward_probe", "def f():\n    from ..core import webservice\n"),
    ("mltrain_desktop.app.upward_probe", "def f():\n    from mltrain_desktop import cli\n"),
    ("mltrain_desktop.cli.upward_probe", "from mltrain_desktop.gui import app\n"),
])
def test_an_upward_import_anywhere_breaks_the_layers_contract(tmp_path, module, source):
    out = _lint_copy(tmp_path, module, source)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "Layers point one way BROKEN" in out.stdout
    assert module in out.stdout


def test_a_downward_import_keeps_the_layers_contract(tmp_path):
    out = _lint_copy(tmp_path, "mltrain_desktop.engine.downward_probe",
                     "def f():\n    from mltrain_desktop.store import runs\n    from ..domain import run_state\n")
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 kept, 0 broken" in out.stdout


def test_using_the_sdk_loads_no_qt_and_no_tensorflow():
    code = ("import sys\nfrom mltrain_desktop.core import Workspace, Experiment, Dataset, Model, Run\n"
            "from mltrain_desktop.core.compute import ComputeTarget\nimport mltrain_desktop.cli\n"
            "import mltrain_desktop.engine.supervisor, mltrain_desktop.core.webservice\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'tensorflow', 'keras')]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
