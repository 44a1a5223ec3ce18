"""Answers into state and ledger: a 2xx answer is kept and written in batches; a retried
attempt, a held record, a final failure, a replaced entry are written at once. Each write goes
with its ledger entries (``AttemptLog``) in one transaction.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from connectors.errors import SyncError
from state.models import (
    DeliveryKind,
    OutboxAction,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    SyncRecord,
)
from state.store import OutboxHead, StateStore, close_entries, mark_delivered
from sync.advice import advice
from sync.delivery.claims import OutboxClaims
from sync.delivery.results import (
    Attempt,
    AttemptLog,
    DeliveryResult,
    answer_json,
    answer_text,
    target_reason,
)
from sync.delivery.target import TargetAnswer
from sync.hashing import idempotency_key

__all__ = ["BACKLOG_BATCHES", "AnswerWriter"]

# How many batches of answers may wait to be written before a sending thread waits to write.
BACKLOG_BATCHES = 10


@dataclass(frozen=True, slots=True)
class _Answer:
    """A 2xx answer not yet written (``AnswerWriter.flush`` writes them in batches)."""

    entry: OutboxHead
    run_id: str | None
    answer: TargetAnswer
    duration_ms: int


class AnswerWriter:
    """Writes what each request came to: the outbox entry, the deliverable, the ledger."""

    def __init__(
        self,
        *,
        store: StateStore,
        claims: OutboxClaims,
        attempt_log: AttemptLog,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        flush_every: int = 100,
    ) -> None:
        self.store = store
        self.claims = claims
        self.attempt_log = attempt_log
        self.clock = clock
        # Answers are written ``flush_every`` at a time, in one transaction.
        self.flush_every = flush_every
        self._lock = threading.Lock()
        self._answers: list[_Answer] = []  # delivered, not yet written (see ``flush``)
        self._write_lock = threading.Lock()

    # -- 2xx answers, in batches ---------------------------------------------------------

    def delivered(
        self,
        entry: OutboxHead,
        run_id: str | None,
        answer: TargetAnswer,
        duration_ms: int,
        counts: Counter[tuple[str, str]],
    ) -> None:
        """Keep a 2xx answer to be written with the next batch; ``counts`` gets it."""
        outcome = "sent_updated" if entry.action is OutboxAction.UPDATE_SKP else "sent_new"
        with self._lock:
            counts[(entry.kind.value, outcome)] += 1
            self._answers.append(_Answer(entry, run_id, answer, duration_ms))
            unwritten = len(self._answers)
        if unwritten >= self.flush_every:
            # Not waited for while the backlog is short: while another thread writes a batch,
            # this one goes on sending (a batch takes a round trip or more on PostgreSQL);
            # what it added is written by the next batch or at the end of the phase. Once the
            # sending outruns the writing by several batches, it waits its turn: the backlog
            # (memory, and what a crash would send again) stays bounded. Without it, 20,000
            # records on PostgreSQL left 6,000 answers waiting, RSS 241 MB at 100,000.
            self.flush(wait=unwritten >= BACKLOG_BATCHES * self.flush_every)

    def flush(self, *, wait: bool = True) -> None:
        """Write the 2xx answers not yet written, in one transaction: each entry done, its
        deliverable delivered, one ledger entry each.

        Batching them is what lets delivery keep up with thousands of requests a second. It
        is as safe as writing each at once: until it is written, the entry stays pending and
        claimed, and a crash before that resends it with the same idempotency key, which
        e-Kinerja answers as it did the first time (docs/design.md, invariant 2).
        """
        if not self._write_lock.acquire(blocking=wait):
            return  # another thread is writing (``wait=False`` only)
        try:
            with self._lock:
                answers, self._answers = self._answers, []
            if not answers:
                return
            now = self.clock()
            texts = [answer_json(a.answer.body) for a in answers]  # as stored and as audited
            done_entries: list[dict[str, Any]] = []
            delivered: list[dict[str, Any]] = []
            for a, text in zip(answers, texts, strict=True):
                entry, body = a.entry, a.answer.body
                done_entries.append(
                    {
                        "id": entry.id,
                        "state": OutboxState.DONE,
                        "finished_at": now,
                        "last_status": a.answer.status,
                        "last_answer": text,
                    }
                )
                skp_id: str | None = None  # None: the SKP id known already stays
                version: int | None = None
                if entry.kind is DeliveryKind.SKP:
                    skp_id = str(body["id_skp"]) if body.get("id_skp") else None
                    versi = body.get("versi")
                    version = versi if isinstance(versi, int) else None
                delivered.append(
                    {
                        "nip": entry.nip,
                        "period": entry.period,
                        "kind": entry.kind,
                        "payload_hash": entry.payload_hash,
                        "mapping_version": entry.mapping_version,
                        "skp_id": skp_id,
                        "skp_version": version,
                    }
                )
            with self._batch_transaction() as connection:
                # UPDATEs by primary key, many rows per statement, nothing read first.
                close_entries(connection, done_entries)
                mark_delivered(connection, delivered, at=now)
                # Row locks first, the ledger's append lock last (see state/ledger.py).
                self.attempt_log.attempts(
                    connection,
                    [
                        Attempt(
                            a.run_id,
                            a.entry,
                            "delivered",
                            a.answer.status,
                            text,
                            a.duration_ms,
                        )
                        for a, text in zip(answers, texts, strict=True)
                    ],
                )
        finally:
            self._write_lock.release()

    def _batch_transaction(self) -> AbstractContextManager[Connection]:
        """The transaction of a batch of answers: a connection, not a session (its statements
        are prepared once: ``state.store.rows``, ``state.ledger``)."""
        return self.store.engine.begin()

    # -- written at once -----------------------------------------------------------------

    def retried(
        self,
        entry: OutboxHead,
        run_id: str | None,
        outcome: str,
        exc: SyncError,
        duration_ms: int,
    ) -> None:
        """An attempt that will be tried again (``retry``, ``paused``), in its own small
        transaction; the claim is renewed first (the retries may outlast its lease)."""
        assert entry.id is not None
        self.claims.renew(entry.id)
        with self.store.unit_of_work() as session:
            current = session.get(OutboxEntry, entry.id)
            if current is not None:
                current.attempts += 1
                current.last_status, current.last_answer = exc.status, answer_text(exc)
                session.add(current)
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, answer_text(exc), duration_ms)],
            )

    def held(self, entry: OutboxHead, run_id: str | None, exc: SyncError) -> DeliveryResult:
        """409 PENILAI_BELUM_ADA_SKP: the record waits for its penilai's SKP."""
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            current = session.get(OutboxEntry, entry.id)
            assert row is not None
            assert current is not None
            row.status, row.reason_code = RecordStatus.HELD, exc.code
            row.reason = (
                f"held: its penilai (NIP {row.assessor_nip}) has no SKP for {entry.period} "
                "on e-Kinerja yet; sent again once it has"
            )
            current.attempts += 1
            current.last_status, current.last_answer = exc.status, answer_text(exc)
            session.add_all([row, current])
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, "held", exc.status, answer_text(exc), None)],
            )
            return DeliveryResult.of(entry, RecordStatus.HELD, row.reason)

    def waiting(self, entry: OutboxHead, reason: str) -> DeliveryResult:
        """A penilaian whose SKP is not delivered (and not on its way): it waits for it."""
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            if row is not None and row.status is not RecordStatus.WAITING:
                row.status, row.reason = RecordStatus.WAITING, reason
                session.add(row)
        return DeliveryResult.of(entry, RecordStatus.WAITING, reason)

    def kept_pending(self, entry: OutboxHead, reason: str, code: str) -> DeliveryResult:
        """The record stays pending for the next run, and says why."""
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            if row is not None and row.status is RecordStatus.PENDING:
                row.reason, row.reason_code = reason, code
                session.add(row)
        return DeliveryResult.of(entry, RecordStatus.PENDING, reason)

    def adopt_skp_id(self, entry: OutboxHead, skp_id: str) -> None:
        """The target holds an SKP for this NIP and period already: its id is the record's."""
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            assert row is not None
            row.skp_id = skp_id
            session.add(row)

    def superseded(
        self, entry: OutboxHead, run_id: str | None, outcome: str, exc: SyncError
    ) -> None:
        """Close an entry that a follow-up request replaces (409 SKP_SUDAH_ADA, 412)."""
        with self.store.unit_of_work() as session:
            current = session.get(OutboxEntry, entry.id)
            assert current is not None
            current.state, current.finished_at = OutboxState.SUPERSEDED, self.clock()
            current.attempts += 1
            current.last_status, current.last_answer = exc.status, answer_text(exc)
            session.add(current)
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, answer_text(exc), None)],
            )

    def update_instead(self, entry: OutboxHead, version: int) -> OutboxHead:
        """A new entry that updates the SKP the target holds at ``version`` with the same
        body (the caller sends it at once); the record keeps the version."""
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
        return OutboxHead.of(replacement, entry.npsn)

    def failed(
        self,
        entry: OutboxHead,
        run_id: str | None,
        status: RecordStatus,
        outcome: str,
        exc: SyncError,
        reason: str | None = None,
        reason_code: str | None = None,
    ) -> DeliveryResult:
        """The request failed for good: the entry is dead, the record says why."""
        # The reason names the record and ends with what to do (sync/advice.py).
        failure = f"{entry.period}/{entry.nip}/{entry.kind.value}"
        what = "SKP" if entry.kind is DeliveryKind.SKP else "penilaian"
        reason = (
            f"NIP {entry.nip} ({what} {entry.period}, NPSN {entry.npsn}): "
            f"{reason or target_reason(exc)}. "
            f"What to do: {advice(reason_code or exc.code, replay_id=failure)}"
        )
        with self.store.unit_of_work() as session:
            row = session.get(SyncRecord, (entry.nip, entry.period, entry.kind))
            current = session.get(OutboxEntry, entry.id)
            assert row is not None
            assert current is not None
            current.state, current.finished_at = OutboxState.DEAD, self.clock()
            if outcome != "failed":  # a give-up's attempts were counted one by one
                current.attempts += 1
            current.last_status, current.last_answer = exc.status, answer_text(exc)
            row.status, row.reason = status, reason
            row.reason_code = reason_code or exc.code
            row.changed_at = self.clock()
            session.add_all([row, current])
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, answer_text(exc), None, reason)],
            )
        return DeliveryResult.of(entry, status, reason)
