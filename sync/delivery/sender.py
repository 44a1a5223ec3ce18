"""One request: send one outbox entry with the retry policy, through the pause gate (a
maintenance pause of the whole target), the circuit breaker and the client-side rate limit;
an attempt that will be tried again is written at once (``AnswerWriter.retried``).

e-Kinerja's "later" (429, 503) is backpressure, not failure: each one slows the
installation's rate (``RateLimiter.throttled``; each success lets it climb back,
``accepted``), is counted with the time waited on it (``Backpressure``), and a record that got
nothing but "later" (or no answer) when its retries ran out stays pending (``GaveUp``,
``Deliverer``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable

import structlog

from connectors.errors import (
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
    Unreachable,
)
from state.models import OutboxAction
from state.store import OutboxHead
from sync.advice import advice
from sync.delivery.answers import AnswerWriter
from sync.delivery.backpressure import Backpressure
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.retry import LATER_STATUSES, RetryPolicy, asked_to_wait
from sync.delivery.target import Target, TargetAnswer

__all__ = ["GaveUp", "Outage", "PauseGate", "Sender"]

log = structlog.get_logger("ekinerja_sync.deliver")


class PauseGate:
    """A pause of the whole target (maintenance): every delivery thread waits it out."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self.sleep = sleep
        self._until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + max(seconds, 0.0))

    def wait(self) -> float:
        """Sleep until the pause is over; returns how long it slept."""
        slept = 0.0
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0:
                return slept
            self.sleep(left)
            slept += left


class Outage(Exception):
    """e-Kinerja cannot be reached (the breaker is open): the request was not sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GaveUp(Exception):
    """The retries ran out; ``answered``: how often each status came (None: no answer)."""

    def __init__(self, last: RetriableError, attempts: int, answered: Counter[int | None]) -> None:
        super().__init__(last.message)
        self.last = last
        self.attempts = attempts
        self.answered = answered

    @property
    def only_later(self) -> bool:
        """Nothing but "later" (429, 503) and no answer: never a dead letter (docs/design.md,
        invariant 4)."""
        statuses = set(self.answered)
        return bool(statuses & LATER_STATUSES) and statuses <= {*LATER_STATUSES, None}

    def why_pending(self) -> tuple[str, str]:
        """The reason code and the reason of a record left pending on "later" answers only,
        for the next run or the daemon's retry job."""
        limited = 429 in self.answered
        code = "rate_limited" if limited else "target_busy"
        asked = "rate limited, 429" if limited else "busy or in maintenance, 503"
        times = self.answered[429] + self.answered[503]
        reason = (
            f"not sent yet: e-Kinerja asked to wait {times} times ({asked}) until this run's "
            "retries ran out; sent again on the next run or the daemon's retry. "
            f"What to do: {advice(code)}"
        )
        return code, reason


class Sender:
    """Sends one entry to the target: retried by the policy, each try through the pause
    gate, the circuit breaker and the rate limit; retried tries written by ``writer``."""

    def __init__(
        self,
        *,
        target: Target,
        retry: RetryPolicy,
        rate_limiter: RateLimiter,
        gate: PauseGate,
        breaker: CircuitBreaker,
        writer: AnswerWriter,
        monotonic: Callable[[], float] = time.monotonic,
        default_pause_s: float = 30.0,
    ) -> None:
        self.target = target
        self.retry = retry
        self.rate_limiter = rate_limiter
        self.gate = gate
        # Consecutive outages open it: no request starts, the outbox keeps what is left.
        self.breaker = breaker
        self.writer = writer
        self.monotonic = monotonic
        self.default_pause_s = default_pause_s
        self.backpressure = Backpressure()  # the running ``deliver`` call's 429s and 503s
        self.latency_s: float | None = None  # how long an answer takes, a running mean

    def begin(self) -> None:
        """A new ``deliver`` call: its 429s and 503s are counted afresh."""
        self.backpressure = Backpressure()

    def unreachable(self) -> str | None:
        """Why no request starts now (the circuit breaker is open), or None."""
        if not self.breaker.blocks():
            return None
        return self.breaker.reason or "e-Kinerja cannot be reached"

    def useful_threads(self, concurrency: int) -> int:
        """How many threads to send on: ``concurrency``, but under a rate limit no more than
        can be busy at once (Little's law: the rate times how long an answer takes, as seen
        so far, plus one), so that idle threads do not wait in line for the rate limit's
        tokens."""
        rate, latency = self.rate_limiter.rate, self.latency_s
        if rate <= 0 or latency is None:
            return concurrency
        return max(1, min(concurrency, math.ceil(rate * latency) + 1))

    def send(
        self, entry: OutboxHead, skp_id: str | None, run_id: str | None
    ) -> tuple[TargetAnswer, int]:
        """The target's 2xx answer and how long it took (ms). Raises ``Outage`` (not sent:
        the breaker is open), ``GaveUp`` (the retries ran out) or the target's refusal
        (``Conflict``, ``PreconditionFailed``, ``RecordRejected``, ``FatalError``)."""
        body = entry.body  # the canonical JSON the outbox keeps goes on the wire as it is
        started = self.monotonic()
        attempts = 0
        answered: Counter[int | None] = Counter()

        def attempt() -> tuple[TargetAnswer, int]:
            nonlocal attempts
            while True:
                self.gate.wait()
                if not self.breaker.allow():
                    raise Outage(self.breaker.reason or "e-Kinerja cannot be reached")
                self.rate_limiter.acquire()
                t0 = self.monotonic()
                try:
                    answer = self._request(entry, skp_id, body)
                except Unreachable as exc:
                    attempts += 1
                    self._note(entry, run_id, "retry", exc, t0)
                    if self.breaker.failure(exc.message):
                        raise Outage(exc.message) from exc
                    raise
                except TargetPaused as exc:
                    self.breaker.success()  # it answered
                    self._later(exc)
                    answered[exc.status] += 1
                    self._note(entry, run_id, "paused", exc, t0)
                    if self.monotonic() - started > self.retry.max_elapsed_s:
                        raise
                    # Maintenance: wait it out without spending an attempt.
                    pause = exc.retry_after_s or self.default_pause_s
                    self.gate.pause(pause)
                    self.backpressure.waiting(self.monotonic(), pause)
                    continue
                except RetriableError as exc:
                    self.breaker.success()  # it answered, or at least took the connection
                    if exc.status in LATER_STATUSES:
                        self._later(exc)
                    attempts += 1
                    answered[exc.status] += 1
                    self._note(entry, run_id, "retry", exc, t0)
                    raise
                except SyncError:
                    self.breaker.success()  # an answer that is not a success (4xx)
                    raise
                self.breaker.success()
                self.rate_limiter.accepted()  # climbs back towards the configured rate
                took = self.monotonic() - t0
                # A running mean of how long an answer takes (sizes the senders: see
                # ``useful_threads``); updated without a lock: a lost update only makes the
                # estimate a bit older.
                seen = self.latency_s
                self.latency_s = took if seen is None else 0.9 * seen + 0.1 * took
                return answer, int(took * 1000)

        try:
            return self.retry.call(attempt, on_wait=self._waited)
        except RetriableError as exc:  # TargetPaused too
            raise GaveUp(exc, attempts, answered) from exc

    def _later(self, exc: RetriableError) -> None:
        """e-Kinerja said "later" (429, 503): the whole installation slows down."""
        self.backpressure.answered(exc.status)
        self.rate_limiter.throttled()

    def _waited(self, seconds: float, error: BaseException | None) -> None:
        if asked_to_wait(error):
            self.backpressure.waiting(self.monotonic(), seconds)

    def _request(self, entry: OutboxHead, skp_id: str | None, body: str) -> TargetAnswer:
        key = entry.idempotency_key
        if entry.action is OutboxAction.CREATE_SKP:
            return self.target.create_skp(body, idempotency_key=key)
        if skp_id is None:
            raise RecordRejected(f"no id_skp known for {entry.action.value} of NIP {entry.nip}")
        if entry.action is OutboxAction.UPDATE_SKP:
            assert entry.if_match is not None
            return self.target.update_skp(skp_id, body, version=entry.if_match, idempotency_key=key)
        return self.target.create_assessment(skp_id, body, idempotency_key=key)

    def _note(
        self,
        entry: OutboxHead,
        run_id: str | None,
        outcome: str,
        exc: SyncError,
        t0: float,
    ) -> None:
        """Log and write an attempt that will be tried again."""
        duration = int((self.monotonic() - t0) * 1000)
        log.info(
            "deliver.attempt_failed",
            nip=entry.nip,
            period=entry.period,
            kind=entry.kind.value,
            outcome=outcome,
            status=exc.status,
            error=exc.message,
        )
        self.writer.retried(entry, run_id, outcome, exc, duration)
