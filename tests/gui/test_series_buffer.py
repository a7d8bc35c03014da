"""SeriesBuffer: whole data, peak-preserving envelope, bounded views, EMA. No Qt needed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrain_desktop.gui.widgets.series_buffer import SeriesBuffer, ema

SMALL_BUCKETS = (4, 16, 64)  # small buckets so that short fuzzed arrays exercise every level


def _ref_ema(values, w):
    """TensorBoard-style debiased EMA, skipping non-finite values (NaN out there)."""
    out = np.full(len(values), np.nan)
    s, c = 0.0, 0
    for i, v in enumerate(values):
        if np.isfinite(v):
            s = w * s + (1 - w) * v
            c += 1
            out[i] = s / (1 - w**c)
    return out


def _in_range(x, y, x0, x1):
    m = np.isfinite(x) & np.isfinite(y)
    if x0 is not None:
        m &= x >= x0
    if x1 is not None:
        m &= x <= x1
    return x[m], y[m]


def _check_envelope(buf, x, y, x0, x1, max_points, pairs=None):
    vx, vy = buf.view(x0, x1, max_points)
    assert len(vx) == len(vy)
    assert np.all(np.isfinite(vx)) and np.all(np.isfinite(vy))
    assert len(vx) <= 2 * max_points + 10
    rx, ry = _in_range(x, y, x0, x1)
    ix, iy = _in_range(vx, vy, x0, x1)
    if len(ry) == 0:
        assert len(iy) == 0
        return
    assert iy.min() == ry.min()
    assert iy.max() == ry.max()
    # every returned point is a real data point
    if pairs is None:
        pairs = set(zip(x.tolist(), y.tolist()))
    assert all((a, b) in pairs for a, b in zip(vx.tolist(), vy.tolist()))
    if buf.is_sorted:
        assert np.all(np.diff(vx) >= 0)


values = st.floats(allow_nan=True, allow_infinity=True, width=64, min_value=None, max_value=None)
finite_values = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ys=st.lists(st.one_of(finite_values, values), min_size=0, max_size=700),
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=6),
    r=st.tuples(st.integers(-5, 705), st.integers(-5, 705)),
    open_ends=st.sampled_from(["none", "left", "right", "both"]),
    max_points=st.integers(min_value=2, max_value=60),
    steps=st.sampled_from(["unit", "repeats"]),
)
def test_envelope_preserves_min_and_max_sorted(ys, cuts, r, open_ends, max_points, steps):
    y = np.array(ys, dtype=np.float64)
    n = len(y)
    x = np.arange(n, dtype=np.float64) if steps == "unit" else np.floor(np.arange(n) / 3.0)
    buf = SeriesBuffer(capacity=8, bucket_sizes=SMALL_BUCKETS)
    bounds = sorted({0, n, *[c for c in cuts if c <= n]})
    for a, b in zip(bounds, bounds[1:]):
        buf.append(x[a:b], y[a:b])
    assert len(buf) == n and buf.is_sorted
    x0, x1 = float(min(r)), float(max(r))
    if open_ends in ("left", "both"):
        x0 = None
    if open_ends in ("right", "both"):
        x1 = None
    _check_envelope(buf, x, y, x0, x1, max_points)


@settings(max_examples=100, deadline=None)
@given(
    xs=st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=400),
    data=st.data(),
    max_points=st.integers(min_value=2, max_value=40),
)
def test_envelope_preserves_min_and_max_unsorted(xs, data, max_points):
    x = np.array(xs)
    y = np.array(data.draw(st.lists(finite_values, min_size=len(xs), max_size=len(xs))))
    buf = SeriesBuffer(capacity=8, bucket_sizes=SMALL_BUCKETS)
    buf.append(x, y)
    a, b = sorted(data.draw(st.tuples(st.floats(-120, 120), st.floats(-120, 120))))
    _check_envelope(buf, x, y, a, b, max_points)


@pytest.mark.parametrize("n", [1000, 100_003])
def test_envelope_random_ranges_default_buckets(n):
    rng = np.random.default_rng(n)
    y = np.cumsum(rng.normal(size=n))
    y[rng.integers(0, n, size=n // 100)] = np.nan
    y[rng.integers(0, n, size=5)] = np.inf
    x = np.arange(n, dtype=np.float64)
    buf = SeriesBuffer()
    buf.append(x, y)
    pairs = set(zip(x.tolist(), y.tolist()))
    for _ in range(60):
        a, b = sorted(rng.uniform(-10, n + 10, size=2))
        _check_envelope(buf, x, y, a, b, int(rng.integers(2, 3000)), pairs)


def test_chunked_appends_equal_one_shot():
    rng = np.random.default_rng(1)
    n = 50_000
    x = np.cumsum(rng.integers(0, 3, size=n)).astype(np.float64)
    y = rng.normal(size=n)
    y[::97] = np.nan
    one = SeriesBuffer()
    one.append(x, y)
    many = SeriesBuffer()
    i = 0
    while i < n:
        k = int(rng.choice([1, 2, 7, 31, 32, 33, 500, 4000]))
        many.append(x[i : i + k], y[i : i + k])
        i += k
    assert len(one) == len(many) == n
    np.testing.assert_array_equal(one.x, many.x)
    np.testing.assert_array_equal(one.y, many.y)
    for a, b in zip(one._levels, many._levels):  # the envelopes themselves are identical
        nb = -(-n // a.size)
        np.testing.assert_array_equal(a.imin[:nb], b.imin[:nb])
        np.testing.assert_array_equal(a.imax[:nb], b.imax[:nb])
    for rng_ in [(None, None), (10.0, 20_000.0), (5.0, 7.0), (30_000.0, None)]:
        for mp in (100, 2000):
            for u, v in zip(one.view(*rng_, mp), many.view(*rng_, mp)):
                np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(one.smoothed(0.9), many.smoothed(0.9))


def test_scalar_appends_and_data_kept_whole():
    buf = SeriesBuffer(capacity=2)
    for i in range(3000):
        buf.append(i, float(i % 17))
    assert len(buf) == 3000
    np.testing.assert_array_equal(buf.y, np.arange(3000) % 17)
    assert buf.capacity >= 3000


def test_small_range_returns_raw_points_with_neighbours():
    buf = SeriesBuffer()
    x = np.arange(100, dtype=float)
    buf.append(x, x * 2)
    vx, vy = buf.view(10, 20, 1000)
    np.testing.assert_array_equal(vx, np.arange(9, 22))
    np.testing.assert_array_equal(vy, vx * 2)


def test_view_size_bound_large():
    n = 1_000_000
    rng = np.random.default_rng(2)
    buf = SeriesBuffer()
    buf.append(np.arange(n, dtype=float), rng.normal(size=n))
    for mp in (10, 500, 2000):
        for rng_ in [(None, None), (0, 5e5), (1234.5, 99999.5), (1e3, 1e3 + 5 * mp)]:
            vx, _ = buf.view(*rng_, max_points=mp)
            assert len(vx) <= 2 * mp + 10


def test_view_is_fast_whatever_the_size():
    n = 2_000_000
    buf = SeriesBuffer()
    buf.append(np.arange(n, dtype=float), np.sin(np.arange(n) / 1000.0))
    times = []
    for i in range(30):
        t = time.perf_counter()
        buf.view(i * 1000.0, n - i * 1000.0, 2000)
        times.append(time.perf_counter() - t)
    # ~1 ms on an idle core; generous bound for a loaded CI machine
    assert float(np.median(times)) < 0.02


def test_non_finite_points_kept_but_not_drawn():
    buf = SeriesBuffer()
    y = np.array([1.0, np.nan, np.inf, -np.inf, 2.0, np.nan])
    buf.append(np.arange(6.0), y)
    assert len(buf) == 6 and buf.finite_count == 2
    np.testing.assert_array_equal(np.isnan(buf.y), np.isnan(y))
    vx, vy = buf.view()
    np.testing.assert_array_equal(vx, [0.0, 4.0])
    np.testing.assert_array_equal(vy, [1.0, 2.0])
    assert buf.bounds() == (0.0, 4.0, 1.0, 2.0)


def test_all_nan_and_empty():
    buf = SeriesBuffer()
    assert [len(a) for a in buf.view()] == [0, 0]
    assert buf.bounds() is None
    buf.append(np.arange(5000.0), np.full(5000, np.nan))
    assert [len(a) for a in buf.view(None, None, 10)] == [0, 0]
    assert buf.bounds() is None


def test_unsorted_x_detected_and_viewable():
    buf = SeriesBuffer()
    buf.append(np.arange(100.0), np.arange(100.0))
    assert buf.is_sorted
    buf.append(np.arange(50.0), -np.arange(50.0))  # a restarted run re-logs steps 0..49
    assert not buf.is_sorted
    vx, vy = buf.view(10, 20, 1000)
    assert sorted(vy.tolist()) == sorted(list(range(10, 21)) + [-v for v in range(10, 21)])


def test_mismatched_lengths_rejected():
    with pytest.raises(ValueError):
        SeriesBuffer().append([1, 2], [1])


def test_clear():
    buf = SeriesBuffer()
    buf.append(np.arange(10.0), np.arange(10.0))
    buf.clear()
    assert len(buf) == 0 and buf.view()[0].size == 0
    buf.append([5.0], [1.0])
    assert buf.view()[1].tolist() == [1.0]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_smoothed_matches_reference_and_is_incremental(alpha):
    rng = np.random.default_rng(3)
    y = rng.normal(size=5000) + 10
    y[[3, 100, 4000]] = np.nan
    y[7] = np.inf
    buf = SeriesBuffer()
    buf.append(np.arange(2500.0), y[:2500])
    first = buf.smoothed(alpha).copy()
    buf.append(np.arange(2500.0, 5000.0), y[2500:])
    full = buf.smoothed(alpha)
    ref = _ref_ema(y, alpha)
    np.testing.assert_allclose(full, ref, rtol=1e-9, atol=1e-9, equal_nan=True)
    np.testing.assert_array_equal(full[:2500], first)  # causal: old values unchanged


def test_smoothed_first_value_is_the_value():
    buf = SeriesBuffer()
    buf.append([0.0, 1.0], [5.0, 5.0])
    np.testing.assert_allclose(buf.smoothed(0.9), [5.0, 5.0])
    with pytest.raises(ValueError):
        buf.smoothed(1.0)


@pytest.mark.parametrize("alpha", [1e-7, 0.5, 0.95, 0.9999])
def test_ema_long_arrays(alpha):
    rng = np.random.default_rng(4)
    v = rng.normal(size=200_000) * 100
    got = ema(v, alpha, state=3.0, debias=False)
    s = 3.0
    ref = np.empty_like(v)
    for i, x in enumerate(v.tolist()):
        s = alpha * s + (1 - alpha) * x
        ref[i] = s
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_smoothed_series_follows_appends():
    buf = SeriesBuffer()
    buf.append(np.arange(100.0), np.arange(100.0))
    s = buf.smoothed_series(0.5)
    assert len(s) == 100
    buf.append(np.arange(100.0, 150.0), np.zeros(50))
    s = buf.smoothed_series(0.5)
    assert len(s) == 150
    np.testing.assert_array_equal(s.y, buf.smoothed(0.5))
    s2 = buf.smoothed_series(0.8)
    np.testing.assert_array_equal(s2.y, buf.smoothed(0.8))
