"""The delivery loop: which outbox entries go, in what order, claimed by whom.

What one attempt does is in ``attempt.py``, how answers become state and ledger in
``answers.py``, how a page is claimed and spread over the threads in ``pages.py``, workers'
names and dead owners in ``sync.workers``.

Order: SKPs of penilai first (a guru's SKP hangs under its kepala sekolah's), then the other
SKPs, then penilaian (each after its SKP). Within a phase, requests go in parallel on up to
``concurrency`` threads under a shared client-side rate limit (fewer when the rate limit
cannot keep more busy: ``Deliverer._senders``).

Cost: each phase reads the outbox a page at a time, claims the page in one statement and
reads what its entries need in two queries, while the threads send the page before (they
wait only at the end of a phase: ``pages.py``). Their 2xx answers are written in batches
(``_write_answers``), so delivery costs a few statements per hundred requests, not a few per
request, and memory does not grow with the semester.

Failures are handled by what the caller can do next (invariant 4):
- ``RetriableError`` (429, 5xx, timeouts, dropped connections): retried by the policy, with
  the same idempotency key. When the policy gives up, a record that got only "later"
  (429, 503) or no answer stays pending for the next run (``_keep_pending``); one that got
  another answer (500, 502, 504, 408) is dead, with a reason code naming the cause
  (``retries_exhausted_*``, see ``sync.advice``). Without any answer at all (the connection
  failed every time) it stays pending too: "later" and silence never make a record fail.
- ``Unreachable`` (no connection, timeouts): also counted by the circuit breaker
  (``sync.breaker``); once it opens, no request starts, the rest stays pending, and
  ``Deliverer.outage`` says why (the run reports e-Kinerja unreachable).
- ``TargetPaused`` (503 + Retry-After, maintenance): every thread waits it out; no attempt is
  burnt, but ``max_elapsed_s`` still bounds the wait (then the record stays pending).
- ``Conflict`` 409: ``PENILAI_BELUM_ADA_SKP`` holds the record until its penilai's SKP is
  there; ``SKP_SUDAH_ADA`` turns a create into an update; ``SKP_TERKUNCI`` and
  ``PENILAIAN_SUDAH_ADA`` lock it (reported, not retried).
- ``PreconditionFailed`` 412: one more update against the version the target holds.
- ``RecordRejected`` (422 and other 4xx): dead, with the answer.
- ``FatalError`` (auth, config): the run stops; unsent requests stay in the outbox.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from connectors.errors import (
    Conflict,
    PreconditionFailed,
    RecordRejected,
)
from mappings.model import Role
from state.models import (
    DeliveryKind,
    OutboxAction,
    OutboxEntry,
    RecordStatus,
    SyncRecord,
)
from state.store import OutboxHead, StateStore
from sync.delivery.answers import _Answers
from sync.delivery.attempt import PauseGate, _Attempts, _GaveUp, _Outage
from sync.delivery.backpressure import Backpressure
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.pages import _Pages
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.results import (
    _DEFERRED,
    _ENTRY_CLOSED,
    _PENILAI_UNANSWERED,
    _PHASES,
    _SKP_UNANSWERED,
    Attempt,
    AttemptLog,
    DeliveryResult,
    _Answer,
    _answer_text,
    _Context,
    _exhausted_code,
    _not_sent,
    _reason,
)
from sync.delivery.retry import RetryPolicy
from sync.delivery.target import Target
from sync.hashing import idempotency_key
from sync.workers import orphaned, worker_id

__all__ = [
    "Attempt",
    "AttemptLog",
    "Deliverer",
    "DeliveryResult",
    "PauseGate",
]

log = structlog.get_logger("ekinerja_sync.deliver")


class Deliverer(_Pages, _Attempts, _Answers):
    """Sends pending outbox entries and records each answer with the state change."""

    def __init__(
        self,
        *,
        store: StateStore,
        target: Target,
        retry: RetryPolicy,
        rate_limiter: RateLimiter,
        concurrency: int = 1,
        attempt_log: AttemptLog,
        gate: PauseGate | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
        default_pause_s: float = 30.0,
        worker: str | None = None,
        lease_s: float = 300.0,
        max_rounds: int = 40,
        round_wait_s: float = 0.25,
        page_size: int = 500,
        flush_every: int = 100,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.store = store
        self.target = target
        self.retry = retry
        self.rate_limiter = rate_limiter
        self.concurrency = concurrency
        self.attempt_log = attempt_log
        self.gate = gate or PauseGate(clock=monotonic)
        self.clock = clock
        self.monotonic = monotonic
        self.default_pause_s = default_pause_s
        # Who holds claims on outbox entries, and for how long a claim outlives its worker.
        self.worker = worker or worker_id()
        self.lease = dt.timedelta(seconds=lease_s)
        self.max_rounds = max_rounds
        self.round_wait_s = round_wait_s
        # Outbox entries are read, claimed and prepared a page at a time (bounded memory);
        # answers are written ``flush_every`` at a time, in one transaction.
        self.page_size = page_size
        self.flush_every = flush_every
        self.stop = threading.Event()  # set: no new request starts (clean shutdown)
        # Consecutive outages open it: no request starts, the outbox keeps what is left.
        self.breaker = breaker or CircuitBreaker()
        # Deliverables the running ``deliver`` call leaves to the next run: their request got
        # no answer at all, or only "later" (429, 503), or the SKP they hang under did.
        self._left_for_next_run: set[tuple[str, DeliveryKind]] = set()
        self._read_elsewhere = False  # see ``deliver``
        # Why the last ``deliver`` left requests unsent for want of e-Kinerja (None: it did
        # not): the breaker opened, or a request got no answer at all, however often tried.
        self.outage: str | None = None
        self.backpressure = Backpressure()  # the last ``deliver``'s 429s and 503s
        self._lock = threading.Lock()
        self._answers: list[_Answer] = []  # delivered, not yet written (see _write_answers)
        self._write_lock = threading.Lock()
        self.latency_s: float | None = None  # how long an answer takes, a running mean
        # The logger of the running ``deliver`` call, bound once: structlog's module-level
        # proxy builds a new logger at every call (about as much as the rest of the
        # bookkeeping of a request), even for a line its level drops.
        self._log: Any = log

    # -- the phases ----------------------------------------------------------------------

    def deliver(
        self,
        period: str,
        npsns: Sequence[str] = (),
        *,
        run_id: str | None = None,
        counts: Counter[tuple[str, str]] | None = None,
        only: set[tuple[str, DeliveryKind]] | None = None,
        progress: Callable[[str, int], None] | None = None,
        read_elsewhere: bool = False,
    ) -> list[DeliveryResult]:
        """Send the unsent requests of the period (optionally of some schools, or only some
        deliverables). Returns what did not end delivered (held, waiting, failed, locked);
        ``counts`` gets (kind, sent_new|sent_updated) per delivery.

        A guru's SKP whose penilai's SKP another worker is still sending is deferred, and
        picked up again in a next round once that one is through. ``read_elsewhere``: another
        worker is still reading the period, so an SKP whose penilai is a kepala sekolah with
        no record yet is deferred too (the record may be on a page not read yet; sent first,
        the SKP would only be held by e-Kinerja and sent again). A pengawas or a kepala dinas
        never has a record in PMM: an SKP they assess is not held back (waiting for them
        held back every kepala sekolah, and every guru behind them, until the walk ended).
        """
        results: list[DeliveryResult] = []
        counts = counts if counts is not None else Counter()
        self.outage = None
        self.backpressure = Backpressure()
        self._left_for_next_run = set()
        self._log = log.bind()
        self._read_elsewhere = read_elsewhere
        try:
            for _round in range(self.max_rounds):
                deferred = self._deliver_round(
                    period, npsns, run_id, counts, only, progress, results
                )
                if not deferred or self.stop.is_set():
                    break
                self.gate.sleep(self.round_wait_s)
        finally:
            self._write_answers()  # what went is recorded, however the round ended
        if self.outage is None and self.breaker.blocks():
            self.outage = self.breaker.reason or "e-Kinerja cannot be reached"
        return [r for r in results if r.reason != _DEFERRED]

    def _deliver_round(
        self,
        period: str,
        npsns: Sequence[str],
        run_id: str | None,
        counts: Counter[tuple[str, str]],
        only: set[tuple[str, DeliveryKind]] | None,
        progress: Callable[[str, int], None] | None,
        results: list[DeliveryResult],
    ) -> int:
        with self.store.unit_of_work() as session:
            # Entries written during the round (a 412's replacement, sent at once) are not
            # read back.
            horizon = self.store.outbox.last_id(session)
        deferred = 0
        abort = threading.Event()  # a fatal error: in-flight requests end, none starts

        def go_on() -> bool:
            return not (self.stop.is_set() or abort.is_set() or self.breaker.blocks())

        def one(entry: OutboxHead, context: _Context | None) -> DeliveryResult | None:
            if not go_on():
                return None  # not sent: stays pending, its claim is handed back
            if (entry.nip, entry.kind) in self._left_for_next_run:
                return None  # no answer to it (or to its penilai's SKP) this call: next run
            try:
                result = self._deliver_claimed(entry, run_id, counts, 0, context)
            except BaseException:
                abort.set()
                raise
            if progress is not None:
                progress("deliver", 1)
            return result

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="deliver") as pool:
            for kind, assessors in _PHASES:

                def pages(
                    after: int, kind: DeliveryKind = kind, assessors: bool | None = assessors
                ) -> tuple[int, list[OutboxHead]] | None:
                    with self.store.unit_of_work() as session:
                        page = self.store.outbox.pending_page(
                            session,
                            period,
                            npsns,
                            kind=kind,
                            assessors=assessors,
                            after_id=after,
                            up_to_id=horizon,
                            limit=self.page_size,
                        )
                    if not page:
                        return None
                    return page[-1].id, [e for e in page if only is None or (e.nip, e.kind) in only]

                for result in self._deliver_phase(pool, pages, one, go_on=go_on):
                    results.append(result)
                    deferred += result.reason == _DEFERRED
                # Written before the next phase: it reads what this one delivered (SKP ids,
                # penilai's SKPs), and so do other workers.
                self._write_answers()
        return deferred

    # -- one entry -----------------------------------------------------------------------
    def _deliver_one(
        self,
        entry: OutboxHead,
        run_id: str | None,
        counts: Counter[tuple[str, str]],
        depth: int = 0,
    ) -> DeliveryResult | None:
        """Claim, prepare and send one entry now (a replacement request)."""
        # Invariant 6: only the worker holding the claim sends the entry.
        if not self.store.claims.claim_entry(
            entry.id, self.worker, now=self.clock(), lease=self.lease, orphaned=orphaned
        ):
            return None
        result = None
        try:
            context = self._contexts([entry]).get(entry.id)
            result = self._deliver_claimed(entry, run_id, counts, depth, context)
            return result
        finally:
            if result is None or result.status not in _ENTRY_CLOSED:
                self.store.claims.release_entries([entry.id], self.worker)

    def _deliver_claimed(
        self,
        entry: OutboxHead,
        run_id: str | None,
        counts: Counter[tuple[str, str]],
        depth: int,
        context: _Context | None,
    ) -> DeliveryResult | None:
        if context is None:
            return None
        skp, assessor = context.skp, context.assessor
        if (
            assessor is not None
            and assessor.nip != entry.nip
            and assessor.delivered_hash is None
            and assessor.status is RecordStatus.PENDING
        ):
            # Its penilai's SKP is on its way (another worker, or a later phase): after it,
            # unless that one got no answer in this call (then the next run sends both).
            if (assessor.nip, DeliveryKind.SKP) in self._left_for_next_run:
                self._left_for_next_run.add((entry.nip, entry.kind))
                return self._result(entry, RecordStatus.PENDING, _not_sent(_PENILAI_UNANSWERED))
            return self._result(entry, RecordStatus.PENDING, _DEFERRED)
        if (
            assessor is None
            and self._read_elsewhere
            and entry.kind is DeliveryKind.SKP
            and context.record.assessor_role == Role.PRINCIPAL
            and context.record.assessor_nip != entry.nip
        ):
            # Its kepala sekolah's record may still come from the walk (``deliver``).
            return self._result(entry, RecordStatus.PENDING, _DEFERRED)
        if entry.kind is DeliveryKind.ASSESSMENT and (skp is None or skp.delivered_hash is None):
            if skp is not None and skp.status is RecordStatus.PENDING:
                # Its SKP is on its way (another worker's, perhaps answered and not yet
                # written): after it, unless it got no answer in this call.
                if (entry.nip, DeliveryKind.SKP) in self._left_for_next_run:
                    return self._result(entry, RecordStatus.PENDING, _not_sent(_SKP_UNANSWERED))
                return self._result(entry, RecordStatus.PENDING, _DEFERRED)
            reason = "waiting for its SKP to be delivered"
            with self.store.unit_of_work() as session:
                row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
                if row is not None and row.status is not RecordStatus.WAITING:
                    row.status, row.reason = RecordStatus.WAITING, reason
                    session.add(row)
            return self._result(entry, RecordStatus.WAITING, reason)
        skp_id = skp.skp_id if skp is not None else None
        # The record's fields on every line below (a dict: binding a logger per request costs
        # as much as the rest of the bookkeeping).
        where = {"run_id": run_id, "period": entry.period, "npsn": entry.npsn, "nip": entry.nip}
        try:
            answer, duration_ms = self._send(entry, skp_id, run_id)
        except _Outage as outage:
            # Not sent (or not answered) and the breaker is open: it stays pending, as the
            # entries no thread reached do; the run reports why (``outage``).
            self.outage = outage.reason
            self._log.info("deliver.not_sent", **where, kind=entry.kind.value, reason=outage.reason)
            return None
        except _GaveUp as gave_up:
            exc = gave_up.last
            if exc.status is None:  # never an answer: an outage, not a refusal
                self.outage = exc.message
                # Not sent again in this call's later rounds, nor waited for by the records
                # behind it: a target that does not answer is tried again by the next run.
                self._left_for_next_run.add((entry.nip, entry.kind))
                self._log.warning(
                    "deliver.no_answer", **where, kind=entry.kind.value, error=exc.message
                )
                return self._result(entry, RecordStatus.PENDING, _not_sent(exc.message))
            if gave_up.only_later:  # "later", never "no": the next run sends it
                self._left_for_next_run.add((entry.nip, entry.kind))
                return self._keep_pending(entry, gave_up)
            reason = f"gave up after {gave_up.attempts} attempts: {_reason(exc)}"
            self._log.warning("deliver.gave_up", **where, kind=entry.kind.value, error=exc.message)
            code = _exhausted_code(exc.status)
            return self._finish(entry, run_id, RecordStatus.FAILED, "failed", exc, reason, code)
        except Conflict as exc:
            return self._on_conflict(entry, run_id, exc, counts, depth)
        except PreconditionFailed as exc:
            version = exc.answer.get("versi")
            if depth == 0 and isinstance(version, int):
                self._finish_entry(entry, run_id, "superseded", exc)
                return self._requeue_update(entry, run_id, version, counts, depth)
            return self._finish(entry, run_id, RecordStatus.FAILED, "rejected", exc)
        except RecordRejected as exc:
            self._log.warning(
                "deliver.rejected",
                **where,
                kind=entry.kind.value,
                status=exc.status,
                reason_code=exc.code,
            )
            return self._finish(entry, run_id, RecordStatus.FAILED, "rejected", exc)
        self._delivered(entry, run_id, answer, duration_ms, counts)
        self._log.info("deliver.ok", **where, kind=entry.kind.value, action=entry.action.value)
        return self._result(entry, RecordStatus.DELIVERED, None)

    def _on_conflict(
        self,
        entry: OutboxHead,
        run_id: str | None,
        exc: Conflict,
        counts: Counter[tuple[str, str]],
        depth: int,
    ) -> DeliveryResult | None:
        code = exc.code
        if code == "PENILAI_BELUM_ADA_SKP":
            with self.store.unit_of_work() as session:
                row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
                current = session.get(OutboxEntry, entry.id)
                assert row is not None
                assert current is not None
                row.status, row.reason_code = RecordStatus.HELD, code
                row.reason = (
                    f"held: its penilai (NIP {row.assessor_nip}) has no SKP for {entry.period} "
                    "on e-Kinerja yet; sent again once it has"
                )
                current.attempts += 1
                current.last_status, current.last_answer = exc.status, _answer_text(exc)
                session.add_all([row, current])
                self.attempt_log.attempts(
                    session,
                    [Attempt(run_id, entry, "held", exc.status, _answer_text(exc), None)],
                )
                return self._result(entry, RecordStatus.HELD, row.reason)
        if code == "SKP_SUDAH_ADA" and entry.action is OutboxAction.CREATE_SKP and depth == 0:
            # The target holds an SKP for this NIP and period made from another body (e.g. a
            # send whose answer was lost before the content changed): update it instead.
            skp_id, version = exc.answer.get("id_skp"), exc.answer.get("versi")
            if isinstance(skp_id, str) and isinstance(version, int):
                with self.store.unit_of_work() as session:
                    row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
                    assert row is not None
                    row.skp_id = skp_id
                    session.add(row)
                self._finish_entry(entry, run_id, "superseded", exc)
                return self._requeue_update(entry, run_id, version, counts, depth)
        if code in {"SKP_TERKUNCI", "PENILAIAN_SUDAH_ADA"}:
            return self._finish(entry, run_id, RecordStatus.LOCKED, "locked", exc)
        return self._finish(entry, run_id, RecordStatus.FAILED, "rejected", exc)

    def _requeue_update(
        self,
        entry: OutboxHead,
        run_id: str | None,
        version: int,
        counts: Counter[tuple[str, str]],
        depth: int,
    ) -> DeliveryResult | None:
        """Replace the entry by an update against ``version`` and send that right away."""
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            assert row is not None
            row.skp_version = version
            replacement = OutboxEntry(
                nip=entry.nip,
                period=entry.period,
                kind=entry.kind,
                action=OutboxAction.UPDATE_SKP,
                body=entry.body,
                payload_hash=entry.payload_hash,
                idempotency_key=idempotency_key(
                    OutboxAction.UPDATE_SKP.value, entry.nip, entry.period, entry.body, version
                ),
                if_match=version,
                mapping_version=entry.mapping_version,
                created_at=self.clock(),
            )
            session.add_all([row, replacement])
        return self._deliver_one(OutboxHead.of(replacement, entry.npsn), run_id, counts, depth + 1)
