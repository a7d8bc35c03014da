"""A sweep as the window shows it, read from the store (Qt-free, runs on a worker thread).

:func:`sweep_detail` gives the sweep view everything in one dict: the parent (state, sampler,
policy, limits, primary metric and goal, status counts, the best child so far) and every child
(state, hyperparameters, best primary-metric value, early-stop reason, its primary-metric
points for the chart). :func:`sweep_summaries` gives the runs view one line per sweep.
"""
from __future__ import annotations

import json

from ..store import runs as run_rows
from ..store import sweeps
from ..train.hyperdrive import results
from ..train.hyperdrive.config import SweepSettings


def _settings(conn, run_id: str) -> SweepSettings:
    row = run_rows.get(conn, run_id)
    if row is None or not sweeps.is_sweep(conn, run_id):
        raise LookupError(f"{run_id} is not a sweep in this workspace")
    return SweepSettings.from_dict(json.loads(row["spec"])["hyperdrive"]), row


def sweep_detail(ws, state, run_id: str) -> dict:
    conn = ws.db.conn
    settings, row = _settings(conn, run_id)
    goal = settings.primary_metric_goal
    children = results.child_results(conn, run_id, settings.primary_metric_name, goal)
    best = results.best(children, goal)
    kids = []
    for c in children:
        kids.append({"run_id": c.run_id, "number": c.number, "state": c.status, "hyperparameters": c.hyperparameters,
                     "metric": c.value, "reason": c.early_termination or "",
                     "series": [(i + 1, v) for i, v in enumerate(c.points) if isinstance(v, (int, float))]})
    return {"sweep": {"run_id": run_id, "status": row["status"], "error": row["error"] or "",
                      "primary_metric": settings.primary_metric_name, "goal": goal.value.upper(),
                      "sampler": settings.sampling.sampling_method_name, "policy": repr(settings.policy),
                      "max_total_runs": settings.max_total_runs,
                      "max_concurrent_runs": settings.max_concurrent_runs,
                      "counts": sweeps.status_counts(conn, run_id),
                      "best_run_id": best.run_id if best else None, "best_value": best.value if best else None},
            "children": kids}


def sweep_summary(ws, run_id: str) -> dict:
    """Status counts and the best value so far, for one line in the runs view."""
    conn = ws.db.conn
    settings, _ = _settings(conn, run_id)
    goal = settings.primary_metric_goal
    best = results.best(results.child_results(conn, run_id, settings.primary_metric_name, goal), goal)
    return {"counts": sweeps.status_counts(conn, run_id), "primary_metric": settings.primary_metric_name,
            "best_value": best.value if best else None, "best_run_id": best.run_id if best else None}


def counts_text(counts: dict) -> str:
    """{'Completed': 3, 'Running': 1} -> '3 Completed, 1 Running' (finished states first)."""
    order = ("Completed", "Canceled", "Failed", "Running", "Preparing", "Queued", "Finalizing")
    keys = sorted(counts, key=lambda k: order.index(k) if k in order else len(order))
    return ", ".join(f"{counts[k]} {k}" for k in keys if counts[k])
