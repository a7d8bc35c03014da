"""Core figures, measured side by side in one run (see issue 2 for the targets).

1. start latency: exp.submit() -> the script's first line, vs `python script.py` directly;
2. run.log() cost per call vs appending and flushing one JSON line in the same process;
3. ingestion rate of metric records into SQLite (points per second);
4. the sample's epoch time under the app vs run bare.

Usage: .venv/bin/python benchmarks/bench_core.py [--repeats 5] [--skip-epoch]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_LINE = "import time, sys; print('first', repr(time.time()), flush=True)\n"


def _first_line_time(text: str) -> float:
    m = re.search(r"first (\d+\.\d+)", text)
    return float(m.group(1)) if m else float("nan")


def bench_start(ws, src: Path, repeats: int) -> tuple[list[float], list[float]]:
    from mltrain_desktop.core import Experiment, ScriptRunConfig
    bare, app = [], []
    for _ in range(repeats):
        t0 = time.time()
        out = subprocess.run([sys.executable, str(src / "first.py")], capture_output=True, text=True)
        bare.append(_first_line_time(out.stdout) - t0)
        t0 = time.time()
        run = Experiment(ws, "bench-start").submit(ScriptRunConfig(source_directory=str(src), script="first.py"))
        run.wait_for_completion()
        app.append(_first_line_time(run.read_log()[0]) - t0)
    return bare, app


def bench_log(rounds: int = 40, per_round: int = 5_000) -> tuple[float, float]:
    """Median cost per call of run.log() and of appending + flushing one JSON line, measured in
    alternating rounds so that both see the same machine (the flush is a write system call)."""
    from mltrain_desktop.run import Run
    logs, lines = [], []
    with tempfile.TemporaryDirectory() as d:
        r = Run("bench", os.path.join(d, "m.jsonl"))
        with open(os.path.join(d, "plain.jsonl"), "a", buffering=1 << 16) as fh:
            step = 0
            for _ in range(rounds):
                t0 = time.perf_counter()
                for i in range(per_round):
                    r.log("loss", 0.5)
                logs.append((time.perf_counter() - t0) / per_round)
                t0 = time.perf_counter()
                for i in range(per_round):
                    fh.write(json.dumps({"k": "m", "n": "loss", "s": step, "v": 0.5, "t": time.time()},
                                        separators=(",", ":")) + "\n")
                    fh.flush()
                    step += 1
                lines.append((time.perf_counter() - t0) / per_round)
    return statistics.median(logs), statistics.median(lines)


def bench_ingest(n: int = 1_000_000, repeats: int = 3) -> list[float]:
    """Points per second ingesting a file of ``n`` run.log() records into a new workspace database,
    ``repeats`` times (the time includes the commits and WAL checkpoints)."""
    from mltrain_desktop.store.metrics import ingest_file
    from mltrain_desktop.store.db import connect
    rates = []
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "metrics.jsonl"
        now = time.time()
        with open(f, "w") as fh:
            for i in range(n):
                fh.write(f'{{"k":"m","n":"batch_loss","s":{i},"v":{1.0 / (i + 1)},"t":{now + i * 1e-3}}}\n')
        for k in range(repeats):
            conn = connect(Path(d) / f"w{k}.db").conn
            t0 = time.perf_counter()
            got = ingest_file(conn, "run", f)
            dt = time.perf_counter() - t0
            conn.close()
            assert got == n
            rates.append(n / dt)
    return rates


def bench_epoch(ws, epochs: int, repeats: int) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """Per-epoch training time, bare and under the app, interleaved so both see the same load;
    also (supervisor CPU seconds, run wall seconds) of each run under the app."""
    from mltrain_desktop.core import Experiment
    from mltrain_desktop.core.sample_flow import register_sample_dataset, sample_estimator
    from mltrain_desktop.core.samples import SAMPLE_DIR, sample_data_dir
    data = sample_data_dir()
    ds = register_sample_dataset(ws)
    bare, app, supervisor_cpu = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([sys.executable, str(SAMPLE_DIR / "tf_mnist.py"), "--data-folder", str(data),
                                  "--epochs", str(epochs)], capture_output=True, text=True, cwd=d,
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
        bare.append(float(re.search(r"Training took ([\d.]+)s", out.stdout).group(1)) / epochs)
        run = Experiment(ws, "bench-epoch").submit(sample_estimator(ws, ds, epochs=epochs))
        run.wait_for_completion()
        log = run.read_log(max_bytes=1 << 24)[0]
        app.append(float(re.search(r"Training took ([\d.]+)s", log).group(1)) / epochs)
        events = {e["status"]: e["at"] for e in run.get_events()}
        wall = events["Completed"] - events["Queued"]
        supervisor_cpu.append((float(re.search(r"supervisor CPU time: ([\d.]+) s", log).group(1)), wall))
    return bare, app, supervisor_cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--epoch-repeats", type=int, default=3)
    ap.add_argument("--skip-epoch", action="store_true")
    args = ap.parse_args()
    from mltrain_desktop.core import Workspace
    with tempfile.TemporaryDirectory() as d:
        ws = Workspace.create(Path(d) / "ws")
        src = Path(d) / "src"
        src.mkdir()
        (src / "first.py").write_text(FIRST_LINE)
        bare, app = bench_start(ws, src, args.repeats)
        mb, ma = statistics.median(bare), statistics.median(app)
        print(f"start: python script.py -> first line   median {mb * 1000:7.1f} ms  (runs: "
              f"{', '.join(f'{x * 1000:.0f}' for x in bare)})")
        print(f"start: exp.submit()     -> first line   median {ma * 1000:7.1f} ms  (runs: "
              f"{', '.join(f'{x * 1000:.0f}' for x in app)})")
        print(f"start: added by the app                  {(ma - mb) * 1000:7.1f} ms   (target < 150 ms)")
        per_log, per_line = bench_log()
        print(f"run.log(): {per_log * 1e6:6.2f} us/call; plain JSON line + flush: {per_line * 1e6:6.2f} us "
              f"-> ratio {per_log / per_line:.2f} (target <= 1.5)")
        rates = bench_ingest()
        print(f"ingestion into SQLite: median {statistics.median(rates):,.0f} points/s (runs: "
              f"{', '.join(f'{r:,.0f}' for r in rates)}) (target > 200,000)")
        if not args.skip_epoch:
            from mltrain_desktop.core.samples import sample_data_dir
            eb, ea, sup = bench_epoch(ws, args.epochs, args.epoch_repeats)
            mb, ma = statistics.median(eb), statistics.median(ea)
            print(f"sample epoch time ({sample_data_dir().name}, {args.epochs} epochs, {args.epoch_repeats} interleaved "
                  f"pairs): bare median {mb:.3f} s {[round(x, 2) for x in eb]}, under the app median {ma:.3f} s "
                  f"{[round(x, 2) for x in ea]} -> added {100 * (ma / mb - 1):+.1f}% (target < 2 %)")
            share = statistics.median(cpu / wall for cpu, wall in sup)
            print(f"supervisor CPU while the sample ran: {', '.join(f'{c:.2f} s of {w:.1f} s' for c, w in sup)} "
                  f"-> median {100 * share:.2f} % of one core ({100 * share / (os.cpu_count() or 1):.2f} % of "
                  f"this {os.cpu_count()}-core machine): the most the app can take from an epoch")


if __name__ == "__main__":
    main()
