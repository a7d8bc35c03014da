"""Sweep scheduling figures on the local target, with a tiny job (no TensorFlow), printed as a table.

1. Overhead per child: run created -> its first logged point, for a sweep's children vs. plain runs.
2. Wall time of a sweep of N children, C at once, vs. the ideal ceil(N / C) x one child's time
   (one child's time = a plain run's created -> ended, measured here).
3. Compute saved by BanditPolicy vs. no policy on the same seed: the children's summed run time.

    python benchmarks/bench_sweep.py [--children 6] [--concurrency 2] [--steps 20]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mltrain_desktop.core import Experiment, ScriptRunConfig, Workspace  # noqa: E402
from mltrain_desktop.core.compute import ComputeTarget, LocalCompute  # noqa: E402
from mltrain_desktop.store import metrics  # noqa: E402
from mltrain_desktop.train.hyperdrive import (BanditPolicy, HyperDriveConfig, PrimaryMetricGoal,  # noqa: E402
                                              RandomParameterSampling, uniform)

JOB = """
    import argparse, time
    from mltrain_desktop.core import Run
    p = argparse.ArgumentParser()
    p.add_argument("--x", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=20)
    a = p.parse_args()
    run = Run.get_context()
    for i in range(a.steps):
        run.log("acc", a.x * (i + 1) / a.steps)
        time.sleep(0.1)
"""


def _first_point_delay(ws, run) -> float:
    row = run._require_row()
    walls = [w for _s, _v, w in metrics.series(ws.db.conn, run.id, "acc")]
    return min(walls) - row["created"]


def _duration(run) -> float:
    row = run._require_row()
    return row["ended"] - row["created"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=6)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp) / "ws")
        ComputeTarget.create(ws, "bench", LocalCompute.provisioning_configuration(max_concurrent_runs=args.concurrency))
        src = Path(tmp) / "src"
        src.mkdir()
        (src / "job.py").write_text(textwrap.dedent(JOB))
        rc = ScriptRunConfig(source_directory=str(src), script="job.py", arguments=["--steps", args.steps],
                             compute_target="bench")
        exp = Experiment(ws, "bench")
        plain = []
        for _ in range(3):
            r = exp.submit(ScriptRunConfig(source_directory=str(src), script="job.py",
                                           arguments=["--steps", args.steps], compute_target="bench"))
            r.wait_for_completion()
            plain.append(r)
        plain_delay = statistics.median(_first_point_delay(ws, r) for r in plain)
        child_time = statistics.median(_duration(r) for r in plain)

        def sweep(policy):
            htc = HyperDriveConfig(run_config=rc, hyperparameter_sampling=RandomParameterSampling(
                {"--x": uniform(0.1, 1.0)}, properties={"seed": 3}), policy=policy, primary_metric_name="acc",
                primary_metric_goal=PrimaryMetricGoal.MAXIMIZE, max_total_runs=args.children,
                max_concurrent_runs=args.concurrency)
            t0 = time.time()
            htr = exp.submit(htc)
            htr.wait_for_completion()
            return htr, time.time() - t0

        htr, wall = sweep(None)
        children = htr.get_children()
        child_delay = statistics.median(_first_point_delay(ws, c) for c in children)
        waves = math.ceil(args.children / args.concurrency)
        ideal = waves * child_time
        in_sweep = statistics.median(_duration(c) for c in children)  # C at once share the CPUs
        parent = htr._require_row()
        parent_wall = parent["ended"] - parent["created"]
        no_policy_compute = sum(_duration(c) for c in children)
        bandit, _ = sweep(BanditPolicy(evaluation_interval=2, slack_factor=0.1, delay_evaluation=4))
        bandit_compute = sum(_duration(c) for c in bandit.get_children())
        stopped = sum(1 for c in bandit.get_children() if c.get_status() == "Canceled")
    print(f"{'figure':<48} value")
    print(f"{'plain run: created -> first point (median)':<48} {plain_delay * 1000:.0f} ms")
    print(f"{'sweep child: created -> first point (median)':<48} {child_delay * 1000:.0f} ms")
    print(f"{'overhead per child vs plain run':<48} {(child_delay - plain_delay) * 1000:+.0f} ms (target <= +200)")
    print(f"{'one child (plain run created -> ended)':<48} {child_time:.2f} s")
    print(f"{f'sweep wall, {args.children} children {args.concurrency} at once':<48} {wall:.2f} s")
    print(f"{'sweep parent created -> ended':<48} {parent_wall:.2f} s")
    print(f"{'ideal ceil(N/C) x plain child':<48} {ideal:.2f} s  (ratio {wall / ideal:.2f}, target <= 1.1)")
    print(f"{'ideal ceil(N/C) x child as run in the sweep':<48} {waves * in_sweep:.2f} s  "
          f"(ratio {parent_wall / (waves * in_sweep):.2f}: the scheduling's own share)")
    print(f"{'children run time, no policy':<48} {no_policy_compute:.2f} s")
    print(f"{'children run time, Bandit (same seed)':<48} {bandit_compute:.2f} s ({stopped} stopped, "
          f"{100 * (1 - bandit_compute / no_policy_compute):.0f}% saved)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
