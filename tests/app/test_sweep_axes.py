"""The sweep plots' geometry: axis placement and brushing, checked on hand-made children and
fuzzed with hypothesis (positions always in [0, 1], order kept on numeric axes, a brush over
the whole axis selects every child with a value there)."""
from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mltrain_desktop.app.sweep_axes import METRIC_AXIS, brushed, make_axis, metric_fraction, sweep_axes


def test_choice_values_are_labelled_and_spread_evenly():
    axis = make_axis("--batch-size", [64, 32, 128, 32])
    assert axis.numeric and axis.marks == (32, 64, 128)
    assert [axis.position(v) for v in (32, 64, 128)] == [0.0, 1 / 3, 1.0]
    assert [t for _, t in axis.ticks()] == ["32", "64", "128"]


def test_a_loguniform_range_gets_a_log_axis():
    axis = make_axis("--lr", [1e-6, 1e-4, 1e-1, 3e-3, 2e-5, 5e-2, 7e-4])
    assert axis.log
    assert axis.position(1e-6) == 0.0 and axis.position(1e-1) == 1.0
    assert math.isclose(axis.position(1e-4), 0.4)


def test_text_values_get_a_category_axis_and_unknowns_no_place():
    axis = make_axis("--opt", ["adam", "sgd", "adam", None])
    assert not axis.numeric and axis.categories == ("adam", "sgd")
    assert axis.position("sgd") == 1.0 and axis.position("rmsprop") is None and axis.position(None) is None


def test_axes_are_the_hyperparameters_then_the_metric_and_nan_is_no_value():
    kids = [{"run_id": "a", "hyperparameters": {"x": 1}, "metric": 0.5},
            {"run_id": "b", "hyperparameters": {"x": 2, "y": "u"}, "metric": float("nan")},
            {"run_id": "c", "hyperparameters": {"y": "v"}, "metric": None}]
    axes = sweep_axes(kids, "acc")
    assert [a.name for a in axes] == ["x", "y", METRIC_AXIS] and axes[-1].label == "acc"
    assert brushed(kids, axes, {METRIC_AXIS: (0, 1)}) == {"a"}
    assert brushed(kids, axes, {"x": (0.9, 1.0)}) == {"b"}
    assert brushed(kids, axes, {"x": (0, 1), "y": (0, 1)}) == {"b"}
    assert brushed(kids, axes, {}) == set()


def test_metric_fraction_follows_the_goal():
    kids = [{"run_id": "a", "metric": 0.2}, {"run_id": "b", "metric": 0.8}, {"run_id": "c", "metric": "n/a"}]
    assert metric_fraction(kids, maximize=True) == {"a": 0.0, "b": 1.0, "c": None}
    assert metric_fraction(kids, maximize=False) == {"a": 1.0, "b": 0.0, "c": None}


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-10**6, 10**6),
                   st.sampled_from(["adam", "sgd", "rmsprop"]), st.none())


@given(st.lists(st.fixed_dictionaries({"p": values, "m": st.floats(allow_nan=True, width=32)}), max_size=30))
def test_positions_stay_on_the_axis_and_a_full_brush_takes_every_placed_child(rows):
    kids = [{"run_id": str(i), "hyperparameters": {"p": r["p"]}, "metric": r["m"]} for i, r in enumerate(rows)]
    axes = sweep_axes(kids)
    for axis in axes:
        for k in kids:
            pos = axis.position(k["hyperparameters"]["p"] if axis.name == "p" else k["metric"])
            assert pos is None or 0.0 <= pos <= 1.0
    if axes[0].name == "p":
        placed = {k["run_id"] for k in kids if axes[0].position(k["hyperparameters"]["p"]) is not None}
        assert brushed(kids, axes, {"p": (1.0, 0.0)}) == placed


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=2, max_size=20))
def test_numeric_axes_keep_the_order_of_values(xs):
    axis = make_axis("x", xs)
    for a in xs:
        for b in xs:
            if a < b:
                assert axis.position(a) <= axis.position(b)
