"""``--screenshot DIR``: open each view on a workspace, wait until it has loaded, save a PNG.

Driven by timers on the event loop (no processEvents): each step prepares a view, then the tour
polls until the view reports it is loaded (and the charts had time to draw), grabs the window
into ``DIR/<name>.png`` and moves on. Exits the app with 0, or 1 if a step failed.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from ...app import queries

POLL_MS = 100
SETTLE_S = 0.6
STEP_TIMEOUT_S = 20.0


class ScreenshotTour(QObject):
    def __init__(self, window, out_dir: Path, workspace: str | None):
        super().__init__(window)
        self.window = window
        self.out_dir = Path(out_dir)
        self.workspace = workspace
        self.steps: list[tuple[str, callable, callable]] = []
        self.saved: list[Path] = []
        self.exit_code = 0
        self._i = -1
        self._t0 = 0.0
        self._ready_since: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not self.workspace:
            self.steps = [("welcome", lambda: None, lambda: True)]
            self._next()
            return
        self.window.open_workspace(self.workspace)
        self._waiting_since = time.monotonic()
        self._wait_open = QTimer(self)
        self._wait_open.setInterval(POLL_MS)
        self._wait_open.timeout.connect(self._check_open)
        self._wait_open.start()

    def _check_open(self) -> None:
        if self.window.workspace_path:
            self._wait_open.stop()
            self.window.bridge.run(self._inventory, on_done=self._plan, on_error=self._fail)
        elif time.monotonic() - self._waiting_since > STEP_TIMEOUT_S or self.window.ctx.last_error:
            self._wait_open.stop()
            print(f"screenshot: could not open {self.workspace}: {self.window.ctx.last_error}", flush=True)
            self.exit_code = 1
            self.steps = [("welcome", lambda: None, lambda: True)]
            self._next()

    @staticmethod
    def _inventory(ws, state) -> dict:
        runs = queries.list_runs(ws, with_metrics=False)
        return {"runs": runs, "models": queries.list_models(ws), "datasets": queries.list_datasets(ws)}

    def _plan(self, inv: dict) -> None:
        w = self.window
        v = w.views
        self.steps = [
            ("workspace", lambda: w.show_view("workspace"), lambda: not v["workspace"].is_loading()
             and v["workspace"].data is not None),
            ("datasets", lambda: (w.show_view("datasets"), v["datasets"].details.setCurrentIndex(1)),
             lambda: not v["datasets"].is_loading()
             and (not inv["datasets"] or v["datasets"].preview.count > 0 or v["datasets"].files_model.records)),
            ("compute", lambda: w.show_view("compute"), lambda: not v["compute"].is_loading()),
            ("runs", lambda: w.show_view("runs"), lambda: not v["runs"].is_loading()),
        ]
        runs = inv["runs"]
        done = [r for r in runs if r["status"] == "Completed"] or runs
        if done:
            run = done[0]
            detail = v["run"]

            def tab(i):
                def prep():
                    if detail.run_id != run["id"]:
                        w.show_run(run["id"])
                    detail.tabs.setCurrentIndex(i)
                return prep
            has_points = lambda: detail.state is not None and (detail.metrics or  # noqa: E731
                                                                 detail.state["status"] != "Completed")
            self.steps += [("run-metrics", tab(1), has_points),
                           ("run-overview", tab(0), lambda: detail.state is not None),
                           ("run-logs", tab(2), lambda: detail.log_view.line_count() > 1),
                           ("run-outputs", tab(3), lambda: bool(detail.files))]
            same = [r for r in done if r["experiment"] == run["experiment"]][:4]
            if len(same) >= 2:
                ids = [r["id"] for r in same]
                self.steps.append(("compare", lambda: w.compare_runs(ids),
                                   lambda: not v["compare"].is_loading() and v["compare"].data))
        self.steps.append(("models", lambda: w.show_view("models"), lambda: not v["models"].is_loading()))
        self.steps.append(("endpoints", lambda: w.show_view("endpoints"), self._endpoints_ready))
        if inv["models"]:
            first = inv["models"][-1]
            self.steps.append(("deploy-dialog", lambda: w.open_deploy_dialog(first["name"], first["version"]),
                               lambda: getattr(w.dialog, "ready", True)))
        self.steps.append(("submit-dialog", self._open_submit, lambda: getattr(w.dialog, "ready", True)))
        self._next()

    def _endpoints_ready(self) -> bool:
        """Loaded; the selected endpoint's detail shown, with its live figures if it is Healthy."""
        view = self.window.views["endpoints"]
        if view.is_loading():
            return False
        rec = view.selected()
        if rec is None:
            return view.model.rowCount() == 0
        d = view.detail
        return d is not None and d["name"] == rec["name"] and (rec["state"] != "Healthy" or view.stats is not None)

    def _open_submit(self) -> None:
        from ...core.samples import SAMPLE_DIR, SAMPLE_ENTRY_SCRIPT
        from ..dialogs.submit_run import KIND_MOUNT
        self.window.show_view("runs")
        self.window.open_submit_dialog({
            "experiment": "tf-mnist", "source_directory": str(SAMPLE_DIR), "entry_script": SAMPLE_ENTRY_SCRIPT,
            "arguments": [{"name": "--data-folder", "kind": KIND_MOUNT, "value": "mnist dataset:1", "input": "mnist"},
                          {"name": "--batch-size", "kind": "Text", "value": "50"},
                          {"name": "--epochs", "kind": "Text", "value": "2"}],
            "compute_target": "local"})

    def _fail(self, exc) -> None:
        print(f"screenshot: {exc}", flush=True)
        self.exit_code = 1
        QApplication.instance().exit(1)

    def _next(self) -> None:
        self._i += 1
        if self._i >= len(self.steps):
            self._timer.stop()
            for p in self.saved:
                print(p, flush=True)
            QApplication.instance().exit(self.exit_code)
            return
        name, prepare, _ready = self.steps[self._i]
        try:
            prepare()
        except Exception as exc:  # noqa: BLE001
            print(f"screenshot {name}: {exc}", flush=True)
            self.exit_code = 1
        self._t0 = time.monotonic()
        self._ready_since = None
        self._timer.start()

    def _poll(self) -> None:
        name, _prepare, ready = self.steps[self._i]
        now = time.monotonic()
        try:
            ok = bool(ready()) and self.window.bridge.busy() == 0
        except Exception:  # noqa: BLE001
            ok = False
        if ok and self._ready_since is None:
            self._ready_since = now
        if not ok:
            self._ready_since = None
        settled = self._ready_since is not None and now - self._ready_since >= SETTLE_S
        if not settled and now - self._t0 < STEP_TIMEOUT_S:
            return
        if not settled:
            print(f"screenshot {name}: not ready after {STEP_TIMEOUT_S:.0f} s; saved as it was", flush=True)
        self._timer.stop()
        self._save(name)
        self._next()

    def _save(self, name: str) -> None:
        dialog = self.window.dialog
        target = dialog if name.endswith("-dialog") and dialog is not None and dialog.isVisible() else self.window
        path = self.out_dir / f"{name}.png"
        if target.grab().save(str(path)):
            self.saved.append(path)
        else:
            print(f"screenshot {name}: could not write {path}", flush=True)
            self.exit_code = 1
        if target is not self.window:
            dialog.reject()
