"""One run: state timeline, live log, live metric charts, metrics table, outputs, register model.

Everything live comes from a :class:`RunFollower` thread (new metric points after the last step
seen, new log bytes, state, file listing); this view only appends what it is handed.
"""
from __future__ import annotations

import json
import time

import numpy as np
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...domain.run_state import TERMINAL
from ..bridge import RunFollower
from ..resources import icon, state_icon
from ..widgets.live_plot import LivePlotPanel
from ..widgets.log_view import LogView
from .base import BaseView, fmt_bytes, fmt_duration, fmt_time, fmt_value
from .run_images import ImagesPanel
from .timeline import TimelineWidget

ALL_RANKS = -1


def download_run_files(ws, state, run_id: str, prefix: str, dest: str) -> list[str]:
    from ...core.runs import Run
    run = Run.get(ws, run_id)
    names = [n for n in run.get_file_names() if n == prefix or n.startswith(prefix.rstrip("/") + "/") or not prefix]
    out = []
    for i, n in enumerate(names):
        if state.cancelled():
            break
        out.append(run.download_file(n, f"{dest}/{n}"))
        state.progress(i + 1, len(names), n)
    return out


class _MetricCache:
    """Every point received for one (name, rank), kept to re-feed the charts on a rank change."""

    def __init__(self):
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0
        self.last_step = None
        self.last_value = None
        self.min = np.inf
        self.max = -np.inf

    def add(self, s, v, w) -> None:
        self.chunks.append((s, v, w))
        self.count += len(s)
        self.last_step = int(s[-1])
        self.last_value = float(v[-1])
        fin = v[np.isfinite(v)]
        if fin.size:
            self.min = min(self.min, float(fin.min()))
            self.max = max(self.max, float(fin.max()))


class RunDetailView(BaseView):
    title = "Run"
    icon_name = "runs"
    topics = frozenset()

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.run_id: str | None = None
        self.follower: RunFollower | None = None
        self.state: dict | None = None
        self.metrics: dict[tuple[str, int], _MetricCache] = {}
        self.ranks: set[int] = set()
        self._charted: set[tuple[str, int]] = set()
        self.files: list[tuple[str, int]] = []
        self.gone_message = ""
        self._log_chosen = False
        self.dialog = None

        head = self._header()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._overview_tab(), "Overview")
        self.tabs.addTab(self._metrics_tab(), icon("runs"), "Metrics")
        self.tabs.addTab(self._logs_tab(), icon("log"), "Logs")
        self.tabs.addTab(self._outputs_tab(), icon("folder"), "Outputs")
        self.images = ImagesPanel()
        self.tabs.addTab(self.images, icon("file"), "Images")

        lay = QVBoxLayout(self)
        lay.addLayout(head)
        lay.addWidget(self.id_label)
        lay.addWidget(self.banner)
        lay.addWidget(self.tabs, 1)

        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._metrics_table_dirty = False

    def _header(self) -> QHBoxLayout:
        """Back button, state, title and the run actions."""
        self.back_button = QPushButton(icon("runs"), "All runs")
        self.back_button.clicked.connect(lambda: self.ctx.openRuns.emit(""))
        self.title_label = QLabel("")
        f = self.title_label.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.title_label.setFont(f)
        self.state_icon = QLabel()
        self.state_label = QLabel("")
        self.id_label = QLabel("")
        self.id_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel_run)
        self.resubmit_button = QPushButton(icon("resubmit"), "Re-submit…")
        self.resubmit_button.clicked.connect(self.resubmit)
        self.register_button = QPushButton(icon("register"), "Register model…")
        self.register_button.clicked.connect(self.open_register_dialog)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#fff3cd; color:#664d03; padding:6px; border-radius:4px;")
        self.banner.hide()
        head = QHBoxLayout()
        head.addWidget(self.back_button)
        head.addSpacing(8)
        head.addWidget(self.state_icon)
        head.addWidget(self.title_label)
        head.addWidget(self.state_label)
        head.addStretch(1)
        for b in (self.cancel_button, self.resubmit_button, self.register_button):
            head.addWidget(b)
        return head

    def _overview_tab(self) -> QWidget:
        """The timeline, the details form and the state changes."""
        self.timeline = TimelineWidget()
        self.details_form = QFormLayout()
        self.detail_labels: dict[str, QLabel] = {}
        for key in ("Experiment", "Run id", "Compute", "Script", "Arguments", "Inputs", "Created", "Started",
                    "Ended", "Duration", "Exit code", "Distribution", "Environment", "Tags", "Folder", "Error"):
            lab = QLabel("")
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
            lab.linkActivated.connect(self._link)
            self.detail_labels[key] = lab
            self.details_form.addRow(key, lab)
        self.events_table = QTableWidget(0, 4)
        self.events_table.setHorizontalHeaderLabels(["State", "At", "Duration", "Detail"])
        self.events_table.horizontalHeader().setStretchLastSection(True)
        self.events_table.verticalHeader().setVisible(False)
        self.events_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        overview = QWidget()
        ol = QVBoxLayout(overview)
        ol.addWidget(self.timeline)
        ol.addLayout(self.details_form)
        ol.addWidget(self.events_table, 1)
        return overview

    def _metrics_tab(self) -> QWidget:
        """Live charts per metric (one rank at a time) and their summary table."""
        self.plots = LivePlotPanel(spare_chart=True)  # a run's first chart appears without a stall
        self.rank_combo = QComboBox()
        self.rank_combo.addItem("rank 0", 0)
        self.rank_combo.currentIndexChanged.connect(self._rank_changed)
        self.rank_label = QLabel("Rank:")
        self.metrics_table = QTableWidget(0, 7)
        self.metrics_table.setHorizontalHeaderLabels(["Metric", "Rank", "Points", "Last step", "Last value",
                                                      "Min", "Max"])
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.metrics_table.horizontalHeader().setStretchLastSection(True)
        metrics = QWidget()
        ml = QVBoxLayout(metrics)
        ml.setContentsMargins(0, 0, 0, 0)
        rank_row = QHBoxLayout()
        rank_row.addWidget(self.rank_label)
        rank_row.addWidget(self.rank_combo)
        rank_row.addStretch(1)
        ml.addLayout(rank_row)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plots)
        split.addWidget(self.metrics_table)
        split.setSizes([500, 150])
        ml.addWidget(split, 1)
        self._set_rank_visible(False)
        return metrics

    def _logs_tab(self) -> QWidget:
        """One log file at a time, followed live."""
        self.log_combo = QComboBox()
        self.log_combo.currentTextChanged.connect(self._log_changed)
        self.log_view = LogView()
        logs = QWidget()
        ll = QVBoxLayout(logs)
        ll.setContentsMargins(0, 0, 0, 0)
        lr = QHBoxLayout()
        lr.addWidget(QLabel("Log:"))
        lr.addWidget(self.log_combo, 1)
        ll.addLayout(lr)
        ll.addWidget(self.log_view, 1)
        return logs

    def _outputs_tab(self) -> QWidget:
        """The run's files, with open-folder and download."""
        self.files_tree = QTreeWidget()
        self.files_tree.setHeaderLabels(["File", "Size"])
        self.files_tree.setColumnWidth(0, 420)
        self.open_folder_button = QPushButton(icon("folder"), "Open folder")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.download_button = QPushButton(icon("download"), "Download…")
        self.download_button.clicked.connect(self._download_clicked)
        outputs = QWidget()
        outl = QVBoxLayout(outputs)
        outl.setContentsMargins(0, 0, 0, 0)
        ob = QHBoxLayout()
        ob.addWidget(self.open_folder_button)
        ob.addWidget(self.download_button)
        ob.addStretch(1)
        outl.addLayout(ob)
        outl.addWidget(self.files_tree, 1)
        return outputs

    # -- lifecycle ----------------------------------------------------------------------
    def show_run(self, run_id: str) -> None:
        if run_id == self.run_id and self.follower is not None:
            return
        self.stop()
        self.run_id = run_id
        self.state = None
        self.metrics.clear()
        self._charted = set()
        self.ranks = {0}
        self.files = []
        self.images.set_files(None, [])
        self.gone_message = ""
        self._log_chosen = False
        self.plots.clear()
        self.log_view.clear()
        self.log_combo.blockSignals(True)
        self.log_combo.clear()
        self.log_combo.blockSignals(False)
        self.rank_combo.blockSignals(True)
        self.rank_combo.clear()
        self.rank_combo.addItem("rank 0", 0)
        self.rank_combo.blockSignals(False)
        self._set_rank_visible(False)
        self.metrics_table.setRowCount(0)
        self.files_tree.clear()
        self.banner.hide()
        self.title_label.setText(run_id)
        self.id_label.setText(run_id)
        self.state_label.setText("loading…")
        for b in (self.cancel_button, self.resubmit_button, self.register_button):
            b.setEnabled(False)
        self.follower = RunFollower(self.ctx.workspace_path, run_id)
        self.follower.state.connect(self._on_state)
        self.follower.metrics.connect(self._on_metrics)
        self.follower.logs.connect(self._on_logs)
        self.follower.log_text.connect(self._on_log_text)
        self.follower.files.connect(self._on_files)
        self.follower.gone.connect(self._on_gone)
        self.follower.start()
        self._clock.start()

    def stop(self) -> None:
        if self.follower is not None:
            f = self.follower
            self.follower = None
            for sig in (f.state, f.metrics, f.logs, f.log_text, f.files, f.gone):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
            f.stop()
            f.deleteLater()
        self._clock.stop()

    def workspace_changed(self) -> None:
        self.stop()
        self.run_id = None

    # -- state --------------------------------------------------------------------------
    def _on_state(self, st: dict) -> None:
        self.state = st
        status = st["status"]
        self.title_label.setText(f"{st['experiment']} #{st['number']}")
        self.state_label.setText(status)
        self.state_icon.setPixmap(state_icon(status).pixmap(20, 20))
        active = status not in TERMINAL
        self.cancel_button.setEnabled(active)
        self.resubmit_button.setEnabled(True)
        self.register_button.setEnabled(status == "Completed" and st["run_dir_exists"])
        self.timeline.set_events(st["events"])
        spec = json.loads(st["spec"] or "{}")
        d = self.detail_labels
        d["Experiment"].setText(f"<a href='experiment:{st['experiment']}'>{st['experiment']}</a>")
        d["Run id"].setText(st["id"])
        d["Compute"].setText(f"<a href='compute:{st['compute']}'>{st['compute']}</a>")
        d["Script"].setText(f"{spec.get('entry_script', '')} in {spec.get('source_directory', '')}")
        d["Arguments"].setText(" ".join(a if isinstance(a, str) else f"[dataset {a.get('dataset')}:{a.get('version')}"
                                        f" as {a.get('input')}, {a.get('mode')}]" for a in spec.get("arguments", [])))
        d["Inputs"].setText(", ".join(f"{i['input']}: <a href='dataset:{i['dataset']}:{i['version']}'>"
                                      f"{i['dataset']} v{i['version']}</a> ({i['mode']})" for i in st["inputs"])
                            or "none")
        d["Created"].setText(fmt_time(st["created"]))
        d["Started"].setText(fmt_time(st["started"]))
        d["Ended"].setText(fmt_time(st["ended"]))
        d["Exit code"].setText("" if st["exit_code"] is None else str(st["exit_code"]))
        dist = spec.get("distribution") or {}
        d["Distribution"].setText(", ".join(f"{k}={v}" for k, v in dist.items()) if dist else "none")
        env = spec.get("environment") or {}
        d["Environment"].setText(f"interpreter {env.get('python') or 'of the target'}; pip: "
                                 f"{', '.join(env.get('pip_packages') or []) or 'none'}; "
                                 f"GPU: {'yes' if spec.get('use_gpu') else 'no'}")
        try:
            tags = json.loads(st["tags"] or "{}")
        except ValueError:
            tags = {}
        d["Tags"].setText(", ".join(f"{k}={v}" for k, v in tags.items()) or "none")
        d["Folder"].setText(st["run_dir"])
        d["Error"].setText((st["error"] or "")[-3000:])
        self._update_duration()
        self.events_table.setRowCount(len(st["events"]))
        for i, e in enumerate(st["events"]):
            nxt = st["events"][i + 1]["at"] if i + 1 < len(st["events"]) else None
            dur = (nxt - e["at"]) if nxt else (None if e["status"] in TERMINAL
                                               else time.time() - e["at"])
            for c, text in enumerate((e["status"], fmt_time(e["at"]), fmt_duration(dur), e["detail"] or "")):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setIcon(state_icon(e["status"]))
                self.events_table.setItem(i, c, item)
        self.events_table.resizeColumnsToContents()
        if not st["run_dir_exists"]:
            self._show_banner("This run's folder was deleted from disk: its logs and outputs are gone. "
                              "Its records (state, metrics) remain in the workspace.")
        elif not self.gone_message:
            self.banner.hide()

    def _update_duration(self) -> None:
        st = self.state
        if not st:
            return
        if st["started"]:
            end = st["ended"] or time.time()
            self.detail_labels["Duration"].setText(fmt_duration(end - st["started"]))

    def _tick(self) -> None:
        if self.state and self.state["status"] not in TERMINAL:
            self._update_duration()
            self.timeline.update()
        if self._metrics_table_dirty and self.tabs.currentIndex() == 1:
            self._fill_metrics_table()

    def _on_gone(self, message: str) -> None:
        self.gone_message = message
        self._show_banner(f"This run is no longer in the workspace ({message}). What is shown is what was "
                          "loaded before.")
        for b in (self.cancel_button, self.resubmit_button, self.register_button):
            b.setEnabled(False)
        self.state_label.setText("deleted")

    def _show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def _link(self, href: str) -> None:
        kind, _, rest = href.partition(":")
        if kind == "experiment":
            self.ctx.openRuns.emit(rest)
        elif kind == "compute":
            self.ctx.openCompute.emit(rest)
        elif kind == "dataset":
            name, _, version = rest.rpartition(":")
            self.ctx.openDataset.emit(name, int(version or 0))

    # -- metrics ------------------------------------------------------------------------
    def _shown_ranks(self) -> set[int]:
        r = self.rank_combo.currentData()
        return set(self.ranks) if r == ALL_RANKS else {0 if r is None else r}

    def _series_key(self, rank: int) -> str:
        return f"rank {rank}" if self.rank_combo.currentData() == ALL_RANKS else ""

    def _on_metrics(self, batch: list) -> None:
        shown = self._shown_ranks()
        new_rank = False
        for name, rank, s, v, w in batch:
            cache = self.metrics.get((name, rank))
            if cache is None:
                cache = self.metrics[(name, rank)] = _MetricCache()
            cache.add(s, v, w)
            if rank not in self.ranks:
                self.ranks.add(rank)
                new_rank = True
            if rank in shown:
                self._feed(name, rank, cache, new=(s, v, w))
        if new_rank:
            self._fill_rank_combo()
        self._metrics_table_dirty = True
        if self.metrics_table.rowCount() == 0:
            self._fill_metrics_table()

    def _feed(self, name: str, rank: int, cache: _MetricCache, new=None) -> None:
        """Charts are for series: a metric gets its chart from its second point on (a single
        value, such as a final accuracy, is in the metrics table)."""
        if cache.count < 2:
            return
        if (name, rank) not in self._charted:
            self._charted.add((name, rank))
            chunks = cache.chunks
        else:
            chunks = [new] if new is not None else []
        for s, v, w in chunks:
            self.plots.append(name, s, v, w, series_key=self._series_key(rank))

    def _fill_rank_combo(self) -> None:
        current = self.rank_combo.currentData()
        self.rank_combo.blockSignals(True)
        self.rank_combo.clear()
        for r in sorted(self.ranks):
            self.rank_combo.addItem(f"rank {r}", r)
        if len(self.ranks) > 1:
            self.rank_combo.addItem("all ranks", ALL_RANKS)
        i = self.rank_combo.findData(current)
        self.rank_combo.setCurrentIndex(max(i, 0))
        self.rank_combo.blockSignals(False)
        self._set_rank_visible(len(self.ranks) > 1)

    def _set_rank_visible(self, on: bool) -> None:
        self.rank_combo.setVisible(on)
        self.rank_label.setVisible(on)

    def _rank_changed(self, _i: int) -> None:
        shown = self._shown_ranks()
        self.plots.clear()
        self._charted = set()
        for (name, rank), cache in sorted(self.metrics.items()):
            if rank in shown:
                self._feed(name, rank, cache)

    def _fill_metrics_table(self) -> None:
        self._metrics_table_dirty = False
        items = sorted(self.metrics.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        self.metrics_table.setRowCount(len(items))
        for i, ((name, rank), c) in enumerate(items):
            vals = (name, str(rank), f"{c.count:,}", str(c.last_step), fmt_value(c.last_value),
                    fmt_value(c.min) if np.isfinite(c.min) else "", fmt_value(c.max) if np.isfinite(c.max) else "")
            for col, text in enumerate(vals):
                item = self.metrics_table.item(i, col)
                if item is None:
                    self.metrics_table.setItem(i, col, QTableWidgetItem(text))
                elif item.text() != text:
                    item.setText(text)

    def point_count(self, name: str, rank: int = 0) -> int:
        c = self.metrics.get((name, rank))
        return c.count if c else 0

    # -- logs ---------------------------------------------------------------------------
    def _on_logs(self, names: list[str]) -> None:
        """New list of log files: keep the user's choice, else show driver.log (once it exists)."""
        current = self.log_combo.currentText()
        if current in names and (self._log_chosen or current == "driver.log"):
            want = current
        else:
            want = "driver.log" if "driver.log" in names else (names[0] if names else "")
        self.log_combo.blockSignals(True)
        self.log_combo.clear()
        self.log_combo.addItems(names)
        self.log_combo.setCurrentText(want)
        self.log_combo.blockSignals(False)
        if want and want != current:
            self._switch_log(want)

    def _log_changed(self, name: str) -> None:
        """The user picked another log (rank_N.log, worker_N.log...)."""
        self._log_chosen = True
        self._switch_log(name)

    def _switch_log(self, name: str) -> None:
        if name and self.follower is not None:
            self.log_view.clear()
            self.follower.select_log(name)

    def _on_log_text(self, name: str, text: str, reset: bool) -> None:
        if name != (self.log_combo.currentText() or "driver.log"):
            return
        if reset:
            self.log_view.clear()
            if self.state:
                self.log_view.set_source_path(f"{self.state['run_dir']}/logs/{name}")
        self.log_view.append_text(text)

    # -- files --------------------------------------------------------------------------
    def _on_files(self, files: list) -> None:
        self.files = files
        self.images.set_files(self.state["run_dir"] if self.state else None, files)
        self.files_tree.clear()
        nodes: dict[str, QTreeWidgetItem] = {}
        for path, size in files:
            parts = path.split("/")
            parent = None
            for k in range(1, len(parts)):
                key = "/".join(parts[:k])
                if key not in nodes:
                    item = QTreeWidgetItem([parts[k - 1], ""])
                    item.setIcon(0, icon("folder"))
                    item.setData(0, Qt.ItemDataRole.UserRole, key)
                    (parent.addChild(item) if parent else self.files_tree.addTopLevelItem(item))
                    nodes[key] = item
                parent = nodes[key]
            leaf = QTreeWidgetItem([parts[-1], fmt_bytes(size)])
            leaf.setIcon(0, icon("file"))
            leaf.setData(0, Qt.ItemDataRole.UserRole, path)
            (parent.addChild(leaf) if parent else self.files_tree.addTopLevelItem(leaf))
        if len(files) <= 200:
            self.files_tree.expandAll()
        elif "outputs" in nodes:
            nodes["outputs"].setExpanded(True)

    def open_folder(self) -> None:
        if self.state:
            QDesktopServices.openUrl(QUrl.fromLocalFile(f"{self.state['run_dir']}/outputs"))

    def _download_clicked(self) -> None:
        item = self.files_tree.currentItem()
        prefix = item.data(0, Qt.ItemDataRole.UserRole) if item else "outputs"
        dest = QFileDialog.getExistingDirectory(self, f"Download {prefix} to")
        if dest:
            self.download(prefix, dest)

    def download(self, prefix: str, dest: str):
        """Copies the run's files under ``prefix`` into ``dest`` (off the GUI thread)."""
        return self.ctx.bridge.run(download_run_files, self.run_id, prefix, dest,
                                   on_done=lambda out: self.ctx.message.emit(
                                       f"Downloaded {len(out)} file(s) to {dest}"),
                                   on_error=lambda e: self.ctx.show_error("Download", str(e)))

    # -- actions ------------------------------------------------------------------------
    def cancel_run(self) -> None:
        from .runs_view import cancel_runs
        if self.run_id:
            self.ctx.bridge.run(cancel_runs, [self.run_id],
                                on_done=lambda _r: self.ctx.message.emit("Cancel requested"),
                                on_error=lambda e: self.ctx.show_error("Cancel", str(e)))

    def resubmit(self) -> None:
        from .runs_view import run_form
        if self.run_id:
            self.ctx.bridge.run(run_form, self.run_id, on_done=lambda form: self.ctx.submitRequested.emit(form),
                                on_error=lambda e: self.ctx.show_error("Re-submit", str(e)))

    def open_register_dialog(self):
        if not self.run_id:
            return None
        from ..dialogs.register_model import RegisterModelDialog
        default = f"{self.state['experiment']}-model" if self.state else ""
        self.dialog = RegisterModelDialog(self.ctx, self.run_id, default, self)
        self.dialog.registered.connect(lambda name, version: self.ctx.openModel.emit(name, version))
        self.dialog.open()
        return self.dialog

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
