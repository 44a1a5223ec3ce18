"""The delivery loop: which outbox entries go, in what order, and what each answer leads to.

``Deliverer`` decides; its collaborators, passed in by ``sync.bootstrap``, do the rest:
``OutboxPages`` (``pages.py``) reads, claims and queues the outbox a page at a time,
``Sender`` (``sender.py``) sends one entry with its retries, ``AnswerWriter``
(``answers.py``) writes what came of it to the state and the ledger, ``OutboxClaims``
(``claims.py``) holds this worker's claims (``sync.workers``: workers' names, dead owners).

Order: SKPs of penilai first (a guru's SKP hangs under its kepala sekolah's), then the other
SKPs, then penilaian (each after its SKP). Within a phase, requests go in parallel on up to
``concurrency`` threads under a shared client-side rate limit (fewer when the rate limit
cannot keep more busy: ``Sender.useful_threads``).

Cost: each phase reads the outbox a page at a time, claims the page in one statement and
reads what its entries need in two queries, while the threads send the page before (they
wait only at the end of a phase: ``pages.py``). Their 2xx answers are written in batches
(``AnswerWriter.flush``), so delivery costs a few statements per hundred requests, not a few
per request, and memory does not grow with the semester.

Failures are handled by what the caller can do next (docs/design.md, invariant 4):
- ``RetriableError`` (429, 5xx, timeouts, dropped connections): retried by the policy, with
  the same idempotency key. When the policy gives up, a record that got only "later"
  (429, 503) or no answer stays pending for the next run (``_keep_pending``); one that got
  another answer (500, 502, 504, 408) is dead, with a reason code naming the cause
  (``retries_exhausted_*``, see ``sync.advice``). Without any answer at all (the connection
  failed every time) it stays pending too: "later" and silence never make a record fail.
- ``Unreachable`` (no connection, timeouts): also counted by the circuit breaker
  (``sync.delivery.breaker``); once it opens, no request starts, the rest stays pending, and
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

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from connectors.errors import Conflict, PreconditionFailed, RecordRejected
from mappings.model import Role
from state.models import DeliveryKind, OutboxAction, RecordStatus
from state.store import DeliverableHead, OutboxHead
from sync.delivery.answers import AnswerWriter
from sync.delivery.backpressure import Backpressure
from sync.delivery.claims import OutboxClaims
from sync.delivery.pages import OutboxPages, Phase
from sync.delivery.results import (
    ENTRY_CLOSED,
    DeliveryContext,
    DeliveryResult,
    exhausted_code,
    target_reason,
)
from sync.delivery.sender import GaveUp, Outage, PauseGate, Sender

__all__ = ["Deliverer", "DeliveryResult"]

log = structlog.get_logger("ekinerja_sync.deliver")

# (kind, penilai or not) of the phases, in order: penilai SKPs, the other SKPs, penilaian.
_PHASES: tuple[tuple[DeliveryKind, bool | None], ...] = (
    (DeliveryKind.SKP, True),
    (DeliveryKind.SKP, False),
    (DeliveryKind.ASSESSMENT, None),
)
_DEFERRED = "deferred: its penilai's SKP is being sent"
_PENILAI_UNANSWERED = "its penilai's SKP got no answer"
_SKP_UNANSWERED = "its SKP got no answer"
# An SKP's state while a change of it is still to be sent (held: e-Kinerja said later).
_CHANGE_QUEUED = frozenset({RecordStatus.PENDING, RecordStatus.HELD})


def _skp_there(skp: DeliverableHead | None) -> bool:
    """Whether e-Kinerja holds the SKP a penilaian goes under as it now stands.

    Not while a change of it waits to be sent: the change may name another penilai (a
    transfer to another school does), and e-Kinerja refuses for good (422) a penilaian whose
    penilai is not the one of its SKP. Another worker may have sent the SKP's first version
    and be sending the change while this one reaches the penilaian: a valid record must not
    end dead for how workers interleave (docs/design.md, invariant 1).
    """
    if skp is None or skp.delivered_hash is None:
        return False
    return not (skp.status in _CHANGE_QUEUED and skp.payload_hash != skp.delivered_hash)


def _not_sent(why: str) -> str:
    return f"not sent: e-Kinerja cannot be reached ({why}); sent again on the next run"


class Deliverer:
    """Sends pending outbox entries and records each answer with the state change."""

    def __init__(
        self,
        *,
        pages: OutboxPages,
        sender: Sender,
        writer: AnswerWriter,
        claims: OutboxClaims,
        gate: PauseGate,
        concurrency: int = 1,
        max_rounds: int = 40,
        round_wait_s: float = 0.25,
    ) -> None:
        self.pages = pages
        self.sender = sender
        self.writer = writer
        self.claims = claims
        self.gate = gate  # the sender's: a round waits on it too, as the engine does
        self.concurrency = concurrency
        self.max_rounds = max_rounds
        self.round_wait_s = round_wait_s
        self.stop = threading.Event()  # set: no new request starts (clean shutdown)
        # Deliverables the running ``deliver`` call leaves to the next run: their request got
        # no answer at all, or only "later" (429, 503), or the SKP they hang under did.
        self._left_for_next_run: set[tuple[str, DeliveryKind]] = set()
        self._read_elsewhere = False  # see ``deliver``
        # Why the last ``deliver`` left requests unsent for want of e-Kinerja (None: it did
        # not): the breaker opened, or a request got no answer at all, however often tried.
        self.outage: str | None = None
        # The logger of the running ``deliver`` call, bound once: structlog's module-level
        # proxy builds a new logger at every call (about as much as the rest of the
        # bookkeeping of a request), even for a line its level drops.
        self._log: Any = log

    @property
    def worker(self) -> str:
        """This process's name in the claims it holds (``sync.workers.worker_id``)."""
        return self.claims.worker

    @property
    def backpressure(self) -> Backpressure:
        """The last ``deliver``'s 429s and 503s, and the time waited on them."""
        return self.sender.backpressure

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
        read_elsewhere: bool | Callable[[], bool] = False,
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
        A function is asked before each round (the walk may end during the call).
        """
        results: list[DeliveryResult] = []
        counts = counts if counts is not None else Counter()
        self.outage = None
        self.sender.begin()
        self._left_for_next_run = set()
        self._log = log.bind()
        try:
            for _round in range(self.max_rounds):
                self._read_elsewhere = (
                    read_elsewhere() if callable(read_elsewhere) else read_elsewhere
                )
                deferred = self._deliver_round(
                    period, npsns, run_id, counts, only, progress, results
                )
                if not deferred or self.stop.is_set():
                    break
                self.gate.sleep(self.round_wait_s)
        finally:
            self.writer.flush()  # what went is recorded, however the round ended
        if self.outage is None:
            self.outage = self.sender.unreachable()
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
        # Entries written during the round (a 412's replacement, sent at once) are not read
        # back.
        horizon = self.pages.horizon()
        deferred = 0
        abort = threading.Event()  # a fatal error: in-flight requests end, none starts

        def go_on() -> bool:
            return not (
                self.stop.is_set() or abort.is_set() or self.sender.unreachable() is not None
            )

        def one(entry: OutboxHead, context: DeliveryContext | None) -> DeliveryResult | None:
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
                phase = Phase(period, npsns, kind, assessors, horizon, only)
                senders = self.sender.useful_threads(self.concurrency)
                for result in self.pages.send_phase(pool, phase, one, senders=senders, go_on=go_on):
                    results.append(result)
                    deferred += result.reason == _DEFERRED
                # Written before the next phase: it reads what this one delivered (SKP ids,
                # penilai's SKPs), and so do other workers.
                self.writer.flush()
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
        if not self.claims.claim(entry.id):
            return None
        result = None
        try:
            context = self.pages.contexts([entry]).get(entry.id)
            result = self._deliver_claimed(entry, run_id, counts, depth, context)
            return result
        finally:
            if result is None or result.status not in ENTRY_CLOSED:
                self.claims.release([entry.id])

    def _deliver_claimed(
        self,
        entry: OutboxHead,
        run_id: str | None,
        counts: Counter[tuple[str, str]],
        depth: int,
        context: DeliveryContext | None,
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
                return DeliveryResult.of(
                    entry, RecordStatus.PENDING, _not_sent(_PENILAI_UNANSWERED)
                )
            return DeliveryResult.of(entry, RecordStatus.PENDING, _DEFERRED)
        if (
            assessor is None
            and self._read_elsewhere
            and entry.kind is DeliveryKind.SKP
            and context.record.assessor_role == Role.PRINCIPAL
            and context.record.assessor_nip != entry.nip
        ):
            # Its kepala sekolah's record may still come from the walk (``deliver``).
            return DeliveryResult.of(entry, RecordStatus.PENDING, _DEFERRED)
        if entry.kind is DeliveryKind.ASSESSMENT and not _skp_there(skp):
            if skp is not None and skp.status is RecordStatus.PENDING:
                # Its SKP (or the SKP's change) is on its way (another worker's, perhaps
                # answered and not yet written): after it, unless it got no answer in this
                # call.
                if (entry.nip, DeliveryKind.SKP) in self._left_for_next_run:
                    return DeliveryResult.of(
                        entry, RecordStatus.PENDING, _not_sent(_SKP_UNANSWERED)
                    )
                return DeliveryResult.of(entry, RecordStatus.PENDING, _DEFERRED)
            reason = "waiting for its SKP to be delivered"
            return self.writer.waiting(entry, reason)
        skp_id = skp.skp_id if skp is not None else None
        # The record's fields on every line below (a dict: binding a logger per request costs
        # as much as the rest of the bookkeeping).
        where = {"run_id": run_id, "period": entry.period, "npsn": entry.npsn, "nip": entry.nip}
        try:
            answer, duration_ms = self.sender.send(entry, skp_id, run_id)
        except Outage as outage:
            # Not sent (or not answered) and the breaker is open: it stays pending, as the
            # entries no thread reached do; the run reports why (``outage``).
            self.outage = outage.reason
            self._log.info("deliver.not_sent", **where, kind=entry.kind.value, reason=outage.reason)
            return None
        except GaveUp as gave_up:
            exc = gave_up.last
            if exc.status is None:  # never an answer: an outage, not a refusal
                self.outage = exc.message
                # Not sent again in this call's later rounds, nor waited for by the records
                # behind it: a target that does not answer is tried again by the next run.
                self._left_for_next_run.add((entry.nip, entry.kind))
                self._log.warning(
                    "deliver.no_answer", **where, kind=entry.kind.value, error=exc.message
                )
                return DeliveryResult.of(entry, RecordStatus.PENDING, _not_sent(exc.message))
            if gave_up.only_later:  # "later", never "no": the next run sends it
                self._left_for_next_run.add((entry.nip, entry.kind))
                return self._keep_pending(entry, gave_up)
            reason = f"gave up after {gave_up.attempts} attempts: {target_reason(exc)}"
            self._log.warning("deliver.gave_up", **where, kind=entry.kind.value, error=exc.message)
            code = exhausted_code(exc.status)
            return self.writer.failed(
                entry, run_id, RecordStatus.FAILED, "failed", exc, reason, code
            )
        except Conflict as exc:
            return self._on_conflict(entry, run_id, exc, counts, depth)
        except PreconditionFailed as exc:
            version = exc.answer.get("versi")
            if depth == 0 and isinstance(version, int):
                self.writer.superseded(entry, run_id, "superseded", exc)
                return self._deliver_one(
                    self.writer.update_instead(entry, version), run_id, counts, depth + 1
                )
            return self.writer.failed(entry, run_id, RecordStatus.FAILED, "rejected", exc)
        except RecordRejected as exc:
            self._log.warning(
                "deliver.rejected",
                **where,
                kind=entry.kind.value,
                status=exc.status,
                reason_code=exc.code,
            )
            return self.writer.failed(entry, run_id, RecordStatus.FAILED, "rejected", exc)
        self.writer.delivered(entry, run_id, answer, duration_ms, counts)
        self._log.info("deliver.ok", **where, kind=entry.kind.value, action=entry.action.value)
        return DeliveryResult.of(entry, RecordStatus.DELIVERED, None)

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
            return self.writer.held(entry, run_id, exc)
        if code == "SKP_SUDAH_ADA" and entry.action is OutboxAction.CREATE_SKP and depth == 0:
            # The target holds an SKP for this NIP and period made from another body (e.g. a
            # send whose answer was lost before the content changed): update it instead.
            skp_id, version = exc.answer.get("id_skp"), exc.answer.get("versi")
            if isinstance(skp_id, str) and isinstance(version, int):
                self.writer.adopt_skp_id(entry, skp_id)
                self.writer.superseded(entry, run_id, "superseded", exc)
                return self._deliver_one(
                    self.writer.update_instead(entry, version), run_id, counts, depth + 1
                )
        if code in {"SKP_TERKUNCI", "PENILAIAN_SUDAH_ADA"}:
            return self.writer.failed(entry, run_id, RecordStatus.LOCKED, "locked", exc)
        return self.writer.failed(entry, run_id, RecordStatus.FAILED, "rejected", exc)

    def _keep_pending(self, entry: OutboxHead, gave_up: GaveUp) -> DeliveryResult:
        """The retries ran out on "later" answers only: the record stays pending, with why,
        for the next run or the daemon's retry job (never a dead letter: docs/design.md,
        invariant 4)."""
        code, reason = gave_up.why_pending()
        self.sender.backpressure.left()
        log.warning(
            "deliver.asked_to_wait",
            nip=entry.nip,
            period=entry.period,
            npsn=entry.npsn,
            kind=entry.kind.value,
            attempts=gave_up.attempts,
            status=gave_up.last.status,
        )
        return self.writer.kept_pending(entry, reason, code)
