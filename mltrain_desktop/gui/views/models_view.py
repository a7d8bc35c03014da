"""The model registry: name and version, framework, resources, tags, lineage links, download."""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
)

from ...app import queries
from ..resources import icon
from .base import BaseView, fmt_bytes, fmt_time
from .table_model import Column, RecordTableModel, fit_columns, make_table, select_key, selected_records


def download_model(ws, state, name: str, version: int, dest: str) -> str:
    from ...core.model import Model
    return Model(ws, name, version=version).download(dest, exist_ok=False)


def _resources(r: dict) -> str:
    rc = r.get("resource_configuration") or {}
    parts = []
    if rc.get("cpu"):
        parts.append(f"{rc['cpu']:g} CPU")
    if rc.get("memory_in_gb"):
        parts.append(f"{rc['memory_in_gb']:g} GB")
    if rc.get("gpu"):
        parts.append(f"{rc['gpu']} GPU")
    return ", ".join(parts)


class ModelsView(BaseView):
    title = "Models"
    icon_name = "models"
    topics = frozenset({"models"})

    def __init__(self, ctx, parent=None):
        super().__init__(ctx, parent)
        self.model = RecordTableModel([
            Column("Name", lambda r: r["name"]),
            Column("Version", lambda r: str(r["version"]), sort=lambda r: r["version"], align_right=True),
            Column("Framework", lambda r: r["framework"] or ""),
            Column("Framework version", lambda r: r["framework_version"] or ""),
            Column("Resources", _resources),
            Column("Tags", lambda r: ", ".join(f"{k}={v}" for k, v in r["tags"].items())),
            Column("Size", lambda r: fmt_bytes(r["bytes"]), sort=lambda r: r["bytes"], align_right=True),
            Column("Created", lambda r: fmt_time(r["created"]), sort=lambda r: r["created"]),
            Column("Run", lambda r: r["run_id"] or ""),
        ])
        self.table, self.proxy = make_table(self.model)
        self.table.selectionModel().selectionChanged.connect(lambda *_: self._show_details())
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter models…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.download_button = QPushButton(icon("download"), "Download / export…")
        self.download_button.clicked.connect(self._download_clicked)
        self.deploy_button = QPushButton(icon("endpoints"), "Deploy…")
        self.deploy_button.setToolTip("Serve the selected model version as a web service (an endpoint)")
        self.deploy_button.clicked.connect(self.deploy_selected)
        self.refresh_button = QPushButton(icon("refresh"), "Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.details.anchorClicked.connect(lambda url: self._link(url.toString()))
        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(self.refresh_button)
        bar.addWidget(self.download_button)
        bar.addWidget(self.deploy_button)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.details)
        split.setSizes([300, 250])
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(split, 1)
        self._want: tuple[str, int] | None = None

    def reload(self) -> None:
        self.load(queries.list_models, on_done=self._show)

    def _show(self, rows: list[dict]) -> None:
        keep = [r["id"] for r in selected_records(self.table)]
        self.model.set_records(rows)
        fit_columns(self.table, self.model)
        if self._want:
            name, version = self._want
            match = [r for r in rows if r["name"] == name and (version <= 0 or r["version"] == version)]
            if match:
                keep = [match[-1]["id"]]
                self._want = None
        for k in keep:
            select_key(self.table, self.model, k)
        if not selected_records(self.table) and rows:
            self.table.selectRow(len(rows) - 1)
        self._show_details()

    def select_model(self, name: str, version: int = 0) -> None:
        self._want = (name, version)
        self.refresh()

    def selected(self) -> dict | None:
        recs = selected_records(self.table)
        return recs[0] if recs else None

    def _show_details(self) -> None:
        r = self.selected()
        if r is None:
            self.details.setHtml("<p>No model selected. Register one from a completed run (Runs → open a run → "
                                 "Register model…).</p>")
            return
        e = html.escape
        lin = r.get("lineage") or {}
        run_link = (f"<a href='run:{e(lin['run_id'])}'>{e(lin['run_id'])}</a>" if lin.get("run_id") else "none")
        exp_link = (f"<a href='experiment:{e(lin['experiment'])}'>{e(lin['experiment'])}</a>"
                    if lin.get("experiment") else "none")
        ds = ", ".join(f"<a href='dataset:{e(d['name'])}:{d['version']}'>{e(d['name'])} version {d['version']}</a> "
                       f"(input {e(d['input'])}, {e(d['mode'])})" for d in lin.get("datasets", [])) or "none"
        tags = ", ".join(f"{e(k)}={e(v)}" for k, v in r["tags"].items()) or "none"
        self.details.setHtml(
            f"<h3>{e(r['name'])} version {r['version']}</h3>"
            f"<p>{e(r['description'] or '')}</p><table>"
            f"<tr><td><b>Framework</b></td><td>{e(r['framework'] or '')} {e(r['framework_version'] or '')}</td></tr>"
            f"<tr><td><b>Resources</b></td><td>{e(_resources(r)) or 'not set'}</td></tr>"
            f"<tr><td><b>Tags</b></td><td>{tags}</td></tr>"
            f"<tr><td><b>Files</b></td><td>{r['files']} ({fmt_bytes(r['bytes'])}) in {e(r['path'])}</td></tr>"
            f"<tr><td><b>Created</b></td><td>{fmt_time(r['created'])}</td></tr>"
            f"<tr><td><b>Run</b></td><td>{run_link}</td></tr>"
            f"<tr><td><b>Experiment</b></td><td>{exp_link}</td></tr>"
            f"<tr><td><b>Datasets</b></td><td>{ds}</td></tr></table>")

    def deploy_selected(self) -> None:
        """Deploy…: the Endpoints view opens with the deploy dialog set to this model version."""
        r = self.selected()
        self.ctx.deployRequested.emit(r["name"] if r else "", r["version"] if r else 0)

    def _link(self, href: str) -> None:
        kind, _, rest = href.partition(":")
        if kind == "run":
            self.ctx.openRun.emit(rest)
        elif kind == "experiment":
            self.ctx.openRuns.emit(rest)
        elif kind == "dataset":
            name, _, version = rest.rpartition(":")
            self.ctx.openDataset.emit(name, int(version or 0))

    def _download_clicked(self) -> None:
        r = self.selected()
        if r is None:
            return
        dest = QFileDialog.getExistingDirectory(self, f"Download {r['id']} to")
        if dest:
            self.download(dest)

    def download(self, dest: str):
        r = self.selected()
        if r is None:
            return None
        return self.ctx.bridge.run(download_model, r["name"], r["version"], dest,
                                   on_done=lambda p: self.ctx.message.emit(f"Downloaded {r['id']} to {p}"),
                                   on_error=lambda exc: self.ctx.show_error("Download model", str(exc)))
