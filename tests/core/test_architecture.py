"""The core runs headless: no Qt under core, store, engine, serving or the in-job API."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_linter_contract_holds():
    exe = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_using_the_sdk_loads_no_qt_and_no_tensorflow():
    code = ("import sys\nfrom mltrain_desktop.core import Workspace, Experiment, Dataset, Model, Run\n"
            "from mltrain_desktop.core.compute import ComputeTarget\nimport mltrain_desktop.cli\n"
            "import mltrain_desktop.engine.supervisor, mltrain_desktop.serving.webservice\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'tensorflow', 'keras')]\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
