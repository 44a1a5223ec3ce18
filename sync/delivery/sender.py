"""One attempt: send one outbox entry with the retry policy, through the pause gate (a
maintenance pause of the whole target), the circuit breaker and the client-side rate limit;
an attempt that will be tried again is noted in the ledger at once.

e-Kinerja's "later" (429, 503) is backpressure, not failure: each one slows the
installation's rate (``RateLimiter.throttled``; each success lets it climb back,
``accepted``), is counted with the time waited on it (``Backpressure``), and a record that got
nothing but "later" (or no answer) when its retries ran out stays pending (``_keep_pending``).
"""

from __future__ import annotations

import datetime as dt
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
from state.models import OutboxAction, OutboxEntry, RecordStatus, SyncRecord
from state.store import OutboxHead, StateStore
from sync.advice import advice
from sync.delivery.backpressure import Backpressure
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.results import Attempt, AttemptLog, DeliveryResult, _answer_text
from sync.delivery.retry import LATER_STATUSES, RetryPolicy, asked_to_wait
from sync.delivery.target import Target, TargetAnswer

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


class _Outage(Exception):
    """e-Kinerja cannot be reached (the breaker is open): the request was not sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _GaveUp(Exception):
    """The retries ran out; ``answered``: how often each status came (None: no answer)."""

    def __init__(self, last: RetriableError, attempts: int, answered: Counter[int | None]) -> None:
        super().__init__(last.message)
        self.last = last
        self.attempts = attempts
        self.answered = answered

    @property
    def only_later(self) -> bool:
        """Nothing but "later" (429, 503) and no answer: never a dead letter (invariant 4)."""
        statuses = set(self.answered)
        return bool(statuses & LATER_STATUSES) and statuses <= {*LATER_STATUSES, None}


class _Attempts:
    """The sending half of ``Deliverer`` (see ``sync.delivery.deliver``)."""

    store: StateStore
    target: Target
    retry: RetryPolicy
    rate_limiter: RateLimiter
    attempt_log: AttemptLog
    gate: PauseGate
    breaker: CircuitBreaker
    clock: Callable[[], dt.datetime]
    monotonic: Callable[[], float]
    default_pause_s: float
    worker: str
    lease: dt.timedelta
    latency_s: float | None
    backpressure: Backpressure

    def _send(
        self, entry: OutboxHead, skp_id: str | None, run_id: str | None
    ) -> tuple[TargetAnswer, int]:
        body = entry.body  # the canonical JSON the outbox keeps goes on the wire as it is
        started = self.monotonic()
        attempts = 0
        answered: Counter[int | None] = Counter()

        def attempt() -> tuple[TargetAnswer, int]:
            nonlocal attempts
            while True:
                self.gate.wait()
                if not self.breaker.allow():
                    raise _Outage(self.breaker.reason or "e-Kinerja cannot be reached")
                self.rate_limiter.acquire()
                t0 = self.monotonic()
                try:
                    answer = self._request(entry, skp_id, body)
                except Unreachable as exc:
                    attempts += 1
                    self._note(entry, run_id, "retry", exc, t0)
                    if self.breaker.failure(exc.message):
                        raise _Outage(exc.message) from exc
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
                # A running mean of how long an answer takes (sizes the senders, deliver.py);
                # updated without a lock: a lost update only makes the estimate a bit older.
                seen = self.latency_s
                self.latency_s = took if seen is None else 0.9 * seen + 0.1 * took
                return answer, int(took * 1000)

        try:
            return self.retry.call(attempt, on_wait=self._waited)
        except RetriableError as exc:  # TargetPaused too
            raise _GaveUp(exc, attempts, answered) from exc

    def _later(self, exc: RetriableError) -> None:
        """e-Kinerja said "later" (429, 503): the whole installation slows down."""
        self.backpressure.answered(exc.status)
        self.rate_limiter.throttled()

    def _waited(self, seconds: float, error: BaseException | None) -> None:
        if asked_to_wait(error):
            self.backpressure.waiting(self.monotonic(), seconds)

    def _keep_pending(self, entry: OutboxHead, gave_up: _GaveUp) -> DeliveryResult:
        """The retries ran out on "later" answers only: the record stays pending, with why,
        for the next run or the daemon's retry job (never a dead letter: invariant 4)."""
        limited = 429 in gave_up.answered
        code = "rate_limited" if limited else "target_busy"
        asked = "rate limited, 429" if limited else "busy or in maintenance, 503"
        times = gave_up.answered[429] + gave_up.answered[503]
        reason = (
            f"not sent yet: e-Kinerja asked to wait {times} times ({asked}) until this run's "
            "retries ran out; sent again on the next run or the daemon's retry. "
            f"What to do: {advice(code)}"
        )
        self.backpressure.left()
        log.warning(
            "deliver.asked_to_wait",
            nip=entry.nip,
            period=entry.period,
            npsn=entry.npsn,
            kind=entry.kind.value,
            attempts=gave_up.attempts,
            status=gave_up.last.status,
        )
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            if row is not None and row.status is RecordStatus.PENDING:
                row.reason, row.reason_code = reason, code
                session.add(row)
        return DeliveryResult(
            entry.nip, entry.period, entry.kind, entry.action, RecordStatus.PENDING, reason
        )

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
        """Record an attempt that will be tried again (its own small transaction)."""
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
        assert entry.id is not None
        self.store.claims.claim_entry(entry.id, self.worker, now=self.clock(), lease=self.lease)
        with self.store.unit_of_work() as session:
            current = session.get(OutboxEntry, entry.id)
            if current is not None:
                current.attempts += 1
                current.last_status, current.last_answer = exc.status, _answer_text(exc)
                session.add(current)
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, _answer_text(exc), duration)],
            )
