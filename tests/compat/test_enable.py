"""enable(): serves the azureml tree, and refuses next to a real azureml-core distribution."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mltrain_desktop import compat


def _python(code: str, pythonpath: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


@pytest.fixture
def fake_sdk(tmp_path):
    """A real (tiny) azureml-core distribution on disk: the package and its dist-info metadata."""
    site = tmp_path / "site"
    (site / "azureml" / "core").mkdir(parents=True)
    (site / "azureml" / "core" / "__init__.py").write_text("REAL_SDK = True\n")
    info = site / "azureml_core-1.57.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: azureml-core\nVersion: 1.57.0\n")
    (info / "RECORD").write_text("")
    return site


def test_enable_serves_the_tree_and_disable_removes_it():
    assert not compat.is_enabled()
    compat.enable()
    try:
        import azureml.core
        from azureml.core import VERSION, Environment, ScriptRunConfig, Workspace
        from azureml.core.compute import AmlCompute, ComputeTarget
        from azureml.core.run import Run
        from azureml.train.dnn import TensorFlow
        from azureml.train.hyperdrive import BanditPolicy, HyperDriveConfig, PrimaryMetricGoal
        from azureml.train.hyperdrive.parameter_expressions import choice
        from mltrain_desktop.core.workspace import Workspace as Ours
        from mltrain_desktop.train.hyperdrive import HyperDriveConfig as OurSweep
        assert Workspace is Ours and HyperDriveConfig is OurSweep
        assert azureml.core.VERSION == VERSION and VERSION
        assert Run.__module__ == "mltrain_desktop.core.runs"
        assert {Environment, ScriptRunConfig, ComputeTarget, AmlCompute, TensorFlow, BanditPolicy,
                PrimaryMetricGoal, choice}
        from azureml.telemetry import set_diagnostics_collection
        assert set_diagnostics_collection(send_diagnostics=True) is None
        from azureml.widgets import RunDetails
        from mltrain_desktop.compat.run_details import RunDetails as OurDetails
        assert RunDetails is OurDetails
        with pytest.raises(ModuleNotFoundError, match="serves azureml, azureml.core"):
            import azureml.pipeline  # noqa: F401 - not served
        with pytest.raises(ImportError, match="Datastore"):
            from azureml.core import Datastore  # noqa: F401
    finally:
        compat.disable()
    assert not compat.is_enabled()
    assert "azureml.core" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import azureml.core  # noqa: F401,F811


def test_enable_refuses_next_to_a_real_azureml_core(fake_sdk):
    p = _python("""
        import sys
        from mltrain_desktop import compat
        try:
            compat.enable()
        except compat.CompatRefused as exc:
            print("REFUSED:", exc)
            sys.exit(0)
        sys.exit("enable() did not refuse")
        """, pythonpath=str(fake_sdk))
    assert p.returncode == 0, p.stderr
    assert "azureml-core 1.57.0 is installed" in p.stdout
    assert "will not shadow it" in p.stdout


def test_enable_refuses_an_importable_azureml_core_without_metadata(fake_sdk):
    for info in fake_sdk.glob("*.dist-info"):
        for f in info.iterdir():
            f.unlink()
        info.rmdir()
    p = _python("""
        from mltrain_desktop import compat
        print(compat.real_sdk_problem())
        import azureml.core
        print("real:", getattr(azureml.core, "REAL_SDK", False))
        """, pythonpath=str(fake_sdk))
    assert p.returncode == 0, p.stderr
    assert "an azureml.core package is importable from" in p.stdout
    assert "real: True" in p.stdout


def test_module_entry_point_refuses_with_exit_code_3(fake_sdk, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    env = dict(os.environ, PYTHONPATH=str(fake_sdk))
    p = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", str(script)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 3
    assert "cannot enable the azureml compatibility layer" in p.stderr and "ran" not in p.stdout


def test_module_entry_point_passes_argv_and_exit_code(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys, azureml.core\nprint('argv', sys.argv[1:], __name__)\nsys.exit(int(sys.argv[2]))\n")
    p = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", str(script), "--x", "4"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 4, p.stderr
    assert "argv ['--x', '4'] __main__" in p.stdout
    missing = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", str(tmp_path / "nope.py")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_load_ipython_extension_enables_the_layer():
    import mltrain_desktop
    try:
        mltrain_desktop.load_ipython_extension(None)
        assert compat.is_enabled()
        from azureml.core import Experiment
        assert Experiment.__module__ == "mltrain_desktop.core.experiment"
    finally:
        compat.disable()


def test_enable_sets_the_job_flag_and_a_job_can_serve_azureml_core_run():
    compat.enable()
    try:
        assert os.environ[compat.JOB_FLAG] == "1"
    finally:
        compat.disable()
    assert compat.JOB_FLAG not in os.environ
    p = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        from mltrain_desktop import compat
        assert compat.enable_in_job()
        from azureml.core import Run
        from azureml.core.run import Run as Same
        run = Run.get_context()
        run.log("loss", 0.5)
        heavy = sorted(m for m in sys.modules if m.startswith(("mltrain_desktop.core", "mltrain_desktop.store",
                                                               "sqlite3", "psutil", "click")))
        print("RUN", Run.__module__, Same is Run, run.offline, heavy)
        """)], env=dict(os.environ, MLTRAIN_COMPAT="1"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "RUN mltrain_desktop.run True True []" in p.stdout
    off = subprocess.run([sys.executable, "-c", "from mltrain_desktop import compat; print(compat.enable_in_job())"],
                         env={k: v for k, v in os.environ.items() if k != "MLTRAIN_COMPAT"},
                         capture_output=True, text=True, timeout=60)
    assert off.stdout.strip() == "False"


def test_a_seed_style_training_script_logs_through_compat_job_mode(tmp_path):
    from mltrain_desktop import run as job_api
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import sys
        from azureml.core import Run
        run = Run.get_context()
        for i in range(3):
            run.log("accuracy", 0.5 + i / 10)
        print("args", sys.argv[1:])
        """))
    metrics = tmp_path / "metrics.jsonl"
    env = dict(os.environ, **{job_api.ENV_METRICS_FILE: str(metrics), job_api.ENV_RUN_ID: "r1"})
    env.pop("MLTRAIN_COMPAT", None)
    p = subprocess.run([sys.executable, "-m", "mltrain_desktop.compat", "--job", str(script), "--lr", "0.1"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "args ['--lr', '0.1']" in p.stdout
    values = [r["v"] for r in map(json.loads, metrics.read_text().splitlines()) if r.get("n") == "accuracy"]
    assert values == [0.5, 0.6, 0.7]
