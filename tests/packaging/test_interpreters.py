"""Frozen-mode pieces from source (fast): finding a Python with TensorFlow, the job kit's source,
version information and the bundle's entry point."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mltrain_desktop.adapters import interpreters

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A private MLTRAIN_HOME and an empty interpreter cache."""
    monkeypatch.setenv("MLTRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(interpreters.ENV_VAR, raising=False)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    interpreters.clear_cache()
    yield tmp_path
    interpreters.clear_cache()


def fake_python(folder: Path, name: str = "python3") -> Path:
    """An interpreter without TensorFlow: the system Python with no site-packages (-S)."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text(f"#!/bin/sh\nexec {sys.base_prefix}/bin/python3 -S \"$@\"\n")
    exe.chmod(0o755)
    return exe


def test_check_tells_tensorflow_apart(fresh):
    here = interpreters.check(sys.executable, "current")
    assert here.runs and here.has_tensorflow and here.tensorflow_version
    assert here.python_version == "%d.%d.%d" % sys.version_info[:3]
    bare = interpreters.check(str(fake_python(fresh / "bin")), "test")
    assert bare.runs and not bare.has_tensorflow
    assert "no TensorFlow" in bare.describe()
    assert interpreters.check(str(fresh / "missing")).error == "not found"
    assert "not a Python" in interpreters.check("/bin/true").error or not interpreters.check("/bin/true").runs


def test_check_is_cached_per_file(fresh, monkeypatch):
    exe = fake_python(fresh / "bin")
    first = interpreters.check(str(exe))
    calls = []
    monkeypatch.setattr(interpreters.subprocess, "run", lambda *a, **k: calls.append(a) or 1 / 0)
    assert interpreters.check(str(exe), "again") == interpreters.Interpreter(**{**first.as_dict(), "source": "again"})
    assert calls == []


def test_candidates_in_order(fresh, monkeypatch):
    configured = fake_python(fresh / "conf")
    from_env = fake_python(fresh / "env")
    interpreters.set_configured_python(str(configured))
    assert interpreters.settings_path() == fresh / "home" / "settings.json"
    monkeypatch.setenv(interpreters.ENV_VAR, str(from_env))
    paths = interpreters.candidate_paths()
    assert paths[0] == (str(configured), "configured")
    assert paths[1] == (str(from_env), interpreters.ENV_VAR)
    assert (sys.executable, "current") in paths
    assert paths[-1] == (str(fresh / "home" / "python" / "bin" / "python"), "default location")
    # the first with TensorFlow wins: neither fake has it, the current interpreter does
    assert interpreters.find_tensorflow_python().path == sys.executable
    interpreters.set_configured_python(None)
    assert interpreters.configured_python() is None


def test_frozen_without_tensorflow_explains_how_to_make_one(fresh, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setenv("PATH", str(fake_python(fresh / "path-bin").parent))
    with pytest.raises(interpreters.NoTensorFlowInterpreter) as info:
        interpreters.default_python()
    text = str(info.value)
    assert "No Python interpreter with TensorFlow" in text
    assert str(fresh / "path-bin" / "python3") in text and "no TensorFlow" in text
    assert interpreters.make_command() in text
    assert "-m venv" in text and "pip install tensorflow-cpu==2.21.0" in text
    assert "Compute view" in text and interpreters.ENV_VAR in text

    # a job on a target with no python set fails in Preparing with the same message
    from mltrain_desktop.engine.backends.base import PrepareError
    from mltrain_desktop.engine.local_env import resolve_interpreter
    with pytest.raises(PrepareError, match="pip install tensorflow-cpu"):
        resolve_interpreter(fresh, None, None, [], log=lambda _l: None)

    # the probe says so (the target is unusable until an interpreter is chosen)
    from mltrain_desktop.core import compute_local
    probe = compute_local.probe({"max_concurrent_runs": 1})
    assert probe["state"] == "Failed" and "tensorflow-cpu" in probe["detail"]

    # with MLTRAIN_PYTHON pointing at one that has it, it is found (sys.executable is "the bundle" here)
    python = sys.executable
    monkeypatch.setattr(sys, "executable", str(fresh / "bundle" / "mltrain-desktop"))
    monkeypatch.setenv(interpreters.ENV_VAR, python)
    assert interpreters.default_python() == python


def test_default_from_source_is_the_current_interpreter(fresh):
    assert interpreters.default_python() == sys.executable


def test_probe_reports_tensorflow(fresh):
    from mltrain_desktop.core import compute_local
    yes = compute_local.probe({"python": sys.executable})
    assert yes["state"] == "Succeeded" and yes["tensorflow"] is True and "TensorFlow" in yes["detail"]
    no = compute_local.probe({"python": str(fake_python(fresh / "bin"))})
    assert no["state"] == "Succeeded" and no["tensorflow"] is False
    assert "has no TensorFlow" in no["detail"] and no["make_python"] in no["detail"]


def test_jobkit_uses_the_shipped_source_when_frozen(monkeypatch, tmp_path):
    from mltrain_desktop.engine import jobkit
    shipped = tmp_path / "jobkit_src" / "mltrain_desktop"
    shipped.mkdir(parents=True)
    (shipped / "run.py").write_text("# shipped\n")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert jobkit._package_dir() == shipped
    monkeypatch.delattr(sys, "frozen")
    assert jobkit._package_dir() == Path(jobkit.mltrain_desktop.__file__).resolve().parent


def test_version_info():
    from mltrain_desktop import __version__
    from mltrain_desktop.version_info import LAZY_VERSION, about_text, build_info, version_string
    info = build_info()
    assert info.version == __version__ and info.commit
    assert version_string().startswith(f"{__version__} (commit ")
    assert str(LAZY_VERSION) == version_string()
    assert f"MLTrain Desktop {__version__}" in about_text() and "Commit:" in about_text()


def _entry(*args, env=None):
    return subprocess.run([sys.executable, str(REPO / "packaging" / "entry.py"), *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_entry_point_from_source():
    from mltrain_desktop.version_info import version_string
    assert _entry("--version").stdout.strip() == f"mltrain-desktop {version_string()}"
    assert _entry("--cli", "--version").stdout.strip() == f"mltrain {version_string()}"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    res = _entry(env=env)
    assert res.returncode == 2 and "--self-test" in res.stderr and "QT_QPA_PLATFORM=offscreen" in res.stderr


def test_entry_point_dispatch(monkeypatch):
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import entry
    finally:
        sys.path.pop(0)
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert not entry.has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert entry.has_display()
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert not entry.has_display()
    monkeypatch.setenv("DISPLAY", ":99")
    assert entry.has_display()
    seen = {}
    monkeypatch.setattr("mltrain_desktop.engine.supervisor.main", lambda a: seen.setdefault("sup", a) and 0)
    assert entry.main(["--supervisor", "/ws", "run_1", "--reattach"], argv0="/opt/x/mltrain-desktop") == 0
    assert seen["sup"] == ["/ws", "run_1", "--reattach"]
    assert entry.invoked_name("/usr/bin/mltrain") in entry.CLI_NAMES
    assert entry.invoked_name("/usr/bin/mltrain-desktop") not in entry.CLI_NAMES
