"""The retry policy (tenacity): exponential backoff with jitter, a cap, max attempts and max
elapsed time, honouring ``Retry-After``. Only ``RetriableError`` is retried (docs/design.md,
invariant 4); the classification of answers into errors lives in ``connectors._http``.

Two kinds of wait:
- a failure (5xx, a timeout, a dropped connection): full jitter, anywhere in
  [0, min(cap, initial x 2^(n-1))], which spreads the threads best;
- e-Kinerja saying "later" (429, 503, or any answer with ``Retry-After``): never earlier than
  ``Retry-After``, and a backoff that keeps growing across consecutive "later" answers
  ("equal" jitter: in [b/2, b] for b = min(cap, initial x 2^(n-1)), so the n-th wait is never
  shorter than the one before until the cap). Waiting only ``Retry-After`` (one second from a
  rate limit) gave up eight attempts within 13 s while the limit still held (issue 22).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    DoAttempt,
    DoSleep,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random_exponential,
)

from connectors.errors import RetriableError

__all__ = ["LATER_STATUSES", "RetryPolicy", "asked_to_wait"]

T = TypeVar("T")

# e-Kinerja's answers that mean "later", never "no": a rate limit, busy or in maintenance.
LATER_STATUSES = frozenset({429, 503})

# What ``RetryPolicy.call`` tells about each wait: the seconds, and the error it waits after.
WaitHook = Callable[[float, BaseException | None], None]


def asked_to_wait(error: BaseException | None) -> bool:
    """True for an answer that asks to come back later (429, 503, or a ``Retry-After``)."""
    return isinstance(error, RetriableError) and (
        error.status in LATER_STATUSES or error.retry_after_s is not None
    )


class RetryPolicy:
    """Holds the tenacity ``Retrying`` from the ``[retry]`` settings."""

    def __init__(
        self,
        *,
        max_attempts: int,
        initial_backoff_s: float,
        max_backoff_s: float,
        max_elapsed_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_attempts = max_attempts
        self.max_elapsed_s = max_elapsed_s
        self._jitter = wait_random_exponential(multiplier=initial_backoff_s, max=max_backoff_s)
        # Equal jitter: half the exponential backoff for sure, the other half at random.
        half_initial, half_cap = initial_backoff_s / 2, max_backoff_s / 2
        self._growing = wait_exponential(
            multiplier=half_initial, max=half_cap
        ) + wait_random_exponential(multiplier=half_initial, max=half_cap)
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        # One ``Retrying`` for every call: it keeps a call's state per thread, so building
        # one per request (20 µs) is not needed.
        self._retrying = Retrying(
            retry=retry_if_exception_type(RetriableError),
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_elapsed_s),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if asked_to_wait(error):
            assert isinstance(error, RetriableError)
            # The server said when: never earlier than that (even above the cap), and longer
            # as it keeps saying it. The herd of threads that got the same Retry-After is
            # spread by the rate limit they all pass before sending again.
            return max(error.retry_after_s or 0.0, float(self._growing(state)))
        return float(self._jitter(state))

    def retrying(self) -> Retrying:
        return self._retrying

    def call(self, fn: Callable[[], T], *, on_wait: WaitHook | None = None) -> T:
        """Run ``fn``, retrying it on ``RetriableError``; the last error is re-raised.

        ``on_wait`` is told each wait before it starts, with the error it follows (delivery
        counts how long e-Kinerja's "later" kept it waiting).

        The first attempt runs outside tenacity (most succeed: its bookkeeping per call cost
        more than the request); after a first failure tenacity goes on as if it had made
        that attempt itself: the same waits, attempts and elapsed-time limit."""
        started = time.monotonic()
        try:
            return fn()
        except RetriableError as exc:
            first: RetriableError | None = exc

        def attempt() -> T:
            nonlocal first
            if first is not None:
                failed, first = first, None
                raise failed
            return fn()

        retrying = self._retrying.copy()
        retrying.begin()
        state = RetryCallState(retry_object=retrying, fn=attempt, args=(), kwargs={})
        state.start_time = started
        while True:
            do = retrying.iter(retry_state=state)
            if isinstance(do, DoAttempt):
                try:
                    result = attempt()
                except BaseException:
                    state.set_exception(sys.exc_info())  # type: ignore[arg-type]
                else:
                    state.set_result(result)
            elif isinstance(do, DoSleep):
                if on_wait is not None:
                    outcome = state.outcome
                    on_wait(float(do), outcome.exception() if outcome is not None else None)
                state.prepare_for_next_attempt()
                retrying.sleep(do)
            else:
                return do  # type: ignore[no-any-return]
