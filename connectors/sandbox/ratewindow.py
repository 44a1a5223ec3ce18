"""The sandbox's rate limit as e-Kinerja counts it: the requests of each client that arrive
within a sliding one-second window.

A request that finds ``limit`` requests of its client let through in the last second is
answered 429 (with ``Retry-After``: when the oldest of them leaves the window). Every
arrival is counted, refused or not, token requests too (they take room in the window but are
never refused): ``worst_window`` is the most arrivals of one client in any one second, what
a client that keeps the limit holds at or under it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["RateWindow"]

_SPAN_S = 1.0


class _Client:
    __slots__ = ("arrivals", "passed", "worst")

    def __init__(self) -> None:
        self.arrivals: deque[float] = deque()  # every arrival in the last second
        self.passed: deque[float] = deque()  # those let through (the limit counts these)
        self.worst = 0


class RateWindow:
    """Per-client sliding one-second windows, and the counters tests and the bench read."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._counts = {"accepted": 0, "refused": 0, "tokens": 0, "arrivals": 0}
        self._first: float | None = None
        self._last: float | None = None
        self._seconds: list[int] = []  # arrivals in each second from the first arrival

    def arrive(self, client: str, limit: float, *, token: bool = False) -> float | None:
        """Count an arrival of ``client``: None to let it through, else the seconds until the
        window has room (answer 429). ``limit`` 0: no limit (still counted). ``token``: a
        token request, counted and never refused."""
        now = self._clock()
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                state = self._clients[client] = _Client()
            for kept in (state.arrivals, state.passed):
                while kept and kept[0] <= now - _SPAN_S:
                    kept.popleft()
            state.arrivals.append(now)
            self._first = now if self._first is None else self._first
            self._last = now
            second = int(now - self._first)
            self._seconds.extend([0] * (second + 1 - len(self._seconds)))
            self._seconds[second] += 1
            state.worst = max(state.worst, len(state.arrivals))
            self._counts["arrivals"] += 1
            if token:
                self._counts["tokens"] += 1
            elif limit > 0 and len(state.passed) + 1 > limit:
                self._counts["refused"] += 1
                return state.passed[0] + _SPAN_S - now
            else:
                self._counts["accepted"] += 1
            state.passed.append(now)
            return None

    def stats(self) -> dict[str, Any]:
        """``accepted`` (API requests let through), ``refused`` (answered 429 by the limit),
        ``tokens`` (token requests), ``arrivals`` (all of them), ``worst_window`` (the most
        arrivals of one client within one second), ``span_s`` (from the first arrival to the
        last), ``per_second`` (the arrivals in each second from the first: the whole seconds
        between the first and the last are what a client sustained)."""
        with self._lock:
            worst = max((c.worst for c in self._clients.values()), default=0)
            span = 0.0 if self._first is None or self._last is None else self._last - self._first
            return {
                **self._counts,
                "worst_window": worst,
                "span_s": span,
                "per_second": list(self._seconds),
            }

    def reset(self) -> None:
        """Counters and windows back to nothing (a measurement starts)."""
        with self._lock:
            self._clients.clear()
            self._counts = dict.fromkeys(self._counts, 0)
            self._first = self._last = None
            self._seconds = []


def retry_after_whole_s(seconds: float) -> float:
    """``Retry-After`` in whole seconds, as HTTP wants it (at least 1)."""
    return float(max(1, math.ceil(seconds)))
