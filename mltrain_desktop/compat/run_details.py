"""``RunDetails(run).show()`` (Azure's ``azureml.widgets``): a live view of a run or a sweep.

In Jupyter it is an ipywidgets view — status line, timeline of state changes, a table of the
last value of every metric, a small chart per metric series, and for a sweep its children with
their hyperparameters and primary metric — refreshed from the workspace every
``refresh_seconds`` by a background thread until the run is terminal. Outside Jupyter it opens
the window on that run (or sweep).

:func:`snapshot` (plain data) and the ``*_html`` renderers are pure, so the view is tested
without a kernel; the notebook tests run it through a real one.
"""
from __future__ import annotations

import html
import math
import subprocess
import sys
import threading
import time

from ..domain.run_state import RunStatus

REFRESH_SECONDS = 2.0
CHART_W, CHART_H = 260, 110
MAX_CHARTS = 8


def snapshot(run) -> dict:
    """What the view shows, read from the workspace now."""
    details = run.get_details()
    metrics = run.get_metrics()
    series = {k: [float(x) for x in v if isinstance(x, (int, float)) and not isinstance(x, bool)]
              for k, v in metrics.items() if isinstance(v, list)}
    last = {}
    for k, v in metrics.items():
        if isinstance(v, list):
            last[k] = v[-1] if v else None
        elif not isinstance(v, dict):
            last[k] = v
    out = {"id": run.id, "status": details["status"], "target": details.get("target"),
           "experiment": details.get("experiment"), "error": (details.get("error") or {}).get("message", ""),
           "events": [(e.get("at"), e.get("status"), e.get("detail") or "") for e in details.get("events") or []],
           "last": last, "series": {k: v for k, v in series.items() if len(v) > 1}, "children": None}
    if hasattr(run, "get_children_sorted_by_primary_metric"):
        out["primary_metric"] = run.primary_metric_name
        kids = []
        for child in run.get_children():
            d = child.get_details()
            values = child.get_metrics(run.primary_metric_name).get(run.primary_metric_name)
            values = values if isinstance(values, list) else [values] if values is not None else []
            nums = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            kids.append({"id": child.id, "status": d["status"], "hyperparameters": d.get("hyperparameters") or {},
                         "best": (max(nums) if nums else None), "early": d.get("earlyTermination") or ""})
        out["children"] = kids
    return out


def _esc(v) -> str:
    return html.escape("" if v is None else str(v))


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else _esc(v)


def status_html(s: dict) -> str:
    colour = {"Completed": "#2e7d32", "Failed": "#c62828", "Canceled": "#757575"}.get(s["status"], "#1565c0")
    err = f"<div style='color:#c62828'>{_esc(s['error'])}</div>" if s["error"] else ""
    return (f"<div><b>Run {_esc(s['id'])}</b> · <span style='color:{colour};font-weight:bold'>"
            f"{_esc(s['status'])}</span> · experiment {_esc(s['experiment'])} · target {_esc(s['target'])}{err}</div>")


def timeline_html(s: dict) -> str:
    rows = "".join(f"<tr><td>{time.strftime('%H:%M:%S', time.localtime(t)) if t else ''}</td>"
                   f"<td>{_esc(st)}</td><td>{_esc(detail)}</td></tr>" for t, st, detail in s["events"])
    return f"<table><tr><th>time</th><th>state</th><th>detail</th></tr>{rows}</table>"


def metrics_html(s: dict) -> str:
    if not s["last"]:
        return "<i>no metrics logged yet</i>"
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in sorted(s["last"].items()))
    return f"<table><tr><th>metric</th><th>last value</th></tr>{rows}</table>"


def chart_svg(name: str, values: list[float]) -> str:
    """A small line chart of one series, as inline SVG."""
    pts = [v for v in values if math.isfinite(v)]
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    n = len(pts)
    coords = " ".join(f"{8 + i * (CHART_W - 16) / (n - 1):.1f},{CHART_H - 18 - (v - lo) / span * (CHART_H - 34):.1f}"
                      for i, v in enumerate(pts))
    return (f"<svg width='{CHART_W}' height='{CHART_H}' style='border:1px solid #ddd;margin:2px'>"
            f"<text x='6' y='13' font-size='11'>{_esc(name)} (last {pts[-1]:.4g})</text>"
            f"<polyline fill='none' stroke='#1565c0' stroke-width='1.5' points='{coords}'/>"
            f"<text x='6' y='{CHART_H - 4}' font-size='9' fill='#777'>{lo:.3g} .. {hi:.3g}, {n} points</text></svg>")


def charts_html(s: dict) -> str:
    return "".join(chart_svg(k, v) for k, v in sorted(s["series"].items())[:MAX_CHARTS])


def children_html(s: dict) -> str:
    kids = s["children"]
    if kids is None:
        return ""
    if not kids:
        return "<i>no child runs yet</i>"
    names = []
    for k in kids:
        names += [n for n in k["hyperparameters"] if n not in names]
    head = "".join(f"<th>{_esc(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><td>{_esc(k['id'])}</td><td>{_esc(k['status'])}</td>"
        + "".join(f"<td>{_fmt(k['hyperparameters'].get(n))}</td>" for n in names)
        + f"<td>{_fmt(k['best'])}</td><td>{_esc(k['early'])}</td></tr>" for k in kids)
    return (f"<table><tr><th>run</th><th>state</th>{head}<th>{_esc(s.get('primary_metric'))}</th>"
            f"<th>early stop</th></tr>{rows}</table>")


def in_jupyter() -> bool:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return bool(shell is not None and getattr(shell, "kernel", None) is not None)


class RunDetails:
    """``RunDetails(run).show()`` as in ``azureml.widgets``."""

    def __init__(self, run_instance, refresh_seconds: float = REFRESH_SECONDS):
        if not hasattr(run_instance, "get_details") or not hasattr(run_instance, "workspace"):
            raise TypeError(f"RunDetails takes a submitted run (Run or HyperDriveRun); got {run_instance!r}")
        self.run = run_instance
        self.refresh_seconds = float(refresh_seconds)
        self.widget = None
        self.updates = 0
        self._thread: threading.Thread | None = None

    def show(self):
        if not in_jupyter():
            return self.open_window()
        import ipywidgets as w
        from IPython.display import display
        self._parts = {k: w.HTML() for k in ("status", "timeline", "metrics", "charts", "children")}
        tabs = w.Tab(children=[self._parts["metrics"], self._parts["charts"], self._parts["timeline"]])
        for i, title in enumerate(("Metrics", "Charts", "Timeline")):
            tabs.set_title(i, title)
        self.widget = w.VBox([self._parts["status"], self._parts["children"], tabs])
        self.update()
        display(self.widget)
        if not RunStatus(self.run.get_status()).is_terminal():
            self._thread = threading.Thread(target=self._follow, name=f"RunDetails-{self.run.id}", daemon=True)
            self._thread.start()
        return None

    def update(self) -> dict:
        s = snapshot(self.run)
        self._parts["status"].value = status_html(s)
        self._parts["timeline"].value = timeline_html(s)
        self._parts["metrics"].value = metrics_html(s)
        self._parts["charts"].value = charts_html(s) or "<i>no metric series yet</i>"
        self._parts["children"].value = children_html(s)
        self.updates += 1
        return s

    def _follow(self) -> None:
        while True:
            time.sleep(self.refresh_seconds)
            try:
                s = self.update()
            except Exception as exc:  # noqa: BLE001 - the view says why it stopped, the kernel goes on
                self._parts["status"].value += f"<div style='color:#c62828'>stopped updating: {_esc(exc)}</div>"
                return
            if RunStatus(s["status"]).is_terminal():
                return

    def wait(self, timeout: float = 60.0) -> None:
        """Until the view's background updates ended (the run is terminal)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def open_window(self) -> subprocess.Popen:
        """Outside Jupyter: the window, opened on this run (a sweep in its sweep view)."""
        what = "--sweep" if hasattr(self.run, "get_children_sorted_by_primary_metric") else "--run"
        cmd = [sys.executable, "-m", "mltrain_desktop.gui.app", "--workspace", str(self.run.workspace.path),
               what, self.run.id]
        print(f"RunDetails: opening the window on {self.run.id} ({' '.join(cmd[2:])})")
        return subprocess.Popen(cmd, start_new_session=True)
