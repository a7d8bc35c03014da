"""A run's state timeline: one coloured segment per state, its length and duration."""
from __future__ import annotations

import time

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from ...domain.run_state import TERMINAL
from .base import fmt_duration

COLORS = {"Queued": "#8a8f98", "Preparing": "#e0a100", "Running": "#1f77d4", "Finalizing": "#17a2b8",
          "Completed": "#2e9e44", "Failed": "#d33a2c", "Canceled": "#8a8f98"}


def segments(events: list[dict], now: float | None = None) -> list[tuple[str, float, float]]:
    """(state, start, end) for each non-terminal state the run went through; the current one ends now."""
    now = now or time.time()
    out = []
    for i, e in enumerate(events):
        if e["status"] in TERMINAL:
            break
        end = events[i + 1]["at"] if i + 1 < len(events) else now
        out.append((e["status"], e["at"], end))
    return out


class TimelineWidget(QWidget):
    """Paints Queued / Preparing / Running / Finalizing as segments proportional to their time
    (with a minimum width so short stages stay readable) and the final state at the end."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.events: list[dict] = []
        self.setMinimumHeight(54)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_events(self, events: list[dict]) -> None:
        self.events = list(events)
        self.update()

    def is_active(self) -> bool:
        return bool(self.events) and self.events[-1]["status"] not in TERMINAL

    def summary(self) -> list[tuple[str, float]]:
        return [(s, b - a) for s, a, b in segments(self.events)]

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fg = self.palette().color(QPalette.ColorRole.WindowText)
        segs = segments(self.events)
        final = self.events[-1]["status"] if self.events and self.events[-1]["status"] in TERMINAL else None
        w = self.width() - (110 if final else 8)
        if not segs:
            p.setPen(fg)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No state changes yet")
            return
        total = sum(b - a for _s, a, b in segs) or 1.0
        min_w = 90.0
        widths = [max(min_w, w * (b - a) / total) for _s, a, b in segs]
        scale = w / sum(widths) if sum(widths) > w else 1.0
        x = 4.0
        for (state, a, b), sw in zip(segs, widths):
            sw *= scale
            rect = QRectF(x, 4, sw - 2, 24)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(COLORS.get(state, "#888")))
            p.drawRoundedRect(rect, 4, 4)
            p.setPen(QColor("white"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, state)
            p.setPen(fg)
            p.drawText(QRectF(x, 30, sw, 20), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
                       fmt_duration(b - a))
            x += sw
        if final:
            rect = QRectF(x + 6, 4, 96, 24)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(COLORS[final]))
            p.drawRoundedRect(rect, 12, 12)
            p.setPen(QColor("white"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, final)
            p.setPen(fg)
            total_s = self.events[-1]["at"] - self.events[0]["at"]
            p.drawText(QRectF(x + 6, 30, 96, 20), Qt.AlignmentFlag.AlignHCenter, f"total {fmt_duration(total_s)}")
        p.end()
