"""A table model over a list of dicts, updated in place by key so selections survive reloads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QTableView

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RECORD_ROLE = Qt.ItemDataRole.UserRole + 2

_DISPLAY = int(Qt.ItemDataRole.DisplayRole.value)
_DECORATION = int(Qt.ItemDataRole.DecorationRole.value)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole.value)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole.value)
_SORT = int(SORT_ROLE)
_RECORD = int(RECORD_ROLE)
# The delegate asks for ~7 roles per cell per paint (font, colours, check state...): the roles
# answered here are looked up once, the others return before touching the index.
_ROLES = frozenset({_DISPLAY, _DECORATION, _TOOLTIP, _ALIGN, _SORT, _RECORD})
_RIGHT = int((Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter).value)


@dataclass
class Column:
    title: str
    text: Callable[[dict], str]
    sort: Callable[[dict], Any] | None = None
    icon: Callable[[dict], Any] | None = None
    tooltip: Callable[[dict], str] | None = None
    align_right: bool = False


def sort_key(v):
    """Numbers before text before blanks; tuples element by element; text case-insensitive."""
    if isinstance(v, tuple):
        return tuple(sort_key(x) for x in v)
    if v is None or v == "":
        return (2, 0.0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "") if v == v else (2, 0.0, "")
    return (1, 0.0, str(v).lower())


class RecordTableModel(QAbstractTableModel):
    """Rows are dicts; sorting happens here in Python (one ``sorted`` call, not a comparison
    callback per pair), so a filter proxy on top only filters."""

    def __init__(self, columns: list[Column], key: str = "id", parent=None,
                 arrange: Callable[[list[dict]], list[dict]] | None = None):
        super().__init__(parent)
        self.columns = columns
        self.key = key
        self.arrange = arrange  # applied after sorting (e.g. to keep child rows under their parent)
        self.records: list[dict] = []
        self._keys: list = []
        self._sort: tuple[int, Qt.SortOrder] | None = None

    # -- sorting ------------------------------------------------------------------------
    def _sorted(self, records: list[dict]) -> list[dict]:
        if self._sort is None:
            out = list(records)
        else:
            col, order = self._sort
            c = self.columns[col]
            fn = c.sort or c.text
            out = sorted(records, key=lambda r: sort_key(fn(r)), reverse=order == Qt.SortOrder.DescendingOrder)
        return self.arrange(out) if self.arrange else out

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            self._sort = None
            return
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        before_keys = [self._keys[i.row()] if 0 <= i.row() < len(self._keys) else None for i in before]
        self.records = self._sorted(self.records)
        self._keys = [r.get(self.key) for r in self.records]
        pos = {k: i for i, k in enumerate(self._keys)}
        after = [self.index(pos[k], i.column()) if k in pos else QModelIndex() for k, i in zip(before_keys, before)]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    # -- data -------------------------------------------------------------------------
    def set_records(self, records: list[dict]) -> None:
        """Replace the rows. Same keys: only changed rows are signalled; new keys in front (new
        runs) or removed keys: rows are inserted/removed; anything else resets the model."""
        records = self._sorted(records)
        keys = [r.get(self.key) for r in records]
        old = self._keys
        if keys != old:
            k = len(keys) - len(old)
            if k > 0 and keys[:len(old)] == old:
                self.beginInsertRows(QModelIndex(), len(old), len(keys) - 1)
                self.records = self.records + list(records[len(old):])
                self._keys = list(keys)
                self.endInsertRows()
            elif k > 0 and keys[k:] == old:
                self.beginInsertRows(QModelIndex(), 0, k - 1)
                self.records = list(records[:k]) + self.records
                self._keys = keys[:k] + old
                self.endInsertRows()
            elif k < 0 and set(keys) <= set(old) and [x for x in old if x in set(keys)] == keys:
                keep = set(keys)
                for i in range(len(old) - 1, -1, -1):
                    if old[i] not in keep:
                        self.beginRemoveRows(QModelIndex(), i, i)
                        del self.records[i]
                        del self._keys[i]
                        self.endRemoveRows()
            else:
                self.beginResetModel()
                self.records = list(records)
                self._keys = keys
                self.endResetModel()
                return
        changed = [i for i, (a, b) in enumerate(zip(self.records, records)) if a != b]
        self.records = list(records)
        if changed:
            self.dataChanged.emit(self.index(min(changed), 0), self.index(max(changed), len(self.columns) - 1))

    def refresh_column(self, col: int) -> None:
        """Re-read one column (e.g. durations of running runs) without new data."""
        if self.records:
            self.dataChanged.emit(self.index(0, col), self.index(len(self.records) - 1, col))

    def record(self, row: int) -> dict | None:
        return self.records[row] if 0 <= row < len(self.records) else None

    def row_of(self, key) -> int:
        try:
            return self._keys.index(key)
        except ValueError:
            return -1

    # -- Qt ---------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        role = int(role.value) if hasattr(role, "value") else int(role)
        if role not in _ROLES or not index.isValid():
            return None
        rec = self.records[index.row()]
        col = self.columns[index.column()]
        if role == _DISPLAY:
            return col.text(rec)
        if role == _DECORATION:
            return col.icon(rec) if col.icon else None
        if role == _ALIGN:
            return _RIGHT if col.align_right else None
        if role == _TOOLTIP:
            return col.tooltip(rec) if col.tooltip else None
        if role == _SORT:
            v = col.sort(rec) if col.sort else col.text(rec)
            return v if v is not None else ""
        return rec  # _RECORD


class RecordFilterProxy(QSortFilterProxyModel):
    """Sorts by SORT_ROLE (numbers as numbers) and filters on any column's text."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self.extra_filter: Callable[[dict], bool] | None = None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the source model's (fast); the proxy keeps its order and only filters."""
        self.sourceModel().sort(column, order)

    def filterAcceptsRow(self, row, parent) -> bool:  # noqa: N802
        if self.extra_filter is not None:
            rec = self.sourceModel().record(row)
            if rec is not None and not self.extra_filter(rec):
                return False
        return super().filterAcceptsRow(row, parent)


def make_table(model: RecordTableModel, sortable: bool = True,
               multi: bool = False) -> tuple[QTableView, RecordFilterProxy]:
    proxy = RecordFilterProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(sortable)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection if multi
                          else QAbstractItemView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(24)
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.horizontalHeader().setResizeContentsPrecision(40)  # size columns from 40 rows, not all
    view.horizontalHeader().setStretchLastSection(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.setWordWrap(False)
    return view, proxy


def fit_columns(view: QTableView, model: RecordTableModel, sample: int = 40, max_width: int = 520) -> None:
    """Sizes the columns to their title and the text of the first ``sample`` rows.

    What ``resizeColumnsToContents`` does, measured with ``QFontMetrics`` on the formatted
    strings: ~1 ms where Qt's per-cell style layout costs 20-60 ms on the GUI thread.
    """
    fm = view.fontMetrics()
    header = view.horizontalHeader()
    hfm = header.fontMetrics()
    style = view.style()
    margin = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1) + 6
    icon_w = style.pixelMetric(QStyle.PixelMetric.PM_SmallIconSize, None, view) + 4
    arrow = style.pixelMetric(QStyle.PixelMetric.PM_HeaderMarkSize, None, header) + 8
    recs = model.records[:sample]
    for c, col in enumerate(model.columns):
        if header.isSectionHidden(c):
            continue
        w = hfm.horizontalAdvance(col.title) + margin + arrow
        if recs:
            texts = {col.text(r) for r in recs}
            cell = max(fm.horizontalAdvance(t) for t in texts) + margin
            if col.icon is not None:
                cell += icon_w
            w = max(w, cell)
        view.setColumnWidth(c, min(w, max_width))


def selected_records(view: QTableView) -> list[dict]:
    rows = view.selectionModel().selectedRows() if view.selectionModel() else []
    return [r.data(RECORD_ROLE) for r in sorted(rows, key=lambda i: i.row())]


def select_key(view: QTableView, model: RecordTableModel, key) -> bool:
    row = model.row_of(key)
    if row < 0:
        return False
    proxy = view.model()
    idx = proxy.mapFromSource(model.index(row, 0))
    if not idx.isValid():
        return False
    view.selectRow(idx.row())
    view.scrollTo(idx)
    return True
