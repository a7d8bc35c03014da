"""The packaged app (PyInstaller one-folder bundle), built once and run as a user would.

The first test builds ``dist/mltrain-desktop`` with ``packaging/build.sh --if-changed`` (a few
minutes on 2 cores); the build is skipped while ``dist/mltrain-desktop.source-hash`` matches the
current source. ``MLTRAIN_SKIP_BUNDLE=1`` skips the module (e.g. for a quick local run).
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "dist"
BUNDLE = DIST / "mltrain-desktop"
BUILD_TIMEOUT_S = 1500

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(BUILD_TIMEOUT_S + 300),
    pytest.mark.skipif(os.environ.get("MLTRAIN_SKIP_BUNDLE") == "1", reason="MLTRAIN_SKIP_BUNDLE=1"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle"),
]


def _source_hash() -> str:
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import source_hash
    finally:
        sys.path.pop(0)
    return source_hash.source_hash(REPO)


@pytest.fixture(scope="session")
def bundle() -> dict:
    """Builds the bundle and the archives unless dist/ already holds them for this source."""
    proc = subprocess.run(["bash", str(REPO / "packaging" / "build.sh"), "--if-changed"], cwd=REPO,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    out = proc.stdout + proc.stderr
    print(out[-3000:])
    if proc.returncode != 0:
        pytest.fail(f"packaging/build.sh failed ({proc.returncode}):\n{out[-6000:]}")
    report = json.loads((DIST / "build-report.json").read_text())
    return {"report": report, "window": BUNDLE / "mltrain-desktop", "cli": BUNDLE / "mltrain", "build_output": out}


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["MLTRAIN_PYTHON"] = sys.executable  # the venv with TensorFlow, for jobs started by the bundle
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def run_bundle(exe: Path, *args, timeout=300, env=None, ok=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env or _env(), stdin=subprocess.DEVNULL)
    if ok:
        assert proc.returncode == 0, f"{exe.name} {args}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


# -- what is in the bundle ---------------------------------------------------------------------
def test_bundle_is_current_complete_and_holds_no_tensorflow(bundle):
    assert (DIST / "mltrain-desktop.source-hash").read_text().strip() == bundle["report"]["source_hash"]
    if bundle["report"]["source_hash"] != _source_hash():  # someone edited the source since the build started
        print("note: the source changed after the bundle was built; the next session rebuilds it")
    internal = BUNDLE / "_internal"
    assert bundle["window"].is_file() and os.access(bundle["window"], os.X_OK)
    assert bundle["cli"].is_symlink() and os.readlink(bundle["cli"]) == "mltrain-desktop"
    for banned in ("tensorflow", "keras", "tensorboard", "jax", "torch", "h5py", "scipy", "pandas", "matplotlib"):
        assert not (internal / banned).exists(), f"{banned} is in the bundle"
    # resources, Qt's platform plugins for a screen and for none, the job kit's source without the GUI
    assert (internal / "resources" / "samples" / "tf-mnist" / "tf_mnist.py").is_file()
    assert len(list((internal / "resources" / "data" / "fashion-mnist-small").glob("*-ubyte.gz"))) == 4
    assert (internal / "resources" / "icons" / "app.svg").is_file()
    plugins = internal / "PySide6" / "Qt" / "plugins" / "platforms"
    assert (plugins / "libqoffscreen.so").is_file() and (plugins / "libqxcb.so").is_file()
    kit = internal / "jobkit_src" / "mltrain_desktop"
    assert (kit / "run.py").is_file() and (kit / "engine" / "supervisor.py").is_file()
    assert not (kit / "gui").exists()
    assert bundle["report"]["bundle_bytes"] < 350_000_000, "the bundle grew past 350 MB: what got in?"


def test_archives(bundle):
    report = bundle["report"]
    version = report["version"]
    tar_path = Path(report["tar_gz"])
    assert tar_path.name == f"mltrain-desktop-{version}-linux-{os.uname().machine}.tar.gz" and tar_path.is_file()
    with tarfile.open(tar_path) as tf:
        names = set(tf.getnames())
    top = f"mltrain-desktop-{version}"
    for member in ("mltrain-desktop", "mltrain", "INSTALL.txt", "share/applications/mltrain-desktop.desktop",
                   "share/icons/hicolor/scalable/apps/mltrain-desktop.svg",
                   "share/icons/hicolor/256x256/apps/mltrain-desktop.png"):
        assert f"{top}/{member}" in names, member
    deb = Path(report["deb"])
    assert deb.is_file()
    field = lambda name: subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()
    assert field("Package") == "mltrain-desktop" and field("Version") == version
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for needle in ("./opt/mltrain-desktop/mltrain-desktop", "./usr/bin/mltrain -> /opt/mltrain-desktop/mltrain",
                   "./usr/bin/mltrain-desktop -> /opt/mltrain-desktop/mltrain-desktop",
                   "./usr/share/applications/mltrain-desktop.desktop",
                   "./usr/share/icons/hicolor/48x48/apps/mltrain-desktop.png"):
        assert needle in listing, needle
    assert "root/root" in listing.splitlines()[0]


# -- starting it -------------------------------------------------------------------------------
def test_version(bundle):
    report = bundle["report"]
    out = run_bundle(bundle["cli"], "--version").stdout.strip()
    assert out == f"mltrain {report['version']} (commit {report['commit']}, built {report['build_date']})"
    out = run_bundle(bundle["window"], "--version").stdout.strip()
    assert out.startswith(f"mltrain-desktop {report['version']} (commit ")


def test_no_display_explains_how_to_run_headless(bundle):
    env = _env()
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    proc = run_bundle(bundle["window"], env=env, ok=False, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for hint in ("no display", "QT_QPA_PLATFORM=offscreen", "--self-test", "mltrain --help", "xvfb-run"):
        assert hint in proc.stderr, hint


def test_screenshots_need_no_display(bundle, tmp_path):
    from mltrain_desktop.core import Workspace
    Workspace.create(tmp_path / "ws").close()
    env = _env()
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        env.pop(var, None)
    proc = run_bundle(bundle["window"], "--workspace", tmp_path / "ws", "--screenshot", tmp_path / "shots", env=env,
                      ok=False, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert list((tmp_path / "shots").glob("*.png"))


def test_self_test_passes_offscreen(bundle, tmp_path):
    proc = run_bundle(bundle["window"], "--self-test", timeout=900, env=_env(QT_QPA_PLATFORM="offscreen"), ok=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "self-test: PASSED" in out
    for step in ("window opened offscreen", "dataset 'mnist dataset' version 1", "[status] Completed",
                 "model self-test-model:1 registered", "model files present", "lineage: run"):
        assert step in out, step


def test_self_test_without_tensorflow_says_how_to_make_an_interpreter(bundle, tmp_path):
    fake = tmp_path / "python-without-tf"
    fake.write_text("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")  # -S: no site-packages, so no TensorFlow
    fake.chmod(0o755)
    proc = run_bundle(bundle["window"], "--self-test", "--python", fake, env=_env(QT_QPA_PLATFORM="offscreen"),
                      ok=False, timeout=120)
    assert proc.returncode == 1
    assert "no TensorFlow" in proc.stdout and "pip install tensorflow-cpu==2.21.0" in proc.stdout


def test_a_sweep_runs_from_the_bundle(bundle, tmp_path):
    """The bundle carries Optuna and starts its own sweep driver (``--sweep-driver``)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("import sys\nfrom mltrain_desktop.run import Run\nrun = Run.get_context()\n"
                                  "lr = float(sys.argv[sys.argv.index('--lr') + 1])\n"
                                  "for i in range(3):\n    run.log('acc', 1 - abs(lr - 0.3) - 0.01 * i)\n")
    ws = tmp_path / "ws"
    run_bundle(bundle["cli"], "workspace", "create", ws)
    proc = run_bundle(bundle["cli"], "--workspace", ws, "--json", "sweep", "submit", "-e", "bundle-sweep",
                      "-s", src, "-c", "train.py", "--param", "--lr=uniform(0.1, 0.5)", "--metric", "acc",
                      "--max-total-runs", 2, "--max-concurrent-runs", 2, "--seed", 1, "--wait", timeout=300)
    result = json.loads(proc.stdout)
    assert result["status"] == "Completed" and result["best_child_run_id"], proc.stdout
    children = json.loads(run_bundle(bundle["cli"], "--workspace", ws, "--json", "sweep", "children",
                                     result["run_id"]).stdout)
    assert len(children) == 2 and all(c["status"] == "Completed" for c in children), children


# -- a workspace from a newer version ----------------------------------------------------------
def _newer_workspace(path: Path) -> str:
    from mltrain_desktop.core import Workspace
    from mltrain_desktop.store.migrations import LATEST
    ws = Workspace.create(path)
    ws.close()
    conn = sqlite3.connect(path / "workspace.db")
    conn.execute(f"PRAGMA user_version = {LATEST + 5}")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in workspace.db itself (still WAL mode)
    conn.close()
    return _digest(path)


def _digest(path: Path) -> str:
    """The database's content: the file, and what a writer would have left in its WAL."""
    wal = path / "workspace.db-wal"
    return hashlib.sha256((path / "workspace.db").read_bytes()).hexdigest() + (
        f"+wal{wal.stat().st_size}" if wal.exists() and wal.stat().st_size else "")


def test_refuses_a_workspace_from_a_newer_version(bundle, tmp_path):
    ws = tmp_path / "newer"
    before = _newer_workspace(ws)
    proc = run_bundle(bundle["cli"], "-w", ws, "run", "list", ok=False)
    assert proc.returncode != 0
    assert "newer MLTrain Desktop" in proc.stderr and "nothing in it changed" in proc.stderr
    proc = run_bundle(bundle["cli"], "-w", ws, "dataset", "register", "x", REPO / "pyproject.toml", ok=False)
    assert proc.returncode != 0
    assert _digest(ws) == before, "the workspace database was changed"
    # the window, pointed at it, shows the error and leaves the file alone too
    win = subprocess.Popen([str(bundle["window"]), "--workspace", str(ws)], env=_env(QT_QPA_PLATFORM="offscreen"),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(8)
    alive = win.poll() is None
    win.terminate()
    try:
        out, _ = win.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        win.kill()
        out, _ = win.communicate()
    assert alive, f"the window exited instead of showing the error: {out[-3000:]}"
    assert _digest(ws) == before, "the window changed the workspace database"


# -- two instances on one workspace ------------------------------------------------------------
JOB = """
import os, time
from mltrain_desktop.core import Run
run = Run.get_context()
print("QT_PLUGIN_PATH=%s" % os.environ.get("QT_PLUGIN_PATH", ""), flush=True)
for i in range(5):
    run.log("step_value", i * 0.5)
    time.sleep(0.2)
os.makedirs("outputs", exist_ok=True)
open("outputs/done.txt", "w").write("ok")
"""


def test_two_instances_on_one_workspace_stay_consistent(bundle, tmp_path):
    ws = tmp_path / "shared"
    cli = bundle["cli"]
    run_bundle(cli, "workspace", "create", ws)
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.py").write_text(textwrap.dedent(JOB))
    data = tmp_path / "data"
    data.mkdir()
    results: dict = {}

    def registrar(tag: str, n: int) -> None:
        versions = []
        for i in range(n):
            f = data / f"{tag}-{i}.txt"
            f.write_text(f"{tag} {i}")
            out = run_bundle(cli, "-w", ws, "--json", "dataset", "register", "shared-ds", f)
            versions.append(json.loads(out.stdout)["version"])
        results[tag] = versions

    # Instance A submits a run (its supervisor is the bundle itself) while instances B and C register
    # versions of one dataset at the same time.
    submit = subprocess.Popen([str(cli), "-w", str(ws), "run", "submit", "-e", "two", "-s", str(src), "-c", "job.py",
                               "--wait"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threads = [threading.Thread(target=registrar, args=(t, 4)) for t in ("b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    out, _ = submit.communicate(timeout=600)
    assert submit.returncode == 0, out[-4000:]
    assert "Status: Completed" in out, out[-4000:]

    # No version lost or given twice
    assert sorted(results["b"] + results["c"]) == list(range(1, 9)), results
    listed = json.loads(run_bundle(cli, "-w", ws, "--json", "dataset", "show", "shared-ds").stdout)
    assert listed["version"] == 8
    # Both instances see the same run, its metrics and its outputs
    runs_a = json.loads(run_bundle(cli, "-w", ws, "--json", "run", "list").stdout)
    assert len(runs_a) == 1 and runs_a[0]["status"] == "Completed"
    rid = runs_a[0]["id"]
    metrics = json.loads(run_bundle(cli, "-w", ws, "--json", "run", "metrics", rid).stdout)
    assert metrics == {"step_value": [0.0, 0.5, 1.0, 1.5, 2.0]}
    assert (ws / "runs" / rid / "outputs" / "done.txt").read_text() == "ok"
    # and the SDK from source reads the same database
    from mltrain_desktop.core import Workspace
    from mltrain_desktop.core.runs import Run
    w = Workspace(ws)
    try:
        assert Run.get(w, rid).get_status() == "Completed"
        assert w.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        w.close()
    # the job ran on the interpreter with TensorFlow that the bundle was given, not on the bundle
    driver_log = (ws / "runs" / rid / "logs" / "driver.log").read_text()
    assert f"interpreter {sys.executable} " in driver_log
    assert "QT_PLUGIN_PATH=" in driver_log and "_internal" not in driver_log, "the bundle's Qt paths leaked into the job"
