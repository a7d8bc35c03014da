"""The main window: navigation between views, menus and shortcuts, workspace switching.

The window owns one :class:`Bridge` (worker pool) and, while a workspace is open, one
:class:`DbWatcher` whose ``changed`` signal reaches every view through the shared context,
so a run submitted from the CLI appears here by itself.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QStackedWidget,
    QWidget,
)

from ..core.workspace import is_workspace
from .bridge import Bridge, DbWatcher
from .resources import icon
from .views.base import Context
from .views.compare_view import CompareView
from .views.compute_view import ComputeView
from .views.datasets_view import DatasetsView
from .views.endpoints_view import EndpointsView
from .views.models_view import ModelsView
from .views.run_detail import RunDetailView
from .views.sweep_view import SweepView
from .views.runs_view import RunsView
from .views.welcome_view import WelcomeView
from .views.workspace_view import WorkspaceView

NAV = ("workspace", "datasets", "compute", "runs", "models", "endpoints")
MAX_RECENT = 8


def train_sample(ws, state) -> dict:
    """Worker: the sample in one go (the seed's flow): register the shipped subset, submit 2 epochs."""
    from ..core.experiment import Experiment
    from ..core.sample_flow import SAMPLE_EXPERIMENT, register_sample_dataset, sample_estimator
    state.progress(0, 0, "registering the sample dataset")
    ds = register_sample_dataset(ws, full=False, progress=lambda d, t, m: state.progress(d, t, m))
    state.progress(0, 0, "submitting the sample run")
    run = Experiment(ws, SAMPLE_EXPERIMENT).submit(sample_estimator(ws, ds, epochs=2))
    return {"run_id": run.id, "dataset": ds.name, "version": ds.version}


def settings() -> QSettings:
    """The app's settings (an INI file under the user's config folder, or MLTRAIN_HOME/settings)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "MLTrain", "MLTrain Desktop")


class MainWindow(QMainWindow):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("MLTrain Desktop")
        self.setWindowIcon(icon("app"))
        self.bridge = Bridge(parent=self)
        self.ctx = Context(self.bridge, self)
        self.ctx.window = self
        self.watcher: DbWatcher | None = None
        self.dialog = None  # the last dialog opened (tests drive it)
        self.sample_task = None
        self.after_open = None  # called once the next workspace has opened (--run / --sweep)

        self.welcome = WelcomeView()
        self.welcome.createRequested.connect(self.create_workspace)
        self.welcome.openRequested.connect(lambda p: self.open_workspace(p) if p else self.ask_open_workspace())
        self.views = {
            "workspace": WorkspaceView(self.ctx),
            "datasets": DatasetsView(self.ctx),
            "compute": ComputeView(self.ctx),
            "runs": RunsView(self.ctx),
            "run": RunDetailView(self.ctx),
            "sweep": SweepView(self.ctx),
            "compare": CompareView(self.ctx),
            "models": ModelsView(self.ctx),
            "endpoints": EndpointsView(self.ctx),
        }
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        for v in self.views.values():
            self.stack.addWidget(v)
        self.nav = QListWidget()
        self.nav.setIconSize(QSize(22, 22))
        self.nav.setFixedWidth(170)
        for key in NAV:
            v = self.views[key]
            item = QListWidgetItem(icon(v.icon_name), v.title)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setSizeHint(QSize(160, 40))
            self.nav.addItem(item)
        self.nav.currentRowChanged.connect(self._nav_changed)
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.nav)
        lay.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.status_label = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setMaximumHeight(14)
        self.busy.hide()
        self.path_label = QLabel("")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.busy)
        self.statusBar().addPermanentWidget(self.path_label)
        self.ctx.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.bridge.busyChanged.connect(lambda n: self.busy.setVisible(n > 0))

        self._connect_navigation()

        self._make_menus()
        self._set_workspace_ui(None)
        s = settings()
        geo = s.value("window/geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1280, 820)

    def _connect_navigation(self) -> None:
        """Views ask for each other through the context's signals."""
        self.ctx.openRun.connect(self.show_run)
        self.ctx.openSweep.connect(self.show_sweep)
        self.ctx.openRuns.connect(self.show_runs)
        self.ctx.openDataset.connect(self.show_dataset)
        self.ctx.openModel.connect(self.show_model)
        self.ctx.openCompute.connect(self.show_compute)
        self.ctx.openEndpoint.connect(self.show_endpoint)
        self.ctx.deployRequested.connect(lambda name, version: self.open_deploy_dialog(name or None, version))
        self.ctx.compareRuns.connect(self.compare_runs)
        self.ctx.submitRequested.connect(self.open_submit_dialog)
        self.ctx.sampleRequested.connect(self.train_sample)

    # -- menus --------------------------------------------------------------------------

    def _action(self, text: str, slot, shortcut=None, icon_name: str | None = None) -> QAction:
        a = QAction(icon(icon_name) if icon_name else QIcon(), text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        return a

    def _make_menus(self) -> None:
        mb = self.menuBar()
        file = mb.addMenu("&File")
        self.new_action = self._action("&New Workspace…", self.open_new_workspace_dialog, QKeySequence.StandardKey.New,
                                       "new")
        self.open_action = self._action("&Open Workspace…", self.ask_open_workspace, QKeySequence.StandardKey.Open,
                                        "open")
        file.addAction(self.new_action)
        file.addAction(self.open_action)
        self.recent_menu = file.addMenu("Recent Workspaces")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))
        view = mb.addMenu("&View")
        for i, key in enumerate(NAV, 1):
            view.addAction(self._action(self.views[key].title, lambda k=key: self.show_view(k), f"Ctrl+{i}",
                                        self.views[key].icon_name))
        view.addSeparator()
        self.refresh_action = self._action("&Refresh", self.refresh_current, QKeySequence.StandardKey.Refresh,
                                           "refresh")
        if not self.refresh_action.shortcut().matches(QKeySequence("F5")):
            self.refresh_action.setShortcuts([self.refresh_action.shortcut(), QKeySequence("F5")])
        view.addAction(self.refresh_action)
        run = mb.addMenu("&Run")
        self.submit_action = self._action("&Submit Run…", lambda: self.open_submit_dialog(None), "Ctrl+R", "submit")
        self.sample_action = self._action("&Train the Sample", self.train_sample, None, "sample")
        self.register_dataset_action = self._action("Register &Dataset…", self._register_dataset, "Ctrl+D", "dataset")
        self.deploy_action = self._action("De&ploy Model…", self.open_deploy_dialog, None, "endpoints")
        for a in (self.submit_action, self.sample_action, self.register_dataset_action, self.deploy_action):
            run.addAction(a)
        self.delete_action = self._action("Delete", self.delete_selected, QKeySequence.StandardKey.Delete)
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        help_menu = mb.addMenu("&Help")
        help_menu.addAction(self._action("&About MLTrain Desktop", self.show_about, None, "about"))

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_workspaces():
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda _c=False, p=path: self.open_workspace(p))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    # -- workspaces ---------------------------------------------------------------------
    @property
    def workspace_path(self) -> str | None:
        return self.bridge.workspace_path

    def recent_workspaces(self) -> list[str]:
        value = settings().value("workspaces/recent", [])
        if isinstance(value, str):
            value = [value]
        return [p for p in (value or []) if p]

    def _remember(self, path: str) -> None:
        recent = [path] + [p for p in self.recent_workspaces() if p != path]
        s = settings()
        s.setValue("workspaces/recent", recent[:MAX_RECENT])
        s.setValue("workspaces/last", path)
        s.sync()

    def open_new_workspace_dialog(self):
        from .dialogs.workspace_dialog import NewWorkspaceDialog
        self.dialog = NewWorkspaceDialog(self.ctx, self)
        self.dialog.created.connect(self._workspace_ready)
        self.dialog.open()
        return self.dialog

    def create_workspace(self, path: str):
        """From the welcome page: create in ``path`` (errors shown there)."""
        from .dialogs.workspace_dialog import create_workspace
        if not path:
            self.welcome.set_error("Choose a folder for the workspace.")
            return None
        self.welcome.set_error(None)
        return self.bridge.run(create_workspace, path, None, with_workspace=False, on_done=self._workspace_ready,
                               on_error=lambda exc: self._workspace_failed("Create workspace", exc))

    def ask_open_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open workspace (the folder holding workspace.db)",
                                                  self.workspace_path or str(Path.home()))
        if folder:
            self.open_workspace(folder)

    def open_workspace(self, path: str):
        """Checks ``path`` on a worker, then switches to it; errors go to a message box."""
        from .dialogs.workspace_dialog import check_workspace
        return self.bridge.run(check_workspace, path, with_workspace=False, on_done=self._workspace_ready,
                               on_error=lambda exc: self._workspace_failed("Open workspace", exc))

    def _workspace_failed(self, title: str, exc) -> None:
        self.welcome.set_error(str(exc))
        self.ctx.show_error(title, str(exc), self)

    def _workspace_ready(self, path: str) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self.views["run"].stop()
        self.bridge.set_workspace(path)
        self._remember(path)
        self._set_workspace_ui(path)
        self.watcher = DbWatcher(path, parent=self)
        self.watcher.changed.connect(self.ctx.dbChanged.emit)
        self.watcher.lost.connect(lambda msg: self.ctx.show_error("Workspace", msg, self))
        self.watcher.start()
        for v in self.views.values():
            v.workspace_changed()
        self.show_view("workspace")
        self.ctx.message.emit(f"Opened workspace {path}")
        if self.after_open is not None:
            then, self.after_open = self.after_open, None
            then()

    def _set_workspace_ui(self, path: str | None) -> None:
        self.nav.setEnabled(path is not None)
        for a in (self.submit_action, self.sample_action, self.register_dataset_action, self.deploy_action,
                  self.refresh_action):
            a.setEnabled(path is not None)
        self.path_label.setText(path or "no workspace")
        self.setWindowTitle(f"MLTrain Desktop — {Path(path).name}" if path else "MLTrain Desktop")
        if path is None:
            self.welcome.set_recent(self.recent_workspaces())
            self.stack.setCurrentWidget(self.welcome)

    # -- navigation ---------------------------------------------------------------------
    def current_view(self):
        w = self.stack.currentWidget()
        return w if w is not self.welcome else None

    def show_view(self, key: str):
        if not self.workspace_path:
            return None
        view = self.views[key]
        self.stack.setCurrentWidget(view)
        nav_key = "runs" if key in ("run", "sweep", "compare") else key
        row = NAV.index(nav_key)
        if self.nav.currentRow() != row:
            self.nav.blockSignals(True)
            self.nav.setCurrentRow(row)
            self.nav.blockSignals(False)
        return view

    def _nav_changed(self, row: int) -> None:
        if 0 <= row < len(NAV):
            self.show_view(NAV[row])

    def show_run(self, run_id: str) -> RunDetailView:
        view = self.views["run"]
        view.show_run(run_id)
        self.show_view("run")
        return view

    def show_sweep(self, run_id: str) -> SweepView:
        view = self.views["sweep"]
        view.show_sweep(run_id)
        self.show_view("sweep")
        return view

    def show_runs(self, experiment: str = "") -> None:
        view = self.show_view("runs")
        if view is not None:
            view.show_experiment(experiment)

    def show_dataset(self, name: str, version: int = 0) -> None:
        view = self.show_view("datasets")
        if view is not None:
            view.select_dataset(name, version)

    def show_model(self, name: str, version: int = 0) -> None:
        view = self.show_view("models")
        if view is not None:
            view.select_model(name, version)

    def show_compute(self, name: str) -> None:
        view = self.show_view("compute")
        if view is not None:
            view.select_target(name)

    def show_endpoint(self, name: str) -> None:
        view = self.show_view("endpoints")
        if view is not None:
            view.select_endpoint(name)

    def compare_runs(self, run_ids: list[str]) -> None:
        view = self.views["compare"]
        view.set_runs(run_ids)
        self.show_view("compare")

    def refresh_current(self) -> None:
        view = self.current_view()
        if view is self.views["run"] and view.follower is not None:
            view.follower.poke()
        elif view is not None:
            view.refresh()

    def delete_selected(self) -> None:
        view = self.current_view()
        handler = getattr(view, "delete_requested", None)
        if handler is not None:
            handler()
        elif view is not None:
            self.ctx.message.emit(f"Nothing to delete in {view.title}")

    # -- actions ------------------------------------------------------------------------
    def open_submit_dialog(self, form: dict | None = None):
        if not self.workspace_path:
            return None
        from .dialogs.submit_run import SubmitRunDialog
        self.dialog = SubmitRunDialog(self.ctx, form, self)
        self.dialog.submitted.connect(self.show_run)
        self.dialog.open()
        return self.dialog

    def open_deploy_dialog(self, model: str | None = None, version: int = 0):
        """Deploy… (from the menu or the Models view): the Endpoints view shows the result."""
        view = self.show_view("endpoints")
        if view is not None:
            self.dialog = view.open_deploy_dialog(model, version)
        return self.dialog if view is not None else None

    def _register_dataset(self):
        view = self.show_view("datasets")
        if view is not None:
            self.dialog = view.open_register_dialog()
        return self.dialog

    def train_sample(self):
        if not self.workspace_path or self.sample_task is not None:
            return None
        self.views["workspace"].sample_button.setEnabled(False)
        self.ctx.message.emit("Registering the sample dataset and submitting the sample run…")

        def done(result):
            self.sample_task = None
            self.views["workspace"].sample_button.setEnabled(True)
            self.ctx.message.emit(f"Sample run {result['run_id']} submitted (dataset {result['dataset']} "
                                  f"version {result['version']})")
            self.show_run(result["run_id"])

        def failed(exc):
            self.sample_task = None
            self.views["workspace"].sample_button.setEnabled(True)
            self.ctx.show_error("Train the sample", str(exc), self)
        self.sample_task = self.bridge.run(train_sample, on_done=done, on_error=failed)
        return self.sample_task

    def show_about(self):
        from .dialogs.about import AboutDialog
        self.dialog = AboutDialog(self)
        self.dialog.open()
        return self.dialog

    # -- closing ------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stops the threads (runs keep going: they belong to their supervisors)."""
        self.views["run"].stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        self.bridge.cancel_all()
        self.bridge.wait(10_000)


def initial_workspace(explicit: str | None) -> str | None:
    """--workspace, else the last one opened, else the default one if it exists."""
    from ..core.workspace import default_workspace_dir
    if explicit:
        return explicit
    last = settings().value("workspaces/last")
    if last and is_workspace(last):
        return str(last)
    default = default_workspace_dir()
    return str(default) if is_workspace(default) else None
