"""What e-Kinerja's "later" answers (429 rate limited, 503 busy or in maintenance) cost one
``Deliverer.deliver`` call: how many there were, how long the sending waited on them, and how
many records were left pending because of them (never failed: docs/design.md, invariant 4).
The run summary adds them up and ``run`` reports them (exit code 4).
"""

from __future__ import annotations

import threading

__all__ = ["Backpressure"]


class Backpressure:
    """Counted by every delivery thread at once (hence the lock).

    ``waited_s`` is wall time: the waits of several threads that overlap count once, so it
    reads as "the run was held back this long", not as the sum over threads.
    """

    def __init__(self) -> None:
        self.rate_limited = 0  # answers 429
        self.busy = 0  # answers 503 (busy, or a maintenance window)
        self.waited_s = 0.0
        self.left_pending = 0  # records whose retries ran out on "later" answers only
        self._until = float("-inf")  # the end of the waits counted so far
        self._lock = threading.Lock()

    def answered(self, status: int | None) -> None:
        """One answer that says "later" (429 or 503)."""
        with self._lock:
            if status == 429:
                self.rate_limited += 1
            elif status == 503:
                self.busy += 1

    def waiting(self, now: float, seconds: float) -> None:
        """A wait of ``seconds`` from ``now`` (monotonic) because of such an answer."""
        end = now + max(seconds, 0.0)
        with self._lock:
            # Waits are told as they start, so each starts at or after the ones before (to
            # within the threads' scheduling): only what reaches beyond them is new.
            if end > self._until:
                self.waited_s += end - max(now, self._until)
                self._until = end

    def left(self) -> None:
        """A record left pending for the next run: its retries ran out on "later"."""
        with self._lock:
            self.left_pending += 1

    @property
    def answers(self) -> int:
        return self.rate_limited + self.busy
