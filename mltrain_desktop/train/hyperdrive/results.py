"""A sweep's children as results: each child's hyperparameters, state and primary-metric value.

A child's value is its *best* logged primary-metric point (max for MAXIMIZE, min for MINIMIZE),
Azure's ``best_primary_metric``; points that are not numbers or NaN are left out. The same value is
told to the sampler and used to pick the best child.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ...store import sweeps
from .goal import PrimaryMetricGoal
from .policies import clean_points

EARLY_TAG = "hyperdrive.early_termination"
TRIAL_TAG = "hyperdrive.trial"
RESUMED_TAG = "hyperdrive.resumed_from"


@dataclass(frozen=True)
class ChildResult:
    run_id: str
    number: int
    status: str
    hyperparameters: dict
    trial: int | None
    points: tuple
    value: float | None
    early_termination: str | None
    resumed_from: str | None = None

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "number": self.number, "status": self.status,
                "hyperparameters": self.hyperparameters, "best_primary_metric": self.value,
                "points": len(self.points), "early_termination": self.early_termination}


def child_value(points, goal: PrimaryMetricGoal) -> float | None:
    numeric = clean_points(points)
    return goal.best(numeric) if numeric else None


def child_results(conn, parent_id: str, metric: str, goal: PrimaryMetricGoal) -> list[ChildResult]:
    """Every child of the sweep, in submission order, with its points of ``metric``."""
    points = sweeps.primary_points(conn, parent_id, metric)
    out = []
    for row in sweeps.children(conn, parent_id):
        tags = row["tags"]
        hp = tags.get("hyperparameters")
        mine = points.get(row["id"], [])
        trial = tags.get(TRIAL_TAG)
        out.append(ChildResult(row["id"], row["number"], row["status"], json.loads(hp) if isinstance(hp, str) else {},
                               int(trial) if trial is not None else None, tuple(mine), child_value(mine, goal),
                               tags.get(EARLY_TAG), tags.get(RESUMED_TAG)))
    return out


def sorted_by_value(results: list[ChildResult], goal: PrimaryMetricGoal, reverse: bool = False) -> list[ChildResult]:
    """Best first (worst first with ``reverse``); children without a value last either way."""
    with_value = [r for r in results if r.value is not None]
    with_value.sort(key=lambda r: (r.value, r.number), reverse=False)
    if goal is PrimaryMetricGoal.MAXIMIZE:
        with_value.sort(key=lambda r: r.value, reverse=True)
    if reverse:
        with_value.reverse()
    return with_value + [r for r in results if r.value is None]


def best(results: list[ChildResult], goal: PrimaryMetricGoal, include_failed: bool = True,
         include_canceled: bool = True) -> ChildResult | None:
    pool = [r for r in results if r.value is not None
            and (include_failed or r.status != "Failed") and (include_canceled or r.status != "Canceled")]
    ranked = sorted_by_value(pool, goal)
    return ranked[0] if ranked else None
