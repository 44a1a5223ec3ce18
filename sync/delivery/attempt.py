"""One attempt: send one outbox entry with the retry policy, through the pause gate (a
maintenance pause of the whole target), the circuit breaker and the client-side rate limit;
an attempt that will be tried again is noted in the ledger at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import structlog

from connectors.ekinerja import EkinerjaClient, TargetAnswer
from connectors.errors import (
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
    Unreachable,
)
from state.models import (
    OutboxAction,
    OutboxEntry,
)
from state.store import OutboxHead, StateStore
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.results import Attempt, AttemptRecorder, _answer_text
from sync.delivery.retry import RetryPolicy

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
    def __init__(self, last: RetriableError, attempts: int) -> None:
        super().__init__(last.message)
        self.last = last
        self.attempts = attempts


class _Attempts:
    """The sending half of ``Deliverer`` (see ``sync.delivery.deliver``)."""

    store: StateStore
    target: EkinerjaClient
    retry: RetryPolicy
    rate_limiter: RateLimiter
    recorder: AttemptRecorder
    gate: PauseGate
    breaker: CircuitBreaker
    clock: Callable[[], dt.datetime]
    monotonic: Callable[[], float]
    default_pause_s: float
    worker: str
    lease: dt.timedelta
    latency_s: float | None

    def _send(
        self, entry: OutboxHead, skp_id: str | None, run_id: str | None
    ) -> tuple[TargetAnswer, int]:
        body = entry.body  # the canonical JSON the outbox keeps goes on the wire as it is
        started = self.monotonic()
        attempts = 0

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
                    self._note(entry, run_id, "paused", exc, t0)
                    if self.monotonic() - started > self.retry.max_elapsed_s:
                        raise
                    # Maintenance: wait it out without spending an attempt.
                    self.gate.pause(exc.retry_after_s or self.default_pause_s)
                    continue
                except RetriableError as exc:
                    self.breaker.success()  # it answered, or at least took the connection
                    attempts += 1
                    self._note(entry, run_id, "retry", exc, t0)
                    raise
                except SyncError:
                    self.breaker.success()  # an answer that is not a success (4xx)
                    raise
                self.breaker.success()
                took = self.monotonic() - t0
                # A running mean of how long an answer takes (sizes the senders, deliver.py);
                # updated without a lock: a lost update only makes the estimate a bit older.
                seen = self.latency_s
                self.latency_s = took if seen is None else 0.9 * seen + 0.1 * took
                return answer, int(took * 1000)

        try:
            return self.retry.call(attempt)
        except TargetPaused as exc:
            raise _GaveUp(exc, attempts) from exc
        except RetriableError as exc:
            raise _GaveUp(exc, attempts) from exc

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
        self.store.claim_entry(entry.id, self.worker, now=self.clock(), lease=self.lease)
        with self.store.unit_of_work() as session:
            current = session.get(OutboxEntry, entry.id)
            if current is not None:
                current.attempts += 1
                current.last_status, current.last_answer = exc.status, _answer_text(exc)
                session.add(current)
            self.recorder(
                session,
                [Attempt(run_id, entry, outcome, exc.status, _answer_text(exc), duration)],
            )
