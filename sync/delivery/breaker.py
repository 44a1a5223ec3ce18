"""A circuit breaker for e-Kinerja: when it cannot be reached, stop knocking.

A connection that cannot be made, or a request that times out, is an *outage* failure
(``connectors.errors.Unreachable``). ``threshold`` of them in a row, on any delivery thread,
open the breaker: no request starts while it is open, and what was to be sent stays pending
in the outbox (an outage never makes a record fail). After ``reset_s`` one request is let
through as a probe (half-open): an answer (any HTTP status) closes the breaker, another
outage opens it again for ``reset_s``.

Small and hand-written rather than ``pybreaker``: the delivery threads share one, the clock
is injected (tests never sleep), and the caller needs the reason to report, not a decorator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe; see the module docstring."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        reset_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.reason: str | None = None  # the outage that opened it last

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state

    def blocks(self) -> bool:
        """True while open and no probe is due yet: nothing should be started."""
        with self._lock:
            return self._state is BreakerState.OPEN and not self._probe_due()

    def allow(self) -> bool:
        """May a request start now? When open and ``reset_s`` has passed, the first caller
        gets True as the probe (half-open); the others get False until it ends."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN and self._probe_due():
                self._state, self._probing = BreakerState.HALF_OPEN, True
                return True
            return False

    def success(self) -> None:
        """The target answered (whatever it said): close."""
        with self._lock:
            self._state, self._failures, self._probing = BreakerState.CLOSED, 0, False
            self.reason = None

    def failure(self, reason: str) -> bool:
        """An outage failure; returns True when the breaker is (now) open."""
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
                if self._state is not BreakerState.OPEN:
                    self._opened_at = self._clock()
                self._state, self._probing = BreakerState.OPEN, False
                self.reason = reason
            return self._state is BreakerState.OPEN

    def _probe_due(self) -> bool:
        return self._clock() - self._opened_at >= self.reset_s
