"""``mltrain-desktop --self-test``: checks an installation end to end, with no screen.

It opens the main window offscreen, creates a temporary workspace through it, registers the
shipped sample dataset (the Fashion-MNIST subset), creates a local compute target that uses the
discovered Python with TensorFlow, submits the sample (1 epoch), follows the run in the window,
registers the model and checks it (registered, files present, lineage to the run and the dataset
version), closes the window and exits 0; otherwise it prints what failed and exits 1.

From source: ``python -m mltrain_desktop.gui.self_test [--keep] [--python PATH] [--timeout S]``.

The user's settings are not touched: the window's settings go to the temporary folder, and the
workspace is deleted afterwards (kept with ``--keep``, or when the test failed).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from ..domain.run_state import TERMINAL

EXIT_OK = 0
EXIT_FAILED = 1
TARGET = "selftest-local"
EXPERIMENT = "self-test"
MODEL = "self-test-model"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mltrain-desktop --self-test",
                                description="Check this installation: window offscreen, sample run, model.")
    p.add_argument("--python", metavar="PATH", help="interpreter with TensorFlow for the job "
                   "(default: the configured or discovered one)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds for the whole test (default 900)")
    p.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    p.add_argument("--save-screenshot", metavar="PNG", help="save a picture of the window at the end")
    p.add_argument("--first-paint", action="store_true", help="only open the window (offscreen), print the "
                   "seconds from process start to its first paint, and exit (benchmarks/bench_packaging.py)")
    return p


def first_paint() -> int:
    """Opens the window as ``app.main`` does (no workspace) and reports when it first painted."""
    from PySide6.QtCore import QEvent, QObject, QSettings
    from PySide6.QtWidgets import QApplication

    from .app import apply_theme, configure_settings
    tmp = Path(tempfile.mkdtemp(prefix="mltrain-firstpaint-"))
    configure_settings()
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp))
    app = QApplication.instance() or QApplication([sys.argv[0]])
    from .resources import icon
    app.setWindowIcon(icon("app"))
    apply_theme(app, "light")
    from .main_window import MainWindow
    window = MainWindow()

    class _Painted(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint and obj is window:
                try:
                    import psutil
                    since_start = time.time() - psutil.Process().create_time()
                except Exception:  # noqa: BLE001
                    since_start = float("nan")
                print(f"first-paint {since_start:.3f}", flush=True)
                app.exit(0)
            return False

    watcher = _Painted()
    window.installEventFilter(watcher)
    window.show()
    rc = app.exec()
    window.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    return rc


def say(text: str) -> None:
    print(f"self-test: {text}", flush=True)


# -- worker functions (run on the window's Bridge pool: fn(ws, state, ...)) --------------------
def prepare_and_submit(ws, state, python: str, epochs: int) -> dict:
    from ..core.compute import ComputeTarget, LocalCompute
    from ..core.experiment import Experiment
    from ..core.sample_flow import register_sample_dataset, sample_estimator
    state.progress(0, 0, "registering the sample dataset")
    ds = register_sample_dataset(ws, full=False)
    target = ComputeTarget.create(ws, TARGET, LocalCompute.provisioning_configuration(max_concurrent_runs=1,
                                                                                       python=python),
                                  overwrite=True)
    if target.provisioning_state != "Succeeded":
        raise RuntimeError(f"compute target {TARGET} is {target.provisioning_state}: {target.state_detail}")
    if not target.probe_result.get("tensorflow"):
        raise RuntimeError(f"compute target {TARGET}: {target.state_detail}")
    est = sample_estimator(ws, ds, epochs=epochs, compute_target=target)
    run = Experiment(ws, EXPERIMENT).submit(est)
    return {"run_id": run.id, "dataset": ds.name, "dataset_version": ds.version, "files": len(ds.files),
            "target_detail": target.state_detail}


def run_status(ws, state, run_id: str) -> dict:
    from ..core.runs import Run
    run = Run.get(ws, run_id)
    return {"status": run.get_status()}


def register_and_verify(ws, state, run_id: str, dataset: str, dataset_version: int) -> list[str]:
    """Registers the run's model and checks it; returns the checks passed, raises on the first failure."""
    from ..core.model import Model
    from ..core.resource_configuration import ResourceConfiguration
    from ..core.runs import Run
    from ..core.sample_flow import _tf_version
    run = Run.get(ws, run_id)
    passed = []
    metrics = run.get_metrics()
    if "loss" not in metrics or "accuracy" not in metrics:
        raise AssertionError(f"the run logged no loss/accuracy metrics (got {sorted(metrics)})")
    passed.append(f"metrics logged: {', '.join(sorted(k for k in metrics if not k.startswith('batch')))}")
    model = run.register_model(model_name=MODEL, model_path="outputs/model",
                               model_framework=Model.Framework.TENSORFLOW, model_framework_version=_tf_version(run),
                               resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5))
    listed = [m.id for m in Model.list(ws, name=MODEL)]
    if model.id not in listed:
        raise AssertionError(f"model {model.id} is not in the registry (listed: {listed})")
    passed.append(f"model {model.id} registered (framework {model.model_framework} "
                  f"{model.model_framework_version or '?'})")
    path = model.local_path
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    if not any(f.endswith("model.keras") for f in files) or not any(f.endswith("saved_model.pb") for f in files):
        raise AssertionError(f"model files missing in {path}: expected model.keras and a SavedModel, got {files[:20]}")
    passed.append(f"model files present: {len(files)} files in {path}")
    lineage = model.lineage()
    ds_ok = any(d.get("name") == dataset and d.get("version") == dataset_version for d in lineage.get("datasets", []))
    if lineage.get("run_id") != run_id or lineage.get("experiment") != EXPERIMENT or not ds_ok:
        raise AssertionError(f"wrong lineage: {lineage} (expected run {run_id}, experiment {EXPERIMENT}, "
                             f"dataset {dataset}:{dataset_version})")
    passed.append(f"lineage: run {run_id}, experiment {EXPERIMENT}, dataset {dataset} version {dataset_version}")
    return passed


# -- the test, driven by timers on the GUI thread ----------------------------------------------
class SelfTest:
    POLL_MS = 500

    def __init__(self, app, window, workspace: Path, python: str, epochs: int, timeout: float,
                 screenshot: str | None = None):
        from PySide6.QtCore import QTimer
        self.app, self.window, self.workspace = app, window, workspace
        self.python, self.epochs, self.timeout, self.screenshot = python, epochs, timeout, screenshot
        self.failure: str | None = None
        self.run_id: str | None = None
        self.info: dict = {}
        self.done = False
        self.started = time.monotonic()
        self._polling = False
        self.timer = QTimer()
        self.timer.setInterval(self.POLL_MS)
        self.timer.timeout.connect(self._tick)
        self.deadline = QTimer()
        self.deadline.setSingleShot(True)
        self.deadline.timeout.connect(lambda: self.fail(f"timed out after {self.timeout:.0f} s"))
        self.step = "start"

    # steps
    def start(self) -> None:
        from PySide6.QtCore import QTimer
        self.deadline.start(int(self.timeout * 1000))
        QTimer.singleShot(0, self._create_workspace)

    def _create_workspace(self) -> None:
        self.step = "create the workspace in the window"
        if not self.window.isVisible():
            return self.fail("the window is not shown")
        pm = self.window.grab()
        if pm.isNull() or pm.width() < 100:
            return self.fail("the window did not paint")
        say(f"[ok] window opened offscreen ({pm.width()}x{pm.height()}, platform {self.app.platformName()})")
        task = self.window.create_workspace(str(self.workspace))
        if task is None:
            return self.fail("the window refused to create the workspace")
        task.failed.connect(lambda exc: self.fail(f"creating the workspace failed: {exc}"))
        self.step = "wait for the window to open the workspace"
        self.timer.start()

    def _tick(self) -> None:
        if self.done:
            return
        if self.step == "wait for the window to open the workspace":
            if self.window.workspace_path and Path(self.window.workspace_path) == self.workspace.resolve():
                say(f"[ok] workspace created and opened in the window: {self.workspace}")
                self._submit()
        elif self.step == "wait for the run" and not self._polling:
            self._polling = True
            self.window.bridge.run(run_status, self.run_id, on_done=self._status, on_error=self._error("run status"))

    def _submit(self) -> None:
        self.step = "register the sample dataset and submit the sample"
        self.window.bridge.run(prepare_and_submit, self.python, self.epochs, on_done=self._submitted,
                               on_error=self._error("registering the dataset and submitting the sample"))

    def _submitted(self, info: dict) -> None:
        self.info = info
        self.run_id = info["run_id"]
        say(f"[ok] dataset '{info['dataset']}' version {info['dataset_version']} registered ({info['files']} files)")
        say(f"[ok] compute target {TARGET}: {info['target_detail']}")
        say(f"[ok] submitted run {self.run_id} ({self.epochs} epoch(s), interpreter {self.python})")
        self.window.show_run(self.run_id)
        self.step = "wait for the run"
        self._last_status = None

    def _status(self, result: dict) -> None:
        self._polling = False
        if self.done:
            return
        status = result["status"]
        if status != self._last_status:
            say(f"[status] {status}")
            self._last_status = status
        if status in TERMINAL:
            self.timer.stop()
            if status != "Completed":
                return self.fail(f"the sample run ended {status}:\n{self._run_error()}")
            self.step = "register and verify the model"
            self.window.bridge.run(register_and_verify, self.run_id, self.info["dataset"],
                                   self.info["dataset_version"], on_done=self._verified,
                                   on_error=self._error("registering and verifying the model"))

    def _verified(self, passed: list[str]) -> None:
        for line in passed:
            say(f"[ok] {line}")
        self.window.show_model(MODEL, 1)
        self.step = "close the window"
        if self.screenshot:
            self.window.grab().save(self.screenshot)
        self.finish()

    # outcomes
    def _error(self, what: str):
        def handler(exc) -> None:
            self._polling = False
            self.fail(f"{what}: {type(exc).__name__}: {exc}")
        return handler

    def _run_error(self) -> str:
        from ..core.runs import Run
        from ..core.workspace import Workspace
        try:
            ws = Workspace(self.workspace)
            try:
                details = Run.get(ws, self.run_id).get_details()
                text, _ = Run.get(ws, self.run_id).read_log("driver.log")
            finally:
                ws.close()
        except Exception as exc:  # noqa: BLE001
            return f"(could not read the run: {exc})"
        err = (details.get("error") or {}).get("message", "")
        tail = "\n".join(text.splitlines()[-25:])
        return f"{err}\n--- driver.log (last lines) ---\n{tail}"

    def fail(self, message: str) -> None:
        if self.done:
            return
        self.failure = f"{self.step}: {message}"
        self.finish()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.timer.stop()
        self.deadline.stop()
        self.window.close()
        self.app.exit(EXIT_FAILED if self.failure else EXIT_OK)


def _cancel_leftover(workspace: Path, run_id: str | None) -> None:
    if not run_id:
        return
    from ..core.runs import Run
    from ..core.workspace import Workspace
    try:
        ws = Workspace(workspace)
        try:
            run = Run.get(ws, run_id)
            if not run.is_terminal():
                say(f"canceling run {run_id}")
                run.cancel(wait_seconds=30)
        finally:
            ws.close()
    except Exception as exc:  # noqa: BLE001
        say(f"could not cancel run {run_id}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """``mltrain-desktop --self-test [options]`` (the bundle) or ``python -m mltrain_desktop.gui.self_test``."""
    args = build_parser().parse_args(argv)
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the self-test never needs a screen
    if args.first_paint:
        return first_paint()
    return run(args)


def run(args: argparse.Namespace, app=None) -> int:
    """The self-test; creates the (offscreen) QApplication unless ``app`` is given."""
    started = time.monotonic()
    from ..version_info import version_string
    say(f"MLTrain Desktop {version_string()}; Python {sys.version.split()[0]}"
        + (" (packaged)" if getattr(sys, "frozen", False) else " (from source)"))

    from ..adapters import interpreters
    if args.python:
        interp = interpreters.check(args.python, "--python")
        if not interp.has_tensorflow:
            say(f"FAILED: find an interpreter with TensorFlow: {interp.describe()}\nMake one with:\n  "
                f"{interpreters.make_command()}")
            return EXIT_FAILED
    else:
        try:
            interp = interpreters.find_tensorflow_python()
        except interpreters.NoTensorFlowInterpreter as exc:
            say(f"FAILED: find an interpreter with TensorFlow:\n{exc}")
            return EXIT_FAILED
    say(f"[ok] interpreter for jobs: {interp.describe()}")

    tmp = Path(tempfile.mkdtemp(prefix="mltrain-selftest-"))
    workspace = tmp / "workspace"
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from .app import apply_theme, configure_settings
    configure_settings()
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):  # keep the user's settings untouched
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp / "settings"))
    if app is None:
        app = QApplication.instance() or QApplication([sys.argv[0]])
        apply_theme(app, "light")
    test = None
    rc = EXIT_FAILED
    try:
        from .main_window import MainWindow
        window = MainWindow()
        window.resize(1280, 820)
        window.show()
        test = SelfTest(app, window, workspace, interp.path, args.epochs, args.timeout, args.save_screenshot)
        test.start()
        rc = app.exec()
        window.shutdown()
        if test.failure:
            rc = EXIT_FAILED
    except Exception:  # noqa: BLE001 - report, never crash without a message
        say("FAILED: the window could not be driven:\n" + traceback.format_exc())
        rc = EXIT_FAILED
    finally:
        if test is not None and test.failure:
            _cancel_leftover(workspace, test.run_id)
    elapsed = time.monotonic() - started
    if rc == EXIT_OK:
        say(f"PASSED in {elapsed:.1f} s")
        if args.keep:
            say(f"workspace kept at {workspace}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        say(f"FAILED: {test.failure if test and test.failure else 'see above'}")
        say(f"the temporary workspace is kept for inspection: {workspace}")
    return rc


def register_app_options(register) -> None:
    """``mltrain_desktop.gui.app`` asks for this: ``mltrain-desktop --self-test`` from a source install.

    (The bundle's entry point runs :func:`main` itself, before any QApplication exists.)
    """
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--self-test", action="store_true",
                            help="check this installation: train the sample through the window, register and "
                                 "check the model, exit 0 (or print what failed and exit 1)")

    def handle(args, app):
        if not getattr(args, "self_test", False):
            return None
        defaults = build_parser().parse_args([])
        return run(defaults, app)

    register(add, handle)


if __name__ == "__main__":
    sys.exit(main())
