"""The in-job API: standard library only, offline printing, value checks, the Keras callback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltrain_desktop.engine.jobkit import jobkit_dir

REPO = Path(__file__).resolve().parents[2]


def _bare_python():
    """An interpreter without the app's dependencies (Debian's, outside our venv)."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


@pytest.mark.parametrize("stmt", ["from mltrain_desktop.core import Run", "from mltrain_desktop.run import Run"])
def test_job_import_needs_only_the_standard_library(tmp_path, stmt):
    kit = jobkit_dir(tmp_path)
    code = (f"import sys\nbefore = set(sys.modules)\n{stmt}\nr = Run.get_context()\nr.log('a', 1)\n"
            "extra = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(m for m in extra if m not in sys.stdlib_module_names))")
    out = subprocess.run([_bare_python(), "-I", "-c", f"import sys; sys.path.insert(0, {str(kit)!r})\n" + code],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['mltrain_desktop']"
    assert "[offline run] m:" in out.stdout


def test_metrics_file_records(tmp_path, monkeypatch):
    from mltrain_desktop import run as runmod
    f = tmp_path / "m.jsonl"
    monkeypatch.setenv("MLTRAIN_METRICS_FILE", str(f))
    monkeypatch.setenv("MLTRAIN_RANK", "2")
    monkeypatch.setattr(runmod.Run, "_context", None)
    r = runmod.Run.get_context()
    r.log("x", 1.5)
    r.log("x", float("-inf"))
    with pytest.raises(TypeError, match="not a number or a string"):
        r.log("x", [1, 2])
    with pytest.raises(ValueError):
        r.log("", 1)
    recs = [json.loads(l) for l in f.read_text().splitlines()]
    assert [(x["n"], x["s"], x["v"], x["rank"]) for x in recs] == [("x", 0, 1.5, 2), ("x", 1, "-Infinity", 2)]
    monkeypatch.setattr(runmod.Run, "_context", None)


def test_not_in_a_run_strict(monkeypatch):
    from mltrain_desktop import run as runmod
    monkeypatch.delenv("MLTRAIN_METRICS_FILE", raising=False)
    monkeypatch.setattr(runmod.Run, "_context", None)
    with pytest.raises(RuntimeError, match="not inside an MLTrain run"):
        runmod.Run.get_context(allow_offline=False)
    monkeypatch.setattr(runmod.Run, "_context", None)


def test_keras_callback_logs_per_batch_and_epoch(tmp_path):
    code = """
import numpy as np, keras
from mltrain_desktop.run import Run
run = Run.get_context()
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
m.compile("sgd", "mse", metrics=["mae"])
m.fit(np.zeros((20, 4)), np.zeros((20, 2)), batch_size=5, epochs=2, verbose=0, validation_split=0.25,
      callbacks=[run.keras_callback()])
"""
    env = {**os.environ, "MLTRAIN_METRICS_FILE": str(tmp_path / "m.jsonl"), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    recs = [json.loads(l) for l in (tmp_path / "m.jsonl").read_text().splitlines()]
    names = [r["n"] for r in recs]
    assert names.count("batch_loss") == 6 and names.count("loss") == 2 and names.count("val_mae") == 2
    assert [r["s"] for r in recs if r["n"] == "loss"] == [0, 1]
