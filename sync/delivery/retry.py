"""The retry policy (tenacity): exponential backoff with full jitter, a cap, max attempts and
max elapsed time, honouring ``Retry-After``. Only ``RetriableError`` is retried (invariant 4);
the classification of answers into errors lives in ``connectors._http``.
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
    wait_random_exponential,
)

from connectors.errors import RetriableError

__all__ = ["RetryPolicy"]

T = TypeVar("T")


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
        backoff = self._jitter(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RetriableError) and error.retry_after_s is not None:
            # The server said when: never earlier than that, jitter on top spreads the herd.
            return max(error.retry_after_s, 0.0) + min(backoff, 1.0)
        return float(backoff)

    def retrying(self) -> Retrying:
        return self._retrying

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying it on ``RetriableError``; the last error is re-raised.

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
                state.prepare_for_next_attempt()
                retrying.sleep(do)
            else:
                return do  # type: ignore[no-any-return]
