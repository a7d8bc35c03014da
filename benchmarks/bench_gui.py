"""Figures for the window: start time, chart redraw, event-loop stalls under a live load.

1. Start: process start -> first paint of the main window, and -> the workspace overview and the
   runs table loaded, for an empty workspace and one holding 1,000 runs (rows inserted with SQL,
   each with 2 metric series of 10 points).
2. Chart redraw at 10k, 100k and 1M points (the widgets' envelope path, from bench_chart_redraw).
3. The longest stall of the event loop while 5 runs each log 1,000 points per second: a separate
   "supervisor" process appends metrics.jsonl lines for 5 runs and ingests them into SQLite by
   byte offset, as supervisors do; the window shows the Runs view, then one run's live charts,
   then the overview. A 5 ms QTimer records the gaps between its ticks.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--runs 1000] [--load-seconds 20]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


# ------------------------------------------------------------------------------ workspaces

def make_workspace(path: Path, runs: int) -> Path:
    """A workspace with ``runs`` finished runs inserted directly (fast), in 10 experiments."""
    from mltrain_desktop.core import Workspace
    ws = Workspace.create(path)
    conn = ws.db.conn
    now = time.time()
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with ws.transaction():
        for e in range(10):
            conn.execute("INSERT INTO experiments (name, created) VALUES (?, ?)", [f"exp-{e}", now])
        exp_ids = [r[0] for r in conn.execute("SELECT id FROM experiments ORDER BY id")]
        spec = json.dumps({"entry_script": "train.py", "source_directory": "/src", "arguments": ["--lr", "0.1"],
                           "compute_target": "local", "environment": {}, "distribution": None})
        for i in range(runs):
            rid = f"bench_{i:05d}"
            t0 = now - (runs - i) * 60
            conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created, started, ended, "
                         "spec) VALUES (?,?,?,?,?,?,?,?,?)",
                         [rid, exp_ids[i % 10], i // 10 + 1, "Completed" if i % 17 else "Failed", "local", t0,
                          t0 + 1, t0 + 30, spec])
            conn.executemany("INSERT INTO run_events (run_id, status, at, detail) VALUES (?,?,?,'')",
                             [(rid, s, t0 + k) for k, s in enumerate(("Queued", "Preparing", "Running",
                                                                      "Finalizing", "Completed"))])
            if "metric_series" in tables:
                for name in ("loss", "accuracy"):
                    sid = conn.execute("INSERT INTO metric_series (run_id, name, rank) VALUES (?,?,0)",
                                       [rid, name]).lastrowid
                    conn.executemany("INSERT INTO metrics (series_id, step, value, wall) VALUES (?,?,?,?)",
                                     [(sid, s, 1.0 / (s + 1), t0 + s) for s in range(10)])
    ws.close()
    return path


# ------------------------------------------------------------------------------ 1. start time

CHILD = r"""
import os, sys, time
T0 = float(os.environ["BENCH_T0"])
sys.path.insert(0, os.environ["BENCH_REPO"])
from PySide6.QtCore import QEvent, QObject, QTimer
from mltrain_desktop.gui import app as gui_app
marks = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint and "paint" not in marks and obj.isWindow() \
                and type(obj).__name__ == "MainWindow":
            marks["paint"] = time.time() - T0
        return False

def handle(args, app):
    f = FirstPaint(app)
    app.installEventFilter(f)
    app._bench_filter = f
    def poll():
        win = next((w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"), None)
        if win is None:
            return
        over = win.views["workspace"]
        if "overview" not in marks and over.data is not None:
            marks["overview"] = time.time() - T0
            win.show_view("runs")
        runs = win.views["runs"]
        if "overview" in marks and "runs" not in marks and runs.model.rowCount() == int(os.environ["BENCH_RUNS"]) \
                and not runs.is_loading():
            marks["runs"] = time.time() - T0
            print(marks, flush=True)
            app.quit()
    t = QTimer(app)
    t.timeout.connect(poll)
    t.start(5)
    app._bench_timer = t
    return None

gui_app.register_option(lambda p: None, handle)
sys.exit(gui_app.main(["--workspace", os.environ["BENCH_WS"]]))
"""


def start_time(ws: Path, runs: int, tries: int = 3) -> dict:
    out = []
    for _ in range(tries):
        env = dict(os.environ, BENCH_WS=str(ws), BENCH_RUNS=str(runs), BENCH_REPO=str(REPO),
                   MLTRAIN_HOME=tempfile.mkdtemp(prefix="bench-home-"))
        env["BENCH_T0"] = repr(time.time())
        p = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not line:
            raise RuntimeError(f"start benchmark failed: {p.stdout}\n{p.stderr}")
        out.append(eval(line[-1]))  # noqa: S307 - our own dict repr
    return {k: statistics.median(d[k] for d in out) for k in out[0]}


# ------------------------------------------------------------------------------ 2. chart redraw

def chart_redraw(frames: int = 7) -> list[tuple[int, str, float, int]]:
    from bench_chart_redraw import bench_envelope, make_data
    from PySide6.QtWidgets import QApplication
    QApplication.instance() or QApplication([])
    rows = []
    bench_envelope(*make_data(1000), False, 3)  # warm up
    for n in (10_000, 100_000, 1_000_000):
        x, y = make_data(n)
        for zoom in (False, True):
            t, drawn, _append, _view = bench_envelope(x, y, zoom, frames)
            rows.append((n, "zoom 5%" if zoom else "full", t * 1e3, drawn))
    return rows


# ------------------------------------------------------------------------------ 3. stalls

INGESTER = r"""
import json, os, sys, time, threading, psutil
sys.path.insert(0, os.environ["BENCH_REPO"])
from mltrain_desktop.core.workspace import Workspace
from mltrain_desktop.store.metrics import ingest_file
from mltrain_desktop.store.runs import set_status
ws_path, duration, rate = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
run_ids = sys.argv[4:]
ws = Workspace(ws_path)
conn = ws.db.conn
me = psutil.Process()
for rid in run_ids:
    conn.execute("UPDATE runs SET supervisor_pid=?, supervisor_started=? WHERE id=?", [me.pid, me.create_time(), rid])
    set_status(conn, rid, "Preparing")
    set_status(conn, rid, "Running")
files = {rid: open(os.path.join(ws_path, "runs", rid, "logs", "metrics.jsonl"), "a") for rid in run_ids}
logs = {rid: open(os.path.join(ws_path, "runs", rid, "logs", "driver.log"), "a") for rid in run_ids}
print("ready", flush=True)
stop = time.time() + duration
step = 0
t_next = time.time()
written = 0
while time.time() < stop:
    # 50 ms of points for every run, then ingest like a supervisor does
    n = rate // 20
    now = time.time()
    for rid, fh in files.items():
        fh.write("".join(json.dumps({"k": "m", "n": "loss", "s": step + i,
                                     "v": 1.0 / (step + i + 1) + 0.01 * ((step + i) % 7), "t": now}) + "\n"
                         for i in range(n)))
        fh.flush()
        logs[rid].write(f"step {step + n}: loss {1.0 / (step + n):.5f}\n")
        logs[rid].flush()
    step += n
    written += n * len(files)
    for rid in run_ids:
        ingest_file(conn, rid, os.path.join(ws_path, "runs", rid, "logs", "metrics.jsonl"))
    t_next += 0.05
    time.sleep(max(0.0, t_next - time.time()))
for rid in run_ids:
    ingest_file(conn, rid, os.path.join(ws_path, "runs", rid, "logs", "metrics.jsonl"))
    set_status(conn, rid, "Finalizing")
    set_status(conn, rid, "Completed")
print("written", written, "steps", step, flush=True)
"""


def stall_under_load(tmp: Path, seconds: float, rate: int = 1000) -> dict:
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from mltrain_desktop.core import Workspace
    from mltrain_desktop.gui.app import apply_theme, configure_settings
    app = QApplication.instance() or QApplication([])
    os.environ["MLTRAIN_HOME"] = str(tmp / "home")
    configure_settings()
    apply_theme(app, "light")
    path = tmp / "ws-load"
    make_workspace(path, 50)
    ws = Workspace(path)
    run_ids = []
    now = time.time()
    exp = ws.db.execute("SELECT id FROM experiments LIMIT 1").fetchone()[0]
    with ws.transaction() as conn:
        for i in range(5):
            rid = f"live_{i}"
            conn.execute("INSERT INTO runs (id, experiment_id, number, status, compute, created, spec) VALUES "
                         "(?,?,?,?,?,?,?)", [rid, exp, 1000 + i, "Queued", "local", now, "{}"])
            conn.execute("INSERT INTO run_events (run_id, status, at, detail) VALUES (?, 'Queued', ?, '')", [rid, now])
            (path / "runs" / rid / "logs").mkdir(parents=True)
            (path / "runs" / rid / "outputs").mkdir(parents=True)
            run_ids.append(rid)
    ws.close()

    from mltrain_desktop.gui.main_window import MainWindow
    win = MainWindow()
    win.resize(1280, 820)
    win.show()
    from mltrain_desktop.gui.app import freeze_startup_objects
    freeze_startup_objects()  # as gui.app.main() does once the window is shown
    win.open_workspace(str(path))

    gaps: list[float] = []
    worst: list[tuple[float, str, float]] = []  # (gap, phase, seconds into the phase)
    phase_max: dict[str, float] = {}
    phase = ["opening"]
    phase_t0 = [time.monotonic()]
    clock = QElapsedTimer()
    clock.start()
    last = [clock.nsecsElapsed()]
    last_cpu = [time.thread_time()]
    cpu_gaps: list[float] = []
    steady: list[float] = []  # gaps more than 1 s after a view was opened
    steady_cpu: list[float] = []

    def tick():
        t = clock.nsecsElapsed()
        c = time.thread_time()
        gap = (t - last[0]) / 1e6 - 5.0
        cpu = (c - last_cpu[0]) * 1e3
        last[0] = t
        last_cpu[0] = c
        if phase[0] not in ("opening", "done"):
            gaps.append(gap)
            cpu_gaps.append(cpu)
            if time.monotonic() - phase_t0[0] > 1.0:
                steady.append(gap)
                steady_cpu.append(cpu)
            phase_max[phase[0]] = max(phase_max.get(phase[0], 0.0), gap)
            if gap > 20:
                worst.append((gap, phase[0], time.monotonic() - phase_t0[0]))
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(tick)
    probe.start()

    env = dict(os.environ, BENCH_REPO=str(REPO))
    ingester = subprocess.Popen([sys.executable, "-c", INGESTER, str(path), str(seconds), str(rate), *run_ids],
                                stdout=subprocess.PIPE, text=True, env=env)
    assert ingester.stdout.readline().strip() == "ready"
    t_start = time.monotonic()
    schedule = [(0.0, "runs view", lambda: win.show_view("runs")),
                (seconds * 0.25, "run detail (live charts)", lambda: (win.show_run(run_ids[0]),
                                                                     win.views["run"].tabs.setCurrentIndex(1))),
                (seconds * 0.6, "run detail (live log)", lambda: win.views["run"].tabs.setCurrentIndex(2)),
                (seconds * 0.8, "workspace overview", lambda: win.show_view("workspace")),
                (seconds + 2.0, "done", None)]
    result = {}

    def step():
        elapsed = time.monotonic() - t_start
        while schedule and elapsed >= schedule[0][0]:
            _t, name, fn = schedule.pop(0)
            if name == "run detail (live log)":
                result["chart_points"] = win.views["run"].plots.point_count("loss")
                result["chart_seconds"] = elapsed - seconds * 0.25
            phase[0] = name
            phase_t0[0] = time.monotonic()
            if fn is None:
                app.quit()
                return
            fn()
    driver = QTimer()
    driver.setInterval(50)
    driver.timeout.connect(step)
    driver.start()
    app.exec()
    probe.stop()
    driver.stop()
    out, _ = ingester.communicate(timeout=60)
    win.shutdown()
    win.close()
    gaps.sort()
    cpu_gaps.sort()
    result.update({"max_ms": gaps[-1], "p99_ms": gaps[int(len(gaps) * 0.99)], "ticks": len(gaps),
                   "steady_max_ms": max(steady), "steady_cpu_max_ms": max(steady_cpu),
                   "steady_p99_ms": sorted(steady)[int(len(steady) * 0.99)],
                   "cpu_max_ms": cpu_gaps[-1], "cpu_p99_ms": cpu_gaps[int(len(cpu_gaps) * 0.99)],
                   "load": os.getloadavg()[0],
                   "phase_max_ms": phase_max, "ingester": out.strip(),
                   "worst": sorted(worst, reverse=True)[:8]})
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--load-seconds", type=float, default=20.0)
    ap.add_argument("--frames", type=int, default=7)
    ap.add_argument("--skip", nargs="*", default=[], choices=["start", "chart", "stall"])
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    try:
        if "start" not in args.skip:
            empty = make_workspace(tmp / "ws-empty", 0)
            full = make_workspace(tmp / "ws-full", args.runs)
            a = start_time(empty, 0)
            b = start_time(full, args.runs)
            print("Window start (median of 3 launches, seconds from process start):")
            print(f"  {'workspace':<22} {'first paint':>11} {'overview':>9} {'runs table':>11}")
            for label, d in (("empty", a), (f"{args.runs:,} runs", b)):
                print(f"  {label:<22} {d['paint']:>11.2f} {d['overview']:>9.2f} {d['runs']:>11.2f}")
            print()
        if "chart" not in args.skip:
            print("Chart redraw (LivePlot's envelope path: view + setData + render a 1000x400 chart), median ms:")
            for n, view, ms, drawn in chart_redraw(args.frames):
                print(f"  {n:>9,} points  {view:<8} {ms:8.1f} ms   ({drawn:,} points drawn)")
            print()
        if "stall" not in args.skip:
            r = stall_under_load(tmp, args.load_seconds)
            print(f"Event loop under load: 5 runs x 1,000 points/s for {args.load_seconds:.0f} s "
                  f"(ingester: {r['ingester']})")
            print(f"  longest stall {r['max_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms over {r['ticks']:,} ticks of 5 ms "
                  f"(machine load average {r['load']:.1f} on {os.cpu_count()} CPUs)")
            print(f"  after the first second in each view (live updates only): longest {r['steady_max_ms']:.1f} ms, "
                  f"p99 {r['steady_p99_ms']:.1f} ms; GUI-thread CPU longest {r['steady_cpu_max_ms']:.1f} ms")
            print(f"  GUI-thread CPU time between two ticks: longest {r['cpu_max_ms']:.1f} ms, p99 "
                  f"{r['cpu_p99_ms']:.1f} ms (work done on the GUI thread, without waiting for a CPU or the GIL)")
            for name, ms in r["phase_max_ms"].items():
                print(f"    {name:<28} max {ms:6.1f} ms")
            if r["worst"]:
                print("  stalls over 20 ms: " + ", ".join(f"{g:.0f} ms ({p}, {t:.1f} s in)" for g, p, t in r["worst"]))
            if "chart_points" in r:
                print(f"  live chart: {r['chart_points']:,} points of 'loss' after {r['chart_seconds']:.1f} s "
                      "in the run's view (all of them, none sampled)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())



