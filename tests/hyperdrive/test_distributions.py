"""Each parameter expression's samples, drawn through Optuna by SweepSampler, match Azure's definition."""
from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings, strategies as st

from mltrain_desktop.train.hyperdrive import (RandomParameterSampling, SweepSampler, choice, loguniform, lognormal,
                                              normal, qloguniform, qlognormal, qnormal, quniform, randint, uniform)
from mltrain_desktop.train.hyperdrive.distributions import parse_expression

FAST = settings(max_examples=25, deadline=None)
finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)
qs = st.sampled_from([0.1, 0.25, 0.5, 1, 2, 5, 16, 0.3])


def draw(expr, n: int = 12, seed: int = 0) -> list:
    sampler = SweepSampler(RandomParameterSampling({"--x": expr}), None, seed=seed)
    return [sampler.ask()[1]["--x"] for _ in range(n)]


def is_multiple(value, q) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), abs_tol=1e-6)


def close_within(value, low, high) -> bool:
    tol = 1e-9 * max(1.0, abs(low), abs(high))
    return low - tol <= value <= high + tol


@FAST
@given(values=st.lists(st.one_of(st.integers(-5, 5), st.text(min_size=1, max_size=4)), min_size=1, max_size=6,
                       unique_by=lambda v: (type(v), v)), seed=st.integers(0, 1000))
def test_choice_gives_only_its_values(values, seed):
    expr = choice(values)
    assert expr == choice(*values)
    assert all(any(type(v) is type(x) and v == x for x in values) for v in draw(expr, 8, seed))


@FAST
@given(upper=st.integers(1, 40), seed=st.integers(0, 1000))
def test_randint_is_zero_to_upper_minus_one(upper, seed):
    for value in draw(randint(upper), 10, seed):
        assert isinstance(value, int) and 0 <= value <= upper - 1


@FAST
@given(low=finite, width=st.floats(0.001, 100), seed=st.integers(0, 1000))
def test_uniform_within_bounds(low, width, seed):
    high = low + width
    assert all(low <= v <= high for v in draw(uniform(low, high), 8, seed))


@FAST
@given(low=finite, width=st.floats(0, 100), q=qs, seed=st.integers(0, 1000))
def test_quniform_multiples_of_q_within_bounds(low, width, q, seed):
    high = low + q + width  # at least one multiple of q lies in a range wider than q
    values = draw(quniform(low, high, q), 8, seed)
    for value in values:
        assert is_multiple(value, q) and close_within(value, low, high)
        assert isinstance(value, int) == isinstance(q, int)


@FAST
@given(low=st.floats(-8, 3), width=st.floats(0.01, 4), seed=st.integers(0, 1000))
def test_loguniform_bounds_are_exponents(low, width, seed):
    high = low + width
    for value in draw(loguniform(low, high), 8, seed):
        assert close_within(math.log(value), low, high)


@FAST
@given(low=st.floats(0, 4), width=st.floats(0.5, 2), q=st.sampled_from([1, 0.5, 0.1]), seed=st.integers(0, 1000))
def test_qloguniform_multiples_within_exp_bounds(low, width, q, seed):
    high = low + width
    # a multiple within float rounding of a bound counts as inside it (e**2.2e-16 is 1.0000000000000002)
    if math.floor(math.exp(high) / q + 1e-9) < math.ceil(math.exp(low) / q - 1e-9):
        with pytest.raises(ValueError, match="no multiple of q"):
            qloguniform(low, high, q)
        return
    for value in draw(qloguniform(low, high, q), 8, seed):
        assert is_multiple(value, q) and close_within(value, math.exp(low), math.exp(high))


@FAST
@given(mu=finite, sigma=st.floats(0.01, 20), q=qs, seed=st.integers(0, 1000))
def test_normal_family(mu, sigma, q, seed):
    assert all(math.isfinite(v) for v in draw(normal(mu, sigma), 6, seed))
    assert all(is_multiple(v, q) for v in draw(qnormal(mu, sigma, q), 6, seed))
    assert all(v > 0 for v in draw(lognormal(mu / 10, sigma / 10), 6, seed))
    assert all(v >= 0 and is_multiple(v, q) for v in draw(qlognormal(mu / 10, sigma / 10, q), 6, seed))


@FAST
@given(raw=st.floats(1, 10))
def test_quniform_keeps_inside_bounds_that_are_not_multiples(raw):
    # round(1.2 / 4) * 4 would be 0, below the bound 1: the nearest multiple inside [1, 10] is 4
    assert quniform(1, 10, 4).from_raw(raw) in (4, 8)


def test_sample_statistics_follow_the_definitions():
    u = draw(uniform(2, 5), 400, seed=1)
    assert abs(statistics.fmean(u) - 3.5) < 0.15
    logs = [math.log(v) for v in draw(loguniform(-6, -1), 400, seed=2)]
    assert abs(statistics.fmean(logs) - -3.5) < 0.25 and min(logs) >= -6 and max(logs) <= -1
    n = draw(normal(10, 3), 400, seed=3)
    assert abs(statistics.fmean(n) - 10) < 0.5 and abs(statistics.stdev(n) - 3) < 0.4
    ln = [math.log(v) for v in draw(lognormal(0, 0.5), 400, seed=4)]
    assert abs(statistics.fmean(ln)) < 0.1
    ints = draw(randint(4), 400, seed=5)
    assert set(ints) == {0, 1, 2, 3} and all(60 < ints.count(k) < 140 for k in range(4))


def test_quniform_rounds_a_uniform_so_edges_get_half_weight():
    values = draw(quniform(0, 10, 5), 400, seed=6)
    assert set(values) == {0, 5, 10}
    assert 60 < values.count(0) < 140 and 160 < values.count(5) < 240 and 60 < values.count(10) < 140


def test_q_results_are_tidy_decimals():
    assert quniform(0.05, 0.75, 0.1).from_raw(0.31) == 0.3
    assert set(draw(quniform(0, 1, 0.1), 40)) <= {round(k * 0.1, 1) for k in range(11)}


@FAST
@given(st.sampled_from([choice(3, "a", 2.5, True), randint(7), uniform(-1, 1), quniform(0, 10, 2),
                        loguniform(-3, 0), qloguniform(0, 3, 1), normal(0, 2), qnormal(5, 1, 0.5),
                        lognormal(0, 1), qlognormal(1, 0.5, 1)]))
def test_spec_round_trip(expr):
    assert parse_expression(expr.to_spec()) == expr
    assert parse_expression(list(expr.to_spec())) == expr


@pytest.mark.parametrize("call, error, message", [
    (lambda: loguniform(1, 2, 3), TypeError, "loguniform takes (min_value, max_value) as exponents of e, got 3 "
                                             "arguments"),
    (lambda: uniform(1), TypeError, "uniform takes (min_value, max_value), got 1 argument"),
    (lambda: quniform(1, 2), TypeError, "quniform takes (min_value, max_value, q), got 2 arguments"),
    (lambda: qnormal(1, 2), TypeError, "qnormal takes (mu, sigma, q)"),
    (lambda: normal(1, 2, 3), TypeError, "normal takes (mu, sigma), got 3 arguments"),
    (lambda: lognormal(), TypeError, "lognormal takes (mu, sigma)"),
    (lambda: qlognormal(1, 1), TypeError, "qlognormal takes (mu, sigma, q)"),
    (lambda: qloguniform(1), TypeError, "qloguniform takes (min_value, max_value, q)"),
    (lambda: randint(), TypeError, "randint takes (upper)"),
    (lambda: randint(3, 4), TypeError, "got 2 arguments"),
    (lambda: randint(2.5), TypeError, "upper must be an integer"),
    (lambda: randint(True), TypeError, "upper must be an integer"),
    (lambda: randint(0), ValueError, "upper must be at least 1"),
    (lambda: uniform(1, "2"), TypeError, "max_value must be a number"),
    (lambda: uniform(5, 1), ValueError, "min_value (5) must be less than max_value (1)"),
    (lambda: uniform(1, 1), ValueError, "must be less than"),
    (lambda: uniform(0, float("inf")), ValueError, "finite"),
    (lambda: uniform(min_value=0, maximum=1), TypeError, "unexpected keyword argument 'maximum'"),
    (lambda: uniform(0, min_value=1), TypeError, "got 'min_value' twice"),
    (lambda: quniform(0, 10, 0), ValueError, "q must be greater than 0"),
    (lambda: quniform(1, 2, 5), ValueError, "no multiple of q=5 lies within [1, 2]"),
    (lambda: qloguniform(-6, -1, 1), ValueError, "no multiple of q=1"),
    (lambda: loguniform(1, 800), ValueError, "exponents of e"),
    (lambda: lognormal(700, 10), ValueError, "overflows"),
    (lambda: normal(0, 0), ValueError, "sigma must be greater than 0"),
    (lambda: normal(0, -1), ValueError, "sigma must be greater than 0"),
    (lambda: choice(), TypeError, "choice takes the values to choose from, got none"),
    (lambda: choice([]), TypeError, "got none"),
    (lambda: choice(1, 2, 1), ValueError, "distinct"),
    (lambda: choice(1, True), ValueError, "distinct"),
    (lambda: choice([1, 2], [3]), TypeError, "is a list"),
    (lambda: choice(None), TypeError, "is a NoneType"),
    (lambda: choice(float("nan")), ValueError, "not a finite number"),
    (lambda: parse_expression(["lognorml", [0, 1]]), ValueError, "unknown distribution 'lognorml'; did you mean "
                                                                  "'lognormal'?"),
    (lambda: parse_expression(0.01), TypeError, "is not a parameter expression"),
    (lambda: parse_expression(["uniform", [0]]), TypeError, "got 1 argument"),
])
def test_bad_arguments_say_what_and_how(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_choice_accepts_a_list_range_or_values():
    assert choice([16, 32]) == choice(16, 32) == choice((16, 32))
    assert choice(range(3)).values == (0, 1, 2)
    assert choice(16, 32).to_spec() == ["choice", [[16, 32]]]
    assert repr(loguniform(-6, -1)) == "loguniform(-6, -1)"


def test_values_read_back_as_text_are_coerced_for_warm_starts():
    assert choice(16, 32).coerce("32") == 32 and choice("a", "b").coerce("a") == "a"
    assert uniform(0, 1).coerce("0.5") == 0.5 and randint(4).coerce("3") == 3
    assert not randint(4).contains(4) and not quniform(0, 10, 2).contains(3)
    assert qlognormal(1, 1, 2).contains(0) and not lognormal(0, 1).contains(0)
