"""The geometry of a sweep's plots, without Qt: one axis per hyperparameter plus the primary
metric, each child's values placed on them in [0, 1], and which children a set of brushes
(a [lo, hi] range on some axes) selects.

A child is a plain dict: ``run_id``, ``hyperparameters`` (name -> value), ``metric`` (the best
primary-metric value it logged, or None) and ``state``. Numbers go on a linear axis (a log one
when every value is positive and they span more than two decades, as a ``loguniform`` does);
anything else on an axis of its distinct values in first-seen order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

METRIC_AXIS = "__metric__"
MAX_MARKS = 6


@dataclass(frozen=True)
class Axis:
    name: str
    label: str
    numeric: bool
    lo: float = 0.0
    hi: float = 1.0
    log: bool = False
    categories: tuple = field(default_factory=tuple)
    marks: tuple = field(default_factory=tuple)  # a numeric axis with few values is labelled with them

    def position(self, value) -> float | None:
        """Where ``value`` sits on this axis, in [0, 1]; None when it has no place."""
        if value is None:
            return None
        if not self.numeric:
            if value not in self.categories:
                return None
            n = len(self.categories)
            return 0.5 if n == 1 else self.categories.index(value) / (n - 1)
        x = _number(value)
        if x is None or (self.log and x <= 0):
            return None
        lo, hi = (math.log10(self.lo), math.log10(self.hi)) if self.log else (self.lo, self.hi)
        v = math.log10(x) if self.log else x
        return 0.5 if hi == lo else min(1.0, max(0.0, (v - lo) / (hi - lo)))

    def ticks(self, count: int = 5) -> list[tuple[float, str]]:
        """(position, text) pairs to label the axis with."""
        if not self.numeric:
            return [(self.position(c), str(c)) for c in self.categories]
        if self.marks:
            return [(self.position(v), _fmt(v)) for v in self.marks]
        if self.hi == self.lo:
            return [(0.5, _fmt(self.lo))]
        out = []
        for i in range(count):
            f = i / (count - 1)
            if self.log:
                v = 10 ** (math.log10(self.lo) + f * (math.log10(self.hi) - math.log10(self.lo)))
            else:
                v = self.lo + f * (self.hi - self.lo)
            out.append((f, _fmt(v)))
        return out


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        x = float(value)
        return x if math.isfinite(x) else None
    return None


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def make_axis(name: str, values, label: str | None = None) -> Axis:
    """An axis that fits ``values`` (Nones ignored)."""
    present = [v for v in values if v is not None]
    nums = [_number(v) for v in present]
    if present and all(n is not None for n in nums):
        lo, hi = min(nums), max(nums)
        log = lo > 0 and hi / lo > 100
        distinct = sorted(set(nums))
        marks = tuple(distinct) if len(distinct) <= MAX_MARKS else ()
        return Axis(name, label or name, True, lo, hi, log, marks=marks)
    seen: list = []
    for v in present:
        key = v if isinstance(v, (str, int, float, bool)) else str(v)
        if key not in seen:
            seen.append(key)
    return Axis(name, label or name, False, categories=tuple(seen))


def sweep_axes(children: list[dict], metric_name: str = "metric") -> list[Axis]:
    """One axis per hyperparameter (in the order first seen), then the metric's."""
    names: list[str] = []
    for c in children:
        for n in c.get("hyperparameters") or {}:
            if n not in names:
                names.append(n)
    axes = [make_axis(n, [(c.get("hyperparameters") or {}).get(n) for c in children]) for n in names]
    metric = make_axis(METRIC_AXIS, [_number(c.get("metric")) for c in children], label=metric_name)
    if not metric.numeric:
        return axes + [Axis(METRIC_AXIS, metric_name, True)]
    return axes + [Axis(METRIC_AXIS, metric_name, True, metric.lo, metric.hi)]  # a metric is continuous


def value_of(child: dict, axis: Axis):
    if axis.name == METRIC_AXIS:
        return _number(child.get("metric"))
    return (child.get("hyperparameters") or {}).get(axis.name)


def positions(child: dict, axes: list[Axis]) -> list[float | None]:
    return [a.position(value_of(child, a)) for a in axes]


def brushed(children: list[dict], axes: list[Axis], brushes: dict[str, tuple[float, float]]) -> set[str]:
    """The run ids of the children inside every brush; with no brush, none (nothing selected)."""
    if not brushes:
        return set()
    by_name = {a.name: a for a in axes}
    picked = set()
    for c in children:
        inside = True
        for name, (lo, hi) in brushes.items():
            axis = by_name.get(name)
            p = axis.position(value_of(c, axis)) if axis else None
            if p is None or not (min(lo, hi) <= p <= max(lo, hi)):
                inside = False
                break
        if inside:
            picked.add(c["run_id"])
    return picked


def metric_fraction(children: list[dict], maximize: bool = True) -> dict[str, float | None]:
    """Each child's metric as 0 (worst) .. 1 (best) for colouring; None without a metric."""
    vals = {c["run_id"]: _number(c.get("metric")) for c in children}
    nums = [v for v in vals.values() if v is not None]
    if not nums:
        return {k: None for k in vals}
    lo, hi = min(nums), max(nums)
    out = {}
    for k, v in vals.items():
        if v is None:
            out[k] = None
        else:
            f = 1.0 if hi == lo else (v - lo) / (hi - lo)
            out[k] = f if maximize else 1.0 - f
    return out
