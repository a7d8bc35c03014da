"""A growable store for one metric series, with a min/max envelope for fast drawing.

Pure numpy, no Qt: the live plot keeps every point here (nothing is ever sampled away) and asks
:meth:`SeriesBuffer.view` for what to draw.

How the envelope works
----------------------
Points are kept in arrival order in two float64 arrays (x = step or wall time, y = value) that
grow by doubling, so appends are amortised O(chunk).  Next to them the buffer keeps a small
pyramid of *levels*: level ``k`` cuts the index space into fixed buckets of
``bucket_sizes[k]`` points (32, 512, 8192, 131072 by default) and stores, for every bucket, the
minimum and maximum y and the index of the point that holds each.  Appending updates only the
buckets the new points touch (level 0 from the raw points, higher levels from their children),
so the pyramid is always current and costs about 1 byte per point.

``view(x0, x1, max_points)`` finds the visible index range with a binary search (x is normally
non-decreasing: steps, wall time), and

* if the range holds at most ``max_points`` points, returns them raw;
* otherwise splits the range into at most ``max_points`` groups and returns, for each group,
  its lowest and its highest point, in x order.  Groups are built from the coarsest level whose
  buckets are still finer than a group, merged on the fly, so the work is proportional to
  ``max_points`` and not to the number of points: about a millisecond at 1M or 5M points.

Every peak survives: the minimum and maximum of any range are always among the returned points.
Non-finite values (NaN, +-inf in y or x) are kept in the data but never drawn nor counted in the
envelope.  If x ever goes backwards (a restarted run re-logging steps) the buffer still works, but
``view`` falls back to a vectorised O(n) scan (a few ms per million points).

``smoothed(alpha)`` gives the TensorBoard-style debiased exponential moving average, computed
incrementally (only new points are processed on the next call) and vectorised in blocks.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["SeriesBuffer", "ema"]

_DEFAULT_BUCKETS = (32, 512, 8192, 131072)


def _as_f64(a) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim != 1:
        arr = arr.ravel()
    return arr


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    # np.empty: the tail is never read before it is written, and untouched pages cost nothing.
    out = np.empty(size, dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


def _group_min_max(lo_src: np.ndarray, hi_src: np.ndarray, base: int, k: int):
    """Reduce consecutive groups of ``k`` entries.

    ``lo_src``/``hi_src`` have a length that is a multiple of ``k`` (padded with +inf / -inf).
    Returns (min values, arg index of min + base, max values, arg index of max + base) per group.
    """
    lo2 = lo_src.reshape(-1, k)
    hi2 = hi_src.reshape(-1, k)
    a_lo = lo2.argmin(axis=1)
    a_hi = hi2.argmax(axis=1)
    rows = np.arange(lo2.shape[0])
    offs = rows * k + base
    return lo2[rows, a_lo], a_lo + offs, hi2[rows, a_hi], a_hi + offs


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values (``np.unique`` without its first-call import of ``numpy.ma``,
    ~35 ms on the GUI thread the first time a chart is drawn)."""
    if a.shape[0] < 2:
        return np.sort(a)
    a = np.sort(a)
    keep = np.empty(a.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


class _Level:
    """Per-bucket min/max of y (and the index holding each) for one bucket size."""

    __slots__ = ("size", "ymin", "ymax", "imin", "imax")

    def __init__(self, size: int, nbuckets: int) -> None:
        self.size = size
        self.ymin = np.full(nbuckets, np.inf)
        self.ymax = np.full(nbuckets, -np.inf)
        self.imin = np.full(nbuckets, -1, dtype=np.int64)
        self.imax = np.full(nbuckets, -1, dtype=np.int64)

    def reserve(self, nbuckets: int) -> None:
        if nbuckets > self.ymin.shape[0]:
            self.ymin = _grow(self.ymin, nbuckets)
            self.ymax = _grow(self.ymax, nbuckets)
            self.imin = _grow(self.imin, nbuckets)
            self.imax = _grow(self.imax, nbuckets)

    def padded(self, j0: int, j1: int, k: int):
        """Bucket stats for buckets [j0, j1) padded to whole groups of k aligned on multiples of k.

        Returns (first padded bucket, ymin, ymax) where entries outside [j0, j1) are +inf/-inf.
        """
        g0 = (j0 // k) * k
        g1 = -(-j1 // k) * k
        lo = np.full(g1 - g0, np.inf)
        hi = np.full(g1 - g0, -np.inf)
        lo[j0 - g0 : j1 - g0] = self.ymin[j0:j1]
        hi[j0 - g0 : j1 - g0] = self.ymax[j0:j1]
        return g0, lo, hi


class SeriesBuffer:
    """All the points of one series, with an incrementally maintained min/max envelope.

    >>> b = SeriesBuffer()
    >>> b.append([0, 1, 2], [1.0, 5.0, 2.0])
    >>> len(b)
    3
    >>> x, y = b.view(None, None, max_points=1000)
    """

    def __init__(self, capacity: int = 1024, bucket_sizes: tuple[int, ...] = _DEFAULT_BUCKETS):
        if not bucket_sizes:
            raise ValueError("bucket_sizes must name at least one bucket size")
        sizes = tuple(int(s) for s in bucket_sizes)
        for a, b in zip(sizes, sizes[1:]):
            if b <= a or b % a:
                raise ValueError("each bucket size must be a multiple of the previous one")
        self._sizes = sizes
        cap = max(int(capacity), sizes[0])
        cap = -(-cap // sizes[0]) * sizes[0]
        self._n = 0
        self._x = np.full(cap, np.nan)
        self._y = np.full(cap, np.nan)
        self._levels = [_Level(s, -(-cap // s)) for s in sizes]
        self._sorted = True
        self._nfinite = 0
        self._xmin = math.inf
        self._xmax = -math.inf
        # EMA cache (see smoothed()).
        self._sm_alpha: float | None = None
        self._sm_n = 0
        self._sm_state = 0.0
        self._sm_count = 0
        self._sm = np.empty(0)
        # Derived buffer of smoothed values (see smoothed_series()).
        self._sm_buf: SeriesBuffer | None = None
        self._sm_buf_alpha: float | None = None

    # ------------------------------------------------------------------ basic accessors

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._x.shape[0]

    @property
    def x(self) -> np.ndarray:
        """All x values (a read-only view, valid until the next append)."""
        v = self._x[: self._n]
        v.flags.writeable = False
        return v

    @property
    def y(self) -> np.ndarray:
        """All y values (a read-only view, valid until the next append)."""
        v = self._y[: self._n]
        v.flags.writeable = False
        return v

    @property
    def is_sorted(self) -> bool:
        """True while x has never decreased (and holds no NaN): views are O(max_points)."""
        return self._sorted

    @property
    def finite_count(self) -> int:
        """Number of points with finite x and y (those that can be drawn)."""
        return self._nfinite

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(xmin, xmax, ymin, ymax) over finite points, or None when there is none. O(n / 131072)."""
        if self._nfinite == 0:
            return None
        top = self._levels[-1]
        nb = -(-self._n // top.size)
        return self._xmin, self._xmax, float(top.ymin[:nb].min()), float(top.ymax[:nb].max())

    # ------------------------------------------------------------------ appending

    def append(self, x, y) -> None:
        """Append points (scalars or 1-d arrays of equal length). Cost: O(len(chunk)) amortised."""
        xa = _as_f64(x)
        ya = _as_f64(y)
        if xa.shape[0] != ya.shape[0]:
            raise ValueError(f"x and y differ in length ({xa.shape[0]} != {ya.shape[0]})")
        m = xa.shape[0]
        if m == 0:
            return
        n0 = self._n
        n1 = n0 + m
        self._reserve(n1)
        self._x[n0:n1] = xa
        self._y[n0:n1] = ya
        if self._sorted:
            if np.isnan(xa).any():
                self._sorted = False
            elif m > 1 and not bool(np.all(xa[1:] >= xa[:-1])):
                self._sorted = False
            elif n0 > 0 and not xa[0] >= self._x[n0 - 1]:
                self._sorted = False
        self._n = n1
        self._update_levels(n0, n1)
        ok = np.isfinite(xa) & np.isfinite(ya)
        nok = int(np.count_nonzero(ok))
        if nok:
            xv = xa[ok]
            self._xmin = min(self._xmin, float(xv.min()))
            self._xmax = max(self._xmax, float(xv.max()))
            self._nfinite += nok

    def clear(self) -> None:
        """Forget every point (keeps the allocated capacity)."""
        self._x.fill(np.nan)
        self._y.fill(np.nan)
        for lv in self._levels:
            lv.ymin.fill(np.inf)
            lv.ymax.fill(-np.inf)
            lv.imin.fill(-1)
            lv.imax.fill(-1)
        self._n = 0
        self._sorted = True
        self._nfinite = 0
        self._xmin = math.inf
        self._xmax = -math.inf
        self._sm_alpha = None
        self._sm_buf = None
        self._sm_buf_alpha = None

    def _reserve(self, n: int) -> None:
        cap = self._x.shape[0]
        if n <= cap:
            return
        while cap < n:
            cap *= 2
        self._x = _grow(self._x, cap)
        self._y = _grow(self._y, cap)
        for lv in self._levels:
            lv.reserve(-(-cap // lv.size))

    def _valid(self, i0: int, i1: int) -> np.ndarray:
        return np.isfinite(self._x[i0:i1]) & np.isfinite(self._y[i0:i1])

    def _raw_groups(self, i0: int, i1: int, gs: int):
        """Min/max per group of ``gs`` raw points, groups aligned on multiples of gs, over [i0, i1)."""
        g0 = (i0 // gs) * gs
        g1 = -(-i1 // gs) * gs
        a, b = i0 - g0, i1 - g0
        bad = ~self._valid(i0, i1)
        lo = np.empty(g1 - g0)
        hi = np.empty(g1 - g0)
        for arr, pad in ((lo, np.inf), (hi, -np.inf)):
            arr[:a] = pad
            arr[b:] = pad
            seg = arr[a:b]
            seg[:] = self._y[i0:i1]
            seg[bad] = pad
        return g0, _group_min_max(lo, hi, g0, gs)

    def _range_extremes(self, i0: int, i1: int) -> np.ndarray:
        """Indices of the lowest and highest finite point in [i0, i1) (empty if none)."""
        yv = self._y[i0:i1]
        ok = self._valid(i0, i1)
        if not ok.any():
            return np.empty(0, dtype=np.int64)
        lo = int(np.where(ok, yv, np.inf).argmin())
        hi = int(np.where(ok, yv, -np.inf).argmax())
        return np.array([i0 + lo, i0 + hi], dtype=np.int64)

    def _update_levels(self, n0: int, n1: int) -> None:
        # Level 0: recompute the touched buckets from the raw points (the first one may already
        # hold points from an earlier append; recomputing it whole costs < one bucket).
        lv0 = self._levels[0]
        s = lv0.size
        j0 = n0 // s
        j1 = -(-n1 // s)
        if j1 - j0 == 1:  # small append, one bucket: scalar fast path
            ext = self._range_extremes(j0 * s, n1)
            if ext.shape[0]:
                lv0.imin[j0], lv0.imax[j0] = ext
                lv0.ymin[j0], lv0.ymax[j0] = self._y[ext]
            else:
                lv0.imin[j0] = lv0.imax[j0] = -1
                lv0.ymin[j0], lv0.ymax[j0] = np.inf, -np.inf
        else:
            _, (lo, ilo, hi, ihi) = self._raw_groups(j0 * s, n1, s)
            self._store(lv0, j0, j1, lo, ilo, hi, ihi)
        # Higher levels: recompute the touched buckets from their children (an empty child has
        # index -1 and +-inf values, so an empty parent gets -1 too).
        child = lv0
        for lv in self._levels[1:]:
            f = lv.size // child.size
            c0 = (n0 // lv.size) * f
            c1 = -(-n1 // child.size)
            if c1 - c0 <= f:  # one parent bucket: fast path
                j = c0 // f
                a = int(child.ymin[c0:c1].argmin()) + c0
                b = int(child.ymax[c0:c1].argmax()) + c0
                lv.ymin[j] = child.ymin[a]
                lv.imin[j] = child.imin[a]
                lv.ymax[j] = child.ymax[b]
                lv.imax[j] = child.imax[b]
            else:
                _, clo, chi = child.padded(c0, c1, f)
                lo, alo, hi, ahi = _group_min_max(clo, chi, c0, f)
                # alo/ahi are child bucket indices; map to point indices
                self._store(lv, c0 // f, -(-c1 // f), lo, child.imin[alo], hi, child.imax[ahi])
            child = lv

    @staticmethod
    def _store(lv: _Level, j0: int, j1: int, lo, ilo, hi, ihi) -> None:
        nb = j1 - j0
        lo = lo[:nb]
        hi = hi[:nb]
        lv.ymin[j0:j1] = lo
        lv.ymax[j0:j1] = hi
        lv.imin[j0:j1] = np.where(np.isfinite(lo), ilo[:nb], -1)
        lv.imax[j0:j1] = np.where(np.isfinite(hi), ihi[:nb], -1)

    # ------------------------------------------------------------------ drawing

    def view(self, x0: float | None = None, x1: float | None = None, max_points: int = 2000):
        """Points to draw for the x range [x0, x1] (None = open end).

        Returns ``(x, y)`` float64 arrays in x order, at most about ``2 * max_points + 4`` long:
        the raw points if the range holds at most ``max_points`` of them, else the min/max
        envelope.  One point just outside each end of the range is included (when it exists) so
        that the line reaches the edge of the view.  Non-finite points are left out.
        """
        max_points = max(2, int(max_points))
        n = self._n
        if n == 0:
            return np.empty(0), np.empty(0)
        if x0 is not None and x1 is not None and x0 > x1:
            x0, x1 = x1, x0
        if not self._sorted:
            return self._view_unsorted(x0, x1, max_points)
        xs = self._x[:n]
        i0 = 0 if x0 is None else int(np.searchsorted(xs, x0, side="left"))
        i1 = n if x1 is None else int(np.searchsorted(xs, x1, side="right"))
        idx = self._indices_sorted(i0, i1, max_points)
        return self._x[idx], self._y[idx]

    def _indices_sorted(self, i0: int, i1: int, max_points: int) -> np.ndarray:
        n = self._n
        e0 = max(i0 - 1, 0)
        e1 = min(i1 + 1, n)
        span = i1 - i0
        if span <= max_points:
            idx = np.arange(e0, e1)
            return idx[self._valid(e0, e1)]
        parts: list[np.ndarray] = []
        g = span / max_points  # points per group
        if g < self._sizes[0]:
            # Finer than the finest bucket: group the raw points directly (< sizes[0]*max_points).
            gs = int(math.ceil(g))
            _, (lo, ilo, hi, ihi) = self._raw_groups(i0, i1, gs)
            parts += [ilo[np.isfinite(lo)], ihi[np.isfinite(hi)]]
        else:
            # Coarsest level whose buckets are still no bigger than a group.
            lv = self._levels[0]
            for cand in self._levels:
                if cand.size <= g:
                    lv = cand
            s = lv.size
            a = -(-i0 // s) * s
            b = (i1 // s) * s
            for h0, h1 in ((i0, a), (b, i1)):  # partial buckets at both ends: one raw group each
                if h1 > h0:
                    parts.append(self._range_extremes(h0, h1))
            j0, j1 = a // s, b // s
            if j1 > j0:
                k = max(1, -(-(j1 - j0) // max_points))
                g0, lo, hi = lv.padded(j0, j1, k)
                vlo, blo, vhi, bhi = _group_min_max(lo, hi, g0, k)
                parts += [lv.imin[blo[np.isfinite(vlo)]], lv.imax[bhi[np.isfinite(vhi)]]]
        # neighbours just outside the range so the line reaches the view's edges
        for i in (i0 - 1, i1):
            if 0 <= i < n and np.isfinite(self._x[i]) and np.isfinite(self._y[i]):
                parts.append(np.array([i], dtype=np.int64))
        return _unique(np.concatenate(parts))

    def _view_unsorted(self, x0, x1, max_points):
        n = self._n
        xs = self._x[:n]
        ok = self._valid(0, n)
        if x0 is not None:
            ok &= xs >= x0
        if x1 is not None:
            ok &= xs <= x1
        idx = np.flatnonzero(ok)
        m = idx.shape[0]
        if m > max_points:
            gs = -(-m // max_points)
            pad = -m % gs
            yy = self._y[idx]
            lo = np.concatenate([yy, np.full(pad, np.inf)])
            hi = np.concatenate([yy, np.full(pad, -np.inf)])
            _, plo, _, phi = _group_min_max(lo, hi, 0, gs)
            keep = _unique(np.concatenate([plo, phi]))
            idx = idx[keep[keep < m]]
        return self._x[idx], self._y[idx]

    # ------------------------------------------------------------------ smoothing

    def smoothed(self, alpha: float) -> np.ndarray:
        """Debiased exponential moving average of y (TensorBoard's smoothing), one value per point.

        ``alpha`` is the smoothing weight in [0, 1): 0 returns y unchanged, 0.9 is heavy.
        ``s_i = alpha * s_(i-1) + (1 - alpha) * y_i`` over finite values only, divided by
        ``1 - alpha ** count`` (debiasing, so the curve starts at the first value); non-finite
        y give NaN and are skipped.  Incremental: after appends, only new points are processed.
        Returns a read-only view valid until the next append.
        """
        w = float(alpha)
        if not 0.0 <= w < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        n = self._n
        if self._sm_alpha != w:
            self._sm_alpha = w
            self._sm_n = 0
            self._sm_state = 0.0
            self._sm_count = 0
        if self._sm.shape[0] < n:
            self._sm = _grow(self._sm, self.capacity)
        if self._sm_n < n:
            a = self._sm_n
            v = self._y[a:n]
            fin = np.isfinite(v)
            all_fin = bool(fin.all())
            vf = v if all_fin else v[fin]
            out = self._sm[a:n]
            if not all_fin:
                out[:] = np.nan
            m = vf.shape[0]
            if m:
                sm = ema(vf, w, self._sm_state, debias=False)
                self._sm_state = float(sm[-1])
                # debias the first values only: beyond ~-39/ln(w) values, 1 - w**count == 1.0
                if w > 0.0:
                    kmax = int(math.ceil(-39.2 / math.log(w))) if w > 1e-300 else 1
                    c0 = self._sm_count
                    if c0 < kmax:
                        h = min(m, kmax - c0)
                        sm[:h] /= 1.0 - np.power(w, np.arange(c0 + 1, c0 + h + 1, dtype=np.float64))
                self._sm_count += m
                if all_fin:
                    out[:] = sm
                else:
                    out[fin] = sm
            self._sm_n = n
        v = self._sm[:n]
        v.flags.writeable = False
        return v

    def smoothed_series(self, alpha: float) -> SeriesBuffer:
        """A SeriesBuffer of (x, smoothed(alpha)) kept in step with this one (append-only:
        the EMA is causal, so old smoothed values never change). Use its ``view`` to draw."""
        w = float(alpha)
        sm = self.smoothed(w)
        if self._sm_buf is None or self._sm_buf_alpha != w or len(self._sm_buf) > self._n:
            self._sm_buf = SeriesBuffer(capacity=max(self._n, 1024), bucket_sizes=self._sizes)
            self._sm_buf_alpha = w
        done = len(self._sm_buf)
        if done < self._n:
            self._sm_buf.append(self._x[done : self._n], sm[done:])
        return self._sm_buf


def ema(values, alpha: float, state: float = 0.0, debias: bool = True) -> np.ndarray:
    """Exponential moving average ``s_i = alpha*s_(i-1) + (1-alpha)*v_i`` starting from ``state``.

    Vectorised: the array is cut into blocks short enough that ``alpha**-len`` stays below 1e8,
    each block is solved with a scaled cumulative sum, and the carry between blocks (which decays
    by ``alpha**len <= ~1e-8`` per block) is added with a few shifted terms.  With ``debias`` the
    result is divided by ``1 - alpha**(i+1)`` (use state=0 for that).  ``values`` must be finite.
    """
    v = _as_f64(values)
    w = float(alpha)
    if not 0.0 <= w < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
    m = v.shape[0]
    if m == 0:
        return np.empty(0)
    if w == 0.0:
        return v.copy()
    L = max(1, int(math.floor(math.log(1e-8) / math.log(w))))
    L = min(L, m)
    nb = -(-m // L)
    V = np.zeros(nb * L)
    V[:m] = v
    V = V.reshape(nb, L)
    j = np.arange(L, dtype=np.float64)
    wj = np.power(w, j)  # w^j in [~1e-8, 1]
    V /= wj
    local = np.cumsum(V, axis=1, out=V)
    local *= wj * (1.0 - w)  # now: EMA of each block from a zero state
    W = w**L
    ends = local[:, -1]
    carry = np.zeros(nb)  # state entering each block
    carry[0] = state
    if nb > 1:
        if W >= 1e-3:
            # Not reached in practice (L is chosen so that W ~ 1e-8); plain recursion, exact.
            c = state
            for b in range(1, nb):
                c = W * c + ends[b - 1]
                carry[b] = c
        else:
            # carry_b = sum_k W^(k-1) e_(b-k) + W^b state; terms below W^K <= 1e-17 are dropped.
            K = 1 if W == 0.0 else min(nb - 1, max(1, int(math.ceil(-39.2 / math.log(W)))))
            for k in range(1, K + 1):
                carry[k:] += (W ** (k - 1)) * ends[: nb - k]
            if state != 0.0:
                carry[1:] += state * np.power(W, np.arange(1, nb))
    local += carry[:, None] * (wj * w)
    s = local.ravel()[:m]
    if debias:
        kmax = min(m, int(math.ceil(-39.2 / math.log(w))))
        s[:kmax] /= 1.0 - np.power(w, np.arange(1, kmax + 1, dtype=np.float64))
    return s
