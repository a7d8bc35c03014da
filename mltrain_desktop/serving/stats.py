"""Thread-safe request counters for the inference server (standard library only).

``RequestStats.record`` is called once per finished API request by whichever handler thread
served it; ``snapshot`` gives the figures ``GET /v1/stats`` returns:

- ``requests`` / ``errors`` (status >= 400, split into ``client_errors`` 4xx and
  ``server_errors`` 5xx) since start, and ``rows`` (instances predicted);
- ``requests_per_s``: requests finished in the last ``rate_window_s`` seconds (10 s) divided by
  that window (or by the uptime while the server is younger than the window);
- ``latency_ms``: p50 / p99 / mean / max over the last ``latency_window`` requests (1000).

The monitoring endpoints (``/healthz``, ``/v1/stats``) are not recorded, so polling them does
not skew the figures.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from typing import Callable, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (0 <= q <= 100) of already sorted values; None if empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * (q / 100.0)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


class RequestStats:
    def __init__(self, latency_window: int = 1000, rate_window_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._started = clock()
        self.rate_window_s = float(rate_window_s)
        self._latencies: collections.deque[float] = collections.deque(maxlen=latency_window)
        self._finished_at: collections.deque[float] = collections.deque()
        self._requests = 0
        self._client_errors = 0
        self._server_errors = 0
        self._rows = 0
        self._in_flight = 0

    # -- recording ---------------------------------------------------------------------------
    def started(self) -> None:
        """A request began (for the in-flight gauge)."""
        with self._lock:
            self._in_flight += 1

    def finished(self) -> None:
        """The request that ``started`` counted is over, whether recorded or not."""
        with self._lock:
            self._in_flight -= 1

    def record(self, status: int, latency_s: float, rows: int = 0) -> None:
        now = self._clock()
        with self._lock:
            self._requests += 1
            if 400 <= status < 500:
                self._client_errors += 1
            elif status >= 500:
                self._server_errors += 1
            self._rows += int(rows)
            self._latencies.append(latency_s * 1000.0)
            self._finished_at.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        horizon = now - self.rate_window_s
        q = self._finished_at
        while q and q[0] < horizon:
            q.popleft()

    # -- reading -----------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def snapshot(self) -> dict:
        now = self._clock()
        with self._lock:
            self._trim(now)
            lat = sorted(self._latencies)
            recent = len(self._finished_at)
            uptime = now - self._started
            out = {
                "uptime_s": round(uptime, 3),
                "requests": self._requests,
                "errors": self._client_errors + self._server_errors,
                "client_errors": self._client_errors,
                "server_errors": self._server_errors,
                "rows": self._rows,
                "in_flight": self._in_flight,
            }
        window = min(self.rate_window_s, uptime) if uptime > 0 else self.rate_window_s
        out["requests_per_s"] = round(recent / window, 3) if window > 0 else 0.0
        out["rate_window_s"] = self.rate_window_s

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        out["latency_ms"] = {
            "p50": r(percentile(lat, 50)),
            "p99": r(percentile(lat, 99)),
            "mean": r(sum(lat) / len(lat)) if lat else None,
            "max": r(lat[-1]) if lat else None,
            "window": len(lat),
        }
        return out
