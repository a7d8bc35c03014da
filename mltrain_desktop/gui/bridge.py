"""Threads between the core and the window: nothing slow runs on the GUI thread.

* :class:`Bridge` runs plain functions ``fn(ws, state, *args)`` on a QThreadPool. Each pool
  thread opens its own workspace connection (SQLite connections are never shared across
  threads); ``state`` reports progress and answers "was I cancelled?". Results, errors and
  progress come back as Qt signals on the GUI thread (the Orange pattern).
* :class:`DbWatcher` is a thread that polls the app's :class:`~mltrain_desktop.app.watch.ChangeWatch`
  (its own connection) and, when another connection committed and topics changed (runs,
  datasets, compute, models, experiments, endpoints), emits :attr:`DbWatcher.changed`.
* :class:`RunFollower` is a thread that follows one run: state and timeline, new metric points
  (``after_step``, incrementally), new log text (by byte offset) and the outputs listing.
"""
from __future__ import annotations

import sqlite3
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from ..app.queries import run_state
from ..app.watch import ChangeWatch, WorkspaceLost
from ..core.workspace import Workspace
from ..domain.run_state import RunStatus
from .widgets.file_tail import FileTailer

_local = threading.local()


def thread_workspace(path: str | Path) -> Workspace:
    """This thread's own connection to the workspace at ``path`` (opened on first use)."""
    cache: dict = getattr(_local, "workspaces", None)
    if cache is None:
        cache = _local.workspaces = {}
    key = str(path)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = Workspace(path)
    return ws


def drop_thread_workspace(path: str | Path) -> None:
    ws = getattr(_local, "workspaces", {}).pop(str(path), None)
    if ws is not None:
        try:
            ws.close()
        except Exception:  # noqa: BLE001
            pass


class WorkerState:
    """Handed to a task function: ``state.progress(done, total, msg)``, ``state.cancelled()``."""

    def __init__(self, task: "Task"):
        self._task = task

    def progress(self, done: int, total: int = 0, message: str = "") -> None:
        now = time.monotonic()
        if now - self._task._last_progress >= 0.05 or (total and done >= total):
            self._task._last_progress = now
            self._task.progress.emit(int(done), int(total), str(message))

    def cancelled(self) -> bool:
        return self._task._cancel.is_set()


class Task(QObject):
    """One piece of work on the pool. Signals arrive on the GUI thread."""

    progress = Signal(object, object, str)  # done, total (python ints: may exceed 2**31), message
    succeeded = Signal(object)
    failed = Signal(object)  # the exception (with .traceback_text)
    finished = Signal()

    def __init__(self, name: str = ""):
        super().__init__()
        self.name = name
        self._cancel = threading.Event()
        self._last_progress = 0.0
        self.done = False
        self.quiet = False
        self.result: Any = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()


class _Runnable(QRunnable):
    def __init__(self, task: Task, fn: Callable, args: tuple, ws_path: str | None):
        super().__init__()
        self.setAutoDelete(True)
        self.task, self.fn, self.args, self.ws_path = task, fn, args, ws_path

    def run(self) -> None:  # pool thread
        task = self.task
        state = WorkerState(task)
        try:
            if self.ws_path is not None:
                result = self.fn(thread_workspace(self.ws_path), state, *self.args)
            else:
                result = self.fn(state, *self.args)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the window
            exc.traceback_text = traceback.format_exc()
            task.error = exc
            task.done = True
            task.failed.emit(exc)
        else:
            task.result = result
            task.done = True
            task.succeeded.emit(result)
        task.finished.emit()


class Bridge(QObject):
    """The window's way to run core functions off the GUI thread, for one workspace."""

    busyChanged = Signal(int)  # noqa: N815 - number of tasks in flight

    def __init__(self, workspace_path: str | Path | None = None, parent: QObject | None = None,
                 max_threads: int = 4):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.pool.setExpiryTimeout(-1)  # keep threads (and their connections) alive
        self.workspace_path = str(workspace_path) if workspace_path else None
        self._tasks: set[Task] = set()

    def set_workspace(self, path: str | Path | None) -> None:
        self.workspace_path = str(path) if path else None

    def run(self, fn: Callable, *args, on_done: Callable | None = None, on_error: Callable | None = None,
            on_progress: Callable | None = None, with_workspace: bool = True, name: str = "",
            quiet: bool = False) -> Task:
        """Runs ``fn(ws, state, *args)`` (or ``fn(state, *args)`` with ``with_workspace=False``).

        ``quiet`` tasks (a poll every second, such as an endpoint's live figures) are not counted
        by :meth:`busy` and do not light the window's busy indicator."""
        if with_workspace and not self.workspace_path:
            raise RuntimeError("no workspace is open")
        task = Task(name or getattr(fn, "__name__", "task"))
        task.quiet = quiet
        if on_done:
            task.succeeded.connect(on_done)
        if on_error:
            task.failed.connect(on_error)
        if on_progress:
            task.progress.connect(on_progress)
        task.finished.connect(lambda t=task: self._forget(t))
        self._tasks.add(task)
        if not quiet:
            self.busyChanged.emit(self.busy())
        self.pool.start(_Runnable(task, fn, args, self.workspace_path if with_workspace else None))
        return task

    def _forget(self, task: Task) -> None:
        self._tasks.discard(task)
        if not task.quiet:
            self.busyChanged.emit(self.busy())

    def busy(self) -> int:
        """Tasks in flight, quiet ones left out."""
        return sum(1 for t in self._tasks if not t.quiet)

    def cancel_all(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    def wait(self, msecs: int = 10_000) -> bool:
        return self.pool.waitForDone(msecs)


# ------------------------------------------------------------------------------ watching the DB

class DbWatcher(QThread):
    """Polls the workspace database; emits ``changed(topics)`` when another connection wrote.

    ``topics`` is a set of names from :data:`mltrain_desktop.store.changes.TOPICS` plus
    ``"metrics"`` for any other write (metric ingestion, tags). ``lost(message)`` when the
    database disappears.
    """

    changed = Signal(object)
    lost = Signal(str)

    def __init__(self, workspace_path: str | Path, interval: float = 0.25, parent: QObject | None = None):
        super().__init__(parent)
        self.path = Path(workspace_path)
        self.interval = interval
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self.wait(5000)

    def run(self) -> None:  # watcher thread
        try:
            watch = ChangeWatch(self.path)
        except WorkspaceLost as exc:
            self.lost.emit(str(exc))
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    topics = watch.poll()
                except WorkspaceLost as exc:
                    self.lost.emit(str(exc))
                    return
                if topics:
                    self.changed.emit(topics)
        finally:
            watch.close()


# ------------------------------------------------------------------------------ following a run

class RunFollower(QThread):
    """Follows one run off the GUI thread; every ``interval`` seconds emits what is new.

    Signals: ``state(dict)`` (row, events, inputs; when changed), ``metrics(list)`` of
    ``(name, rank, steps, values, walls)`` numpy arrays (only points after those already sent),
    ``logs(list)`` (log file names, when changed), ``log_text(name, text, reset)``,
    ``files(list)`` (run files, when changed), ``gone(message)`` (the run vanished).
    """

    state = Signal(object)
    metrics = Signal(object)
    logs = Signal(object)
    log_text = Signal(str, str, bool)
    files = Signal(object)
    gone = Signal(str)

    def __init__(self, workspace_path: str | Path, run_id: str, interval: float = 0.5,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.ws_path = str(workspace_path)
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._log_name = "driver.log"
        self._tailer: FileTailer | None = None
        self._last_step: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.wait(10_000)

    def select_log(self, name: str) -> None:
        """Follow another log file (the view is reset with its whole text)."""
        with self._lock:
            self._log_name = name
            self._tailer = None
        self._wake.set()

    def poke(self) -> None:
        """Poll now (e.g. after a database change)."""
        self._wake.set()

    def run(self) -> None:  # follower thread
        from ..core.runs import Run
        try:
            ws = Workspace(self.ws_path)
        except Exception as exc:  # noqa: BLE001
            self.gone.emit(f"cannot open the workspace: {exc}")
            return
        last_state = last_logs = last_files = None
        terminal_polls = 0
        polls = 0
        try:
            while not self._stop.is_set():
                try:
                    run = Run.get(ws, self.run_id)
                except Exception as exc:  # noqa: BLE001 - deleted meanwhile
                    self.gone.emit(str(exc))
                    return
                try:
                    st = run_state(ws, run)
                except Exception as exc:  # noqa: BLE001
                    self.gone.emit(str(exc))
                    return
                if st != last_state:
                    last_state = st
                    self.state.emit(st)
                self._poll_metrics(run)
                terminal = RunStatus(st["status"]).is_terminal()
                # folder listings are the slow part of a poll: every 4th poll while running
                if polls % 4 == 0 or terminal or last_logs is None:
                    logs = _log_names(run.run_dir)
                    if logs != last_logs:
                        last_logs = logs
                        self.logs.emit(logs)
                    files = _file_listing(run.run_dir)
                    if files != last_files:
                        last_files = files
                        self.files.emit(files)
                self._poll_log(run)
                polls += 1
                terminal_polls = terminal_polls + 1 if terminal else 0
                # after the end: one more full poll, then slow down (the run may still be deleted)
                wait = self.interval if terminal_polls < 2 else max(2.0, self.interval)
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            ws.close()

    def _poll_metrics(self, run) -> None:
        out = []
        try:
            names = run.get_metric_names()
        except sqlite3.Error:
            return
        for name, rank in names:
            key = (name, rank)
            after = self._last_step.get(key, -1)
            steps, values, walls = run.get_metric_series(name, rank=rank, after_step=after)
            if not steps:
                continue
            self._last_step[key] = steps[-1]
            vals = _as_floats(values)
            out.append((name, rank, np.asarray(steps, dtype=np.float64), vals,
                        np.asarray(walls, dtype=np.float64)))
        if out:
            self.metrics.emit(out)

    def _poll_log(self, run) -> None:
        with self._lock:
            if self._tailer is None:
                self._tailer = FileTailer(run.run_dir / "logs" / self._log_name)
                reset = True
            else:
                reset = False
            tailer, name = self._tailer, self._log_name
        text = tailer.read()
        if tailer.was_reset:
            reset = True
        if text or reset:
            self.log_text.emit(name, text, reset)


def _as_floats(values: list) -> np.ndarray:
    """Metric values as float64; None and text values become NaN (text stays in the table)."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([v if isinstance(v, (int, float)) else None for v in values], dtype=np.float64)


def _log_names(run_dir: Path) -> list[str]:
    logs = run_dir / "logs"
    try:
        names = sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*.log") if p.is_file())
    except OSError:
        return []
    # driver first, then ranks/tasks in natural order
    return sorted(names, key=lambda n: (n != "driver.log", _natural(n)))


def _natural(name: str) -> list:
    import re
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _file_listing(run_dir: Path) -> list[tuple[str, int]]:
    out = []
    for top in ("outputs", "logs"):
        base = run_dir / top
        try:
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    out.append((p.relative_to(run_dir).as_posix(), p.stat().st_size))
        except OSError:
            continue
    return out
