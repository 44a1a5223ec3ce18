"""Answers into state and ledger: a 2xx answer is kept and written in batches (the batch
writer); a final failure closes its entry and tells the record why; a replaced entry is
closed as superseded. Each write goes with its ledger entries in one transaction.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from connectors.ekinerja import TargetAnswer
from connectors.errors import (
    SyncError,
)
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
from sync.delivery.results import (
    Attempt,
    AttemptLog,
    DeliveryResult,
    _Answer,
    _answer_text,
    _json,
    _reason,
)

# How many batches of answers may wait to be written before a sending thread waits to write.
_BACKLOG_BATCHES = 10


class _Answers:
    """The writing half of ``Deliverer`` (see ``sync.delivery.deliver``)."""

    store: StateStore
    attempt_log: AttemptLog
    clock: Callable[[], dt.datetime]
    flush_every: int
    _lock: threading.Lock
    _answers: list[_Answer]
    _write_lock: threading.Lock

    def _delivered(
        self,
        entry: OutboxHead,
        run_id: str | None,
        answer: TargetAnswer,
        duration_ms: int,
        counts: Counter[tuple[str, str]],
    ) -> None:
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
            self._write_answers(wait=unwritten >= _BACKLOG_BATCHES * self.flush_every)

    def _write_answers(self, *, wait: bool = True) -> None:
        """Write the 2xx answers not yet written, in one transaction: each entry done, its
        deliverable delivered, one ledger entry each.

        Batching them is what lets delivery keep up with thousands of requests a second. It
        is as safe as writing each at once: until it is written, the entry stays pending and
        claimed, and a crash before that resends it with the same idempotency key, which
        e-Kinerja answers as it did the first time (invariant 2).
        """
        if not self._write_lock.acquire(blocking=wait):
            return  # another thread is writing (``wait=False`` only)
        try:
            with self._lock:
                answers, self._answers = self._answers, []
            if not answers:
                return
            now = self.clock()
            texts = [_json(a.answer.body) for a in answers]  # as stored and as audited
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
            with self.store.unit_of_work() as session:
                # UPDATEs by primary key, many rows per statement, nothing read first.
                close_entries(session, done_entries)
                mark_delivered(session, delivered, at=now)
                # Row locks first, the ledger's append lock last (see state/ledger.py).
                self.attempt_log.attempts(
                    session,
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

    def _finish_entry(
        self, entry: OutboxHead, run_id: str | None, outcome: str, exc: SyncError
    ) -> None:
        """Close an entry that a follow-up request replaces (409 SKP_SUDAH_ADA, 412)."""
        with self.store.unit_of_work() as session:
            current = session.get(OutboxEntry, entry.id)
            assert current is not None
            current.state, current.finished_at = OutboxState.SUPERSEDED, self.clock()
            current.attempts += 1
            current.last_status, current.last_answer = exc.status, _answer_text(exc)
            session.add(current)
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, _answer_text(exc), None)],
            )

    def _finish(
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
            f"{reason or _reason(exc)}. "
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
            current.last_status, current.last_answer = exc.status, _answer_text(exc)
            row.status, row.reason = status, reason
            row.reason_code = reason_code or exc.code
            row.changed_at = self.clock()
            session.add_all([row, current])
            self.attempt_log.attempts(
                session,
                [Attempt(run_id, entry, outcome, exc.status, _answer_text(exc), None, reason)],
            )
        return self._result(entry, status, reason)

    @staticmethod
    def _result(entry: OutboxHead, status: RecordStatus, reason: str | None) -> DeliveryResult:
        return DeliveryResult(entry.nip, entry.period, entry.kind, entry.action, status, reason)
