"""Early-termination policies as pure decisions on a table of primary-metric points (standard library only).

The table maps a child id to the primary-metric values it logged, in order. A value that is not a
number (a string, None, a bool) or is NaN is dropped before anything is counted, so an *interval* is
one numeric point. A policy evaluates at interval N when N is a multiple of ``evaluation_interval``
and N >= ``delay_evaluation`` (Azure ML's rule). Each running child is judged at the latest such N it
has reached; every child's points 1..N take part, finished children included, so a young child is
compared with what older children had at the same interval.

- Bandit: stop the child if its best value up to N is worse than best/(1+slack_factor) (maximize) or
  best*(1+slack_factor) (minimize), or best -/+ slack_amount, where best is the best value any child
  reached within its first N points. slack_factor is a ratio and assumes a positive metric; use
  slack_amount for metrics that may be zero or negative.
- MedianStopping: stop the child if its best value up to N is worse than the median of the running
  averages (mean of points 1..N) of all children that have N points.
- TruncationSelection: among the children with N points (less the finished ones when
  exclude_finished_jobs), rank by best value up to N; the worst floor(count * truncation_percentage /
  100) are stopped. A child tied with one outside that group is kept.
- NoTermination: never stops anything.

Judging is repeatable: the same table gives the same decisions, so a driver may call decide() on
every poll and act on the children it has not stopped yet.
"""
from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .goal import PrimaryMetricGoal, as_goal


@dataclass(frozen=True)
class Decision:
    """Stop ``child_id``: judged at ``interval`` with ``value``; ``reason`` is what the user is shown."""

    child_id: object
    interval: int
    value: float
    reason: str
    policy: str


def clean_points(points) -> list[float]:
    """The numeric, non-NaN values of a child's primary metric, in logged order."""
    out = []
    for point in points or ():
        if isinstance(point, numbers.Real) and not isinstance(point, bool) and not math.isnan(point):
            out.append(float(point))
    return out


def _worse(value: float, reference: float, goal: PrimaryMetricGoal) -> bool:
    """value is worse than reference by more than float rounding (a mean of equal values may differ in the
    last bit)."""
    return goal.better(reference, value) and not math.isclose(value, reference, rel_tol=1e-9, abs_tol=1e-12)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _int_arg(owner: str, name: str, value, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value!r}")
    return int(value)


def _slack(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


class EarlyTerminationPolicy:
    """Base: when to evaluate (evaluation_interval, delay_evaluation) and the loop over children."""

    policy_name = ""

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0):
        owner = type(self).__name__
        self.evaluation_interval = _int_arg(owner, "evaluation_interval", evaluation_interval, 1)
        self.delay_evaluation = _int_arg(owner, "delay_evaluation", delay_evaluation, 0)

    def evaluation_point(self, n_points: int) -> int | None:
        """The latest interval at which a child with ``n_points`` points is evaluated, or None."""
        latest = (n_points // self.evaluation_interval) * self.evaluation_interval
        return latest if latest >= max(1, self.delay_evaluation) else None

    def decide(self, table: Mapping, goal=PrimaryMetricGoal.MAXIMIZE, finished: Collection = ()) -> list[Decision]:
        """The running children to stop now, each with why."""
        goal, done = as_goal(goal), set(finished)
        series = {child: clean_points(points) for child, points in table.items()}
        decisions = []
        for child, points in series.items():
            interval = None if child in done else self.evaluation_point(len(points))
            if interval is None:
                continue
            verdict = self._judge(child, interval, series, goal, done)
            if verdict is not None:
                value, why = verdict
                decisions.append(Decision(child, interval, value, f"early terminated by {type(self).__name__}: "
                                          f"{why} at interval {interval}", self.policy_name))
        return decisions

    def _judge(self, child, interval: int, series: dict, goal: PrimaryMetricGoal, done: set):
        """(value, why) when the child should stop at this interval, else None."""
        raise NotImplementedError

    def _properties(self) -> dict:
        return {"evaluation_interval": self.evaluation_interval, "delay_evaluation": self.delay_evaluation}

    def to_dict(self) -> dict:
        return {"name": self.policy_name, "properties": self._properties()}

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._properties().items())
        return f"{type(self).__name__}({args})"


class BanditPolicy(EarlyTerminationPolicy):
    """Stop children whose best value falls outside a slack of the best child's."""

    policy_name = "Bandit"

    def __init__(self, evaluation_interval: int = 1, slack_factor=None, slack_amount=None,
                 delay_evaluation: int = 0):
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise ValueError("BanditPolicy needs exactly one of slack_factor (a ratio, e.g. slack_factor=0.1) "
                             "or slack_amount (an absolute distance, e.g. slack_amount=0.05)")
        self.slack_factor = None if slack_factor is None else _slack("BanditPolicy", "slack_factor", slack_factor)
        self.slack_amount = None if slack_amount is None else _slack("BanditPolicy", "slack_amount", slack_amount)

    def _properties(self) -> dict:
        return {"evaluation_interval": self.evaluation_interval, "slack_factor": self.slack_factor,
                "slack_amount": self.slack_amount, "delay_evaluation": self.delay_evaluation}

    def _judge(self, child, interval, series, goal, done):
        mine = goal.best(series[child][:interval])
        best = goal.best(goal.best(p[:interval]) for p in series.values() if p)
        maximize = goal is PrimaryMetricGoal.MAXIMIZE
        if self.slack_factor is not None:
            factor = 1.0 + self.slack_factor
            limit, shown = (best / factor, "/") if maximize else (best * factor, "*")
            slack = _fmt(factor)
        else:
            limit, shown = (best - self.slack_amount, "-") if maximize else (best + self.slack_amount, "+")
            slack = _fmt(self.slack_amount)
        if not _worse(mine, limit, goal):
            return None
        sign = "<" if maximize else ">"
        return mine, f"{_fmt(mine)} {sign} best {_fmt(best)} {shown} {slack}"


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Stop children whose best value is worse than the median of all children's running averages."""

    policy_name = "MedianStopping"

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0):
        super().__init__(evaluation_interval, delay_evaluation)

    def _judge(self, child, interval, series, goal, done):
        mine = goal.best(series[child][:interval])
        averages = [statistics.fmean(p[:interval]) for p in series.values() if len(p) >= interval]
        median = statistics.median(averages)
        if not _worse(mine, median, goal):
            return None
        sign = "<" if goal is PrimaryMetricGoal.MAXIMIZE else ">"
        return mine, f"best {_fmt(mine)} {sign} median {_fmt(median)} of {len(averages)} running averages"


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """At each evaluation, stop the worst truncation_percentage% of children."""

    policy_name = "TruncationSelection"

    def __init__(self, truncation_percentage: int, evaluation_interval: int = 1, delay_evaluation: int = 0,
                 exclude_finished_jobs: bool = False):
        super().__init__(evaluation_interval, delay_evaluation)
        pct = _int_arg("TruncationSelectionPolicy", "truncation_percentage", truncation_percentage, 1)
        if pct > 99:
            raise ValueError(f"TruncationSelectionPolicy: truncation_percentage must be 1..99, got {pct}")
        if not isinstance(exclude_finished_jobs, bool):
            raise TypeError("TruncationSelectionPolicy: exclude_finished_jobs must be True or False, got "
                            f"{exclude_finished_jobs!r}")
        self.truncation_percentage, self.exclude_finished_jobs = pct, exclude_finished_jobs

    def _properties(self) -> dict:
        return {"truncation_percentage": self.truncation_percentage, **super()._properties(),
                "exclude_finished_jobs": self.exclude_finished_jobs}

    def _judge(self, child, interval, series, goal, done):
        pool = {c: goal.best(p[:interval]) for c, p in series.items()
                if len(p) >= interval and not (self.exclude_finished_jobs and c in done)}
        cut = len(pool) * self.truncation_percentage // 100
        mine = pool[child]
        better = sum(1 for value in pool.values() if goal.better(value, mine))
        if cut == 0 or better < len(pool) - cut:
            return None
        return mine, (f"{_fmt(mine)} is among the worst {self.truncation_percentage}% ({cut} of {len(pool)} "
                      f"runs)")


class NoTerminationPolicy(EarlyTerminationPolicy):
    """Every child runs to its end."""

    policy_name = "Default"

    def __init__(self):
        super().__init__(1, 0)

    def _properties(self) -> dict:
        return {}

    def decide(self, table: Mapping, goal=PrimaryMetricGoal.MAXIMIZE, finished: Collection = ()) -> list[Decision]:
        as_goal(goal)
        return []


_POLICIES = {c.policy_name: c for c in (BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy,
                                         NoTerminationPolicy)}


def policy_from_dict(data) -> EarlyTerminationPolicy:
    """The inverse of ``EarlyTerminationPolicy.to_dict()``; None gives NoTerminationPolicy()."""
    if data is None:
        return NoTerminationPolicy()
    name = data.get("name") if isinstance(data, Mapping) else None
    cls = _POLICIES.get(name)
    if cls is None:
        raise ValueError(f"unknown early-termination policy {name!r}; known: {', '.join(_POLICIES)}")
    return cls(**(data.get("properties") or {}))
