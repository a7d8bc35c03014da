"""Endpoints: deployed models as web services.

A table (name, state, URL, model and version, kind, created) and, for the selected endpoint,
its URL and key (masked; show, copy, rotate), live requests/s and p50/p99 latency (polled from
``GET /v1/stats`` about once a second while this view is on screen), a test console (a JSON
request pre-filled from the model's signature, Send, the answer pretty-printed) and its log.
Stop, Start, Delete (asks first) and Deploy… act on it. Everything that talks to a service,
to Docker or waits runs on the bridge's workers; endpoints deployed from the command line show
up by themselves (the database watcher's ``endpoints`` topic).
"""
from __future__ import annotations

import html
import json

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...domain.endpoint_state import EndpointState
from ..resources import icon
from ..widgets.log_view import LogView
from . import endpoint_tasks as tasks
from .endpoint_panels import EndpointPanels, endpoint_icon, kind_text
from .base import BaseView, confirm_box, fmt_duration, fmt_time
from .table_model import Column, RecordTableModel, fit_columns, make_table, select_key, selected_records

STATS_INTERVAL_MS = 1000
LIST_INTERVAL_MS = 5000  # a service that died is noticed (Unhealthy) by reading its state
LOGS_INTERVAL_MS = 2000
OK_STYLE = "color: #2e9e44;"
ERROR_STYLE = "color: #d33a2c;"


def _ms(v) -> str:
    return "–" if v is None else (f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms")


class EndpointsView(EndpointPanels, BaseView):
    title = "Endpoints"
    icon_name = "endpoints"
    topics = frozenset({"endpoints"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.detail: dict | None = None  # endpoint_detail() of the selected endpoint
        self.stats: dict | None = None
        self.answer: dict | None = None  # the last test answer, or {"error": text}
        self.dialog = None
        self.confirm_box = None
        self._want: str | None = None
        self._stats_task = None
        self._detail_task = None
        self._logs_task = None
        self._busy: dict[str, str] = {}  # endpoint -> what is being done to it
        self._log_text = ""
        self._log_name: str | None = None

        self.model = RecordTableModel([
            Column("Name", lambda r: r["name"]),
            Column("State", lambda r: self._busy.get(r["name"]) or r["state"], icon=lambda r: endpoint_icon(r["state"]),
                   tooltip=lambda r: r["detail"] or r["state"]),
            Column("URL", lambda r: r["url"]),
            Column("Model", lambda r: r["model"]),
            Column("Kind", kind_text),
            Column("Created", lambda r: fmt_time(r["created"]), sort=lambda r: r["created"]),
        ], key="name")
        self.table, _ = make_table(self.model)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._selection_changed())

        bar = self._actions_bar()
        overview = self._overview_panel()
        console = self._console_panel()
        self.log_view = LogView()
        self.log_view.set_max_lines(tasks.LOG_LINES)

        self.tabs = QTabWidget()
        self.tabs.addTab(console, icon("submit"), "Test")
        self.tabs.addTab(self.log_view, icon("log"), "Logs")
        self.tabs.currentChanged.connect(lambda _i: self._poll_logs())

        self.detail_box = QWidget()
        dl = QVBoxLayout(self.detail_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(overview)
        dl.addWidget(self.tabs, 1)
        self.empty_label = QLabel("No endpoint selected. <b>Deploy…</b> a registered model (here or from the "
                                  "Models view) to serve it over HTTP.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lower = QWidget()
        lo = QVBoxLayout(lower)
        lo.setContentsMargins(0, 0, 0, 0)
        lo.addWidget(self.detail_box, 1)
        lo.addWidget(self.empty_label, 1)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes([140, 600])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._poll_stats)
        self._list_timer = QTimer(self)
        self._list_timer.setInterval(LIST_INTERVAL_MS)
        self._list_timer.timeout.connect(self._periodic_refresh)
        self._quiet_reload = False
        self._logs_timer = QTimer(self)
        self._logs_timer.setInterval(LOGS_INTERVAL_MS)
        self._logs_timer.timeout.connect(self._poll_logs)
        self._show_selected()

    def _actions_bar(self) -> QHBoxLayout:
        """Deploy…, Start, Stop, Delete and Refresh."""
        self.deploy_button = QPushButton(icon("endpoints"), "Deploy…")
        self.deploy_button.setToolTip("Deploy a registered model as a web service")
        self.deploy_button.clicked.connect(lambda: self.open_deploy_dialog())
        self.start_button = QPushButton(icon("submit"), "Start")
        self.start_button.clicked.connect(self.start_selected)
        self.stop_button = QPushButton(icon("cancel"), "Stop")
        self.stop_button.clicked.connect(self.stop_selected)
        self.delete_button = QPushButton(icon("delete"), "Delete")
        self.delete_button.clicked.connect(lambda: self.delete_selected(confirm=True))
        self.refresh_button = QPushButton(icon("refresh"), "Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        bar = QHBoxLayout()
        for b in (self.deploy_button, self.start_button, self.stop_button, self.delete_button):
            bar.addWidget(b)
        bar.addStretch(1)
        bar.addWidget(self.refresh_button)
        return bar

    # -- loading ------------------------------------------------------------------------
    def reload(self) -> None:
        quiet, self._quiet_reload = self._quiet_reload, False
        self.load(tasks.list_endpoints, on_done=self._show, quiet=quiet)

    def _periodic_refresh(self) -> None:
        """Every few seconds: a service that died is found (its state turns Unhealthy)."""
        self._quiet_reload = True
        self.refresh()

    def _show(self, rows: list[dict]) -> None:
        keep = self._want or next((r["name"] for r in selected_records(self.table)), None)
        self.model.set_records(rows)
        fit_columns(self.table, self.model)
        if keep and select_key(self.table, self.model, keep):
            if keep == self._want:
                self._want = None
        elif rows and not selected_records(self.table):
            self.table.selectRow(0)
        rec = self.selected()
        if rec is not None and self.detail is not None and rec["name"] == self.detail["name"] and (
                rec["state"] != self.detail["state"] or rec["url"] != self.detail["url"]
                or rec.get("updated") != self.detail.get("updated")):
            self._load_detail()  # its state, port or key changed
        elif rec is None:
            self._selection_changed()

    def select_endpoint(self, name: str) -> None:
        """Select ``name`` now, or once it is in the table."""
        if not select_key(self.table, self.model, name):
            self._want = name
        self.refresh()

    def selected(self) -> dict | None:
        recs = selected_records(self.table)
        return recs[0] if recs else None

    def selected_name(self) -> str | None:
        r = self.selected()
        return r["name"] if r else None

    def _selection_changed(self) -> None:
        rec = self.selected()
        if rec is None or self.detail is None or rec["name"] != self.detail["name"]:
            self.detail = None
            self.stats = None
            self.answer = None
            self.answer_edit.clear()
            self.answer_status.setText("")
            self.request_edit.clear()
            self.show_key_button.setChecked(False)
            self._log_text = ""
            self._log_name = None
            self.log_view.clear()
        self._show_selected()
        if rec is not None:
            self._load_detail()

    def _load_detail(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        if self._detail_task is not None and not self._detail_task.done:
            self._detail_task.cancel()  # its answer is ignored (name check below)

        def done(d: dict) -> None:
            self._detail_task = None
            if d["name"] != self.selected_name():
                return
            first = self.detail is None or self.detail["name"] != d["name"]
            self.detail = d
            if first or not self.request_edit.toPlainText().strip() or (
                    self.request_edit.toPlainText() in ('{"instances": [[0.0]]}', '{"data": [[0.0]]}')):
                self.request_edit.setPlainText(d["example"])
            self._show_selected()
            self._poll_stats()
            self._poll_logs()

        def failed(exc) -> None:
            self._detail_task = None
            self.ctx.message.emit(f"Endpoints: {exc}")
            self.refresh()
        self._detail_task = self.ctx.bridge.run(tasks.endpoint_detail, name, on_done=done, on_error=failed)

    # -- the selected endpoint, shown ---------------------------------------------------
    def _show_selected(self) -> None:
        rec = self.selected()
        self.detail_box.setVisible(rec is not None)
        self.empty_label.setVisible(rec is None)
        d = self.detail if rec and self.detail and self.detail["name"] == rec["name"] else None
        if d is not None and (d.get("updated") or 0) > (rec.get("updated") or 0):
            rec = {**rec, "state": d["state"], "detail": d["detail"], "url": d["url"]}  # the newer of the two
        busy = self._busy.get(rec["name"]) if rec else None
        state = rec["state"] if rec else ""
        healthy = state == EndpointState.HEALTHY and not busy
        startable = (EndpointState.STOPPED, EndpointState.FAILED, EndpointState.UNHEALTHY)
        stoppable = (EndpointState.HEALTHY, EndpointState.TRANSITIONING, EndpointState.UNHEALTHY)
        self.start_button.setEnabled(rec is not None and not busy and state in startable)
        self.stop_button.setEnabled(rec is not None and not busy and state in stoppable)
        self.delete_button.setEnabled(rec is not None and not busy)
        self.send_button.setEnabled(healthy)
        self.rotate_button.setEnabled(rec is not None and not busy)
        if rec is None:
            return
        self.name_label.setText(rec["name"])
        self.state_icon.setPixmap(endpoint_icon(state).pixmap(20, 20))
        detail = rec.get("detail") or ""
        self.state_label.setText(f"{busy or state}" + (f": {detail}" if detail else ""))
        self.url_edit.setText(rec["url"] or "(no URL: the service is not running)")
        self.copy_url_button.setEnabled(bool(rec["url"]))
        keyed = d is not None and d.get("auth_enabled", True)
        self.key_edit.setText(d["key"] if d else "")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password if keyed and not self.show_key_button.isChecked()
                                  else QLineEdit.EchoMode.Normal)  # "no key (auth disabled)" is shown as text
        self.copy_key_button.setEnabled(keyed)
        self.show_key_button.setEnabled(keyed)
        self.rotate_button.setEnabled(keyed and not busy)
        e = html.escape
        model_name, _, version = rec["model"].partition(":")
        parts = [f"Model <a href='model:{e(rec['model'])}'>{e(model_name)} version {e(version)}</a>",
                 f"Kind {e(kind_text(rec))}", f"created {fmt_time(rec['created'])}"]
        if rec.get("entry_script"):
            parts.append(f"entry script {e(rec['entry_script'])}")
        if d and d.get("base_uri"):
            parts.append(f"base URI {e(d['base_uri'])} (also GET /v1/models/{e(model_name)}/metadata, "
                         "/v1/stats, /healthz)")
        self.info_label.setText(" · ".join(parts))
        self._show_stats()

    def _show_stats(self) -> None:
        s = self.stats
        rec = self.selected()
        if s is None or rec is None or rec["state"] != EndpointState.HEALTHY:
            for w in (self.rate_stat, self.p50_stat, self.p99_stat, self.total_stat, self.errors_stat):
                w.set("–")
            if rec is not None and rec["state"] != EndpointState.HEALTHY:
                self.stats_note.setText("Live figures appear while the endpoint is Healthy.")
            return
        lat = s.get("latency_ms") or {}
        self.rate_stat.set(f"{s.get('requests_per_s', 0):.1f}")
        self.p50_stat.set(_ms(lat.get("p50")))
        self.p99_stat.set(_ms(lat.get("p99")))
        self.total_stat.set(f"{s.get('requests', 0):,}")
        self.errors_stat.set(f"{s.get('errors', 0):,}")
        up = s.get("uptime_s")
        if up is not None:
            self.stats_note.setText(f"Up {fmt_duration(up)}; latency over the last {lat.get('window', 0)} "
                                    "requests; updated every second.")

    def _reveal_key(self, on: bool) -> None:
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        self.show_key_button.setText("Hide" if on else "Show")

    def _copy(self, text: str, what: str) -> None:
        if text:
            QGuiApplication.clipboard().setText(text)
            self.ctx.message.emit(f"Copied the {what} to the clipboard")

    def _link(self, href: str) -> None:
        kind, _, rest = href.partition(":")
        if kind == "model":
            name, _, version = rest.rpartition(":")
            self.ctx.openModel.emit(name, int(version or 0))

    # -- polling (only while on screen) -------------------------------------------------
    def _poll_stats(self) -> None:
        rec = self.selected()
        if (not self.isVisible() or rec is None or rec["state"] != EndpointState.HEALTHY or self._busy.get(rec["name"])
                or (self._stats_task is not None and not self._stats_task.done)):
            return
        name = rec["name"]

        def done(s: dict) -> None:
            self._stats_task = None
            if name == self.selected_name():
                self.stats = s
                self._show_stats()

        def failed(exc) -> None:
            self._stats_task = None
            if name == self.selected_name():
                self.stats = None
                self._show_stats()
                self.stats_note.setText(f"No answer from the service: {exc}")
                self.refresh()  # maybe it died: its state says
        self._stats_task = self.ctx.bridge.run(tasks.endpoint_stats, name, on_done=done, on_error=failed,
                                               quiet=True)

    def _poll_logs(self) -> None:
        name = self.selected_name()
        if (not self.isVisible() or name is None or self.tabs.currentWidget() is not self.log_view
                or (self._logs_task is not None and not self._logs_task.done)):
            return

        def done(text: str) -> None:
            self._logs_task = None
            if name != self.selected_name():
                return
            if self._log_name == name and text.startswith(self._log_text):
                self.log_view.append_text(text[len(self._log_text):])
            else:
                self.log_view.clear()
                self.log_view.append_text(text)
            self._log_text = text
            self._log_name = name

        def failed(exc) -> None:
            self._logs_task = None
        self._logs_task = self.ctx.bridge.run(tasks.endpoint_logs, name, on_done=done, on_error=failed,
                                              quiet=True)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        for t in (self._stats_timer, self._list_timer, self._logs_timer):
            t.start()
        QTimer.singleShot(0, self._poll_stats)

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        for t in (self._stats_timer, self._list_timer, self._logs_timer):
            t.stop()

    # -- test console -------------------------------------------------------------------
    def _fill_example(self) -> None:
        if self.detail:
            self.request_edit.setPlainText(self.detail["example"])

    def send(self):
        """Sends the request editor's JSON to the selected endpoint; the answer is shown."""
        rec = self.selected()
        if rec is None or not self.send_button.isEnabled():
            return None
        text = self.request_edit.toPlainText()
        try:
            json.loads(text)
        except ValueError as exc:
            self._show_answer_error(f"The request is not valid JSON: {exc}. Nothing was sent.")
            return None
        name = rec["name"]
        self.send_button.setEnabled(False)
        self.answer_status.setStyleSheet("")
        self.answer_status.setText(f"Sending to {name}…")

        def done(r: dict) -> None:
            self.send_button.setEnabled(self.selected_name() == name
                                        and self.selected()["state"] == EndpointState.HEALTHY)
            if name != self.selected_name():
                return
            self.answer = r
            self.answer_status.setStyleSheet(OK_STYLE)
            self.answer_status.setText(f"200 OK from {name} in {r['ms']:.0f} ms")
            self.answer_edit.setPlainText(r["text"])
            self._poll_stats()

        def failed(exc) -> None:
            self.send_button.setEnabled(self.selected_name() == name
                                        and self.selected()["state"] == EndpointState.HEALTHY)
            if name == self.selected_name():
                self._show_answer_error(str(exc) or type(exc).__name__)
        return self.ctx.bridge.run(tasks.send_request, name, text, on_done=done, on_error=failed)

    def _show_answer_error(self, text: str) -> None:
        self.answer = {"error": text}
        self.answer_status.setStyleSheet(ERROR_STYLE)
        self.answer_status.setText(text)
        self.answer_edit.setPlainText(text)

    # -- actions ------------------------------------------------------------------------
    def open_deploy_dialog(self, model: str | None = None, version: int = 0):
        from ..dialogs.deploy_dialog import DeployDialog
        self.dialog = DeployDialog(self.ctx, model, version, self)
        self.dialog.deployed.connect(self.select_endpoint)
        self.dialog.openRequested.connect(self.ctx.openEndpoint.emit)
        self.dialog.open()
        return self.dialog

    def _act(self, name: str, doing: str, fn, on_done) -> None:
        self._busy[name] = doing
        self.model.refresh_column(1)
        self._show_selected()

        def finish() -> None:
            self._busy.pop(name, None)
            self.model.refresh_column(1)
            self._show_selected()
            self.refresh()

        def done(r) -> None:
            finish()
            on_done(r)

        def failed(exc) -> None:
            finish()
            self.ctx.show_error(f"Endpoint {name}", str(exc) or type(exc).__name__, self)
        self.ctx.bridge.run(fn, name, on_done=done, on_error=failed)

    def start_selected(self) -> None:
        name = self.selected_name()
        if not name:
            return

        def done(r: dict) -> None:
            if r["state"] == EndpointState.HEALTHY:
                self.ctx.message.emit(f"{name} is Healthy again")
            else:
                self.ctx.show_error(f"Start {name}", f"{name}: {r['state']}. {r['detail']}\n\n{r['log']}", self)
        self._act(name, "Starting…", tasks.start_endpoint, done)

    def stop_selected(self) -> None:
        name = self.selected_name()
        if name:
            self._act(name, "Stopping…", tasks.stop_endpoint, lambda _r: self.ctx.message.emit(f"Stopped {name}"))

    def delete_selected(self, confirm: bool = True) -> None:
        name = self.selected_name()
        if not name:
            return
        if confirm:
            self.confirm_box = confirm_box(self, "Delete endpoint",
                                           f"Delete the endpoint {name!r}? Its service stops and its URL and key "
                                           "stop working. The model stays registered.", lambda: self._delete(name))
            return
        self._delete(name)

    def _delete(self, name: str) -> None:
        self._act(name, "Deleting…", tasks.delete_endpoint,
                  lambda _r: self.ctx.message.emit(f"Deleted endpoint {name}"))

    def delete_requested(self) -> None:
        """The Delete key."""
        self.delete_selected(confirm=True)

    def rotate_key(self, confirm: bool = True) -> None:
        name = self.selected_name()
        if not name:
            return
        if confirm:
            self.confirm_box = confirm_box(self, "Rotate key",
                                           f"Replace the key of {name!r}? Clients still using the old key get "
                                           "401 Unauthorized from now on.", lambda: self.rotate_key(confirm=False))
            return

        def done(key: str) -> None:
            if self.detail and self.detail["name"] == name:
                self.detail["key"] = key
                self._show_selected()
            self.ctx.message.emit(f"New key for {name}")
        self._act(name, "Rotating key…", tasks.rotate_key, done)

    def workspace_changed(self) -> None:
        self.detail = None
        self.stats = None
        self._want = None
        super().workspace_changed()
