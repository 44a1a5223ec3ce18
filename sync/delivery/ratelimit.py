"""A client-side rate limit (token bucket), shared by the delivery threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``rate_per_s`` acquisitions per second on average, bursts up to ``burst``.

    ``rate_per_s == 0`` disables the limit.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate_per_s
        self.capacity = float(burst if burst is not None else max(1, round(rate_per_s)))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                # 1e-9: float dust from the refill counts as a whole token; else a clock that
                # moves only by what is slept (sub-ULP waits) never gets there.
                if self._tokens >= 1 - 1e-9:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)

    # Stubs (issue 22): delivery calls these on every 429/503 answer and after every success;
    # the installation-wide limiter fills them in (multiplicative decrease / additive increase).
    def throttled(self) -> None:
        """e-Kinerja answered 429 or 503: slow down (no-op until AIMD lands)."""

    def accepted(self) -> None:
        """A request succeeded: climb back towards the configured rate (no-op until AIMD)."""
