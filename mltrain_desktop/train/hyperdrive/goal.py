"""PrimaryMetricGoal: whether a larger or a smaller primary metric is better (standard library only)."""
from __future__ import annotations

import enum


class PrimaryMetricGoal(enum.Enum):
    """The direction of a sweep's primary metric, as in Azure ML SDK v1."""

    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"

    @staticmethod
    def from_str(goal: str) -> "PrimaryMetricGoal":
        return as_goal(goal)

    def better(self, a: float, b: float) -> bool:
        """True when a is strictly better than b under this goal."""
        return a > b if self is PrimaryMetricGoal.MAXIMIZE else a < b

    def best(self, values) -> float:
        return max(values) if self is PrimaryMetricGoal.MAXIMIZE else min(values)


def as_goal(goal) -> PrimaryMetricGoal:
    """PrimaryMetricGoal, or its name in any case ('maximize', 'MINIMIZE') -> PrimaryMetricGoal."""
    if isinstance(goal, PrimaryMetricGoal):
        return goal
    if isinstance(goal, str) and goal.strip().upper() in PrimaryMetricGoal.__members__:
        return PrimaryMetricGoal[goal.strip().upper()]
    raise ValueError(f"primary_metric_goal must be PrimaryMetricGoal.MAXIMIZE or PrimaryMetricGoal.MINIMIZE "
                     f"(or the strings 'maximize' / 'minimize'); got {goal!r}")
