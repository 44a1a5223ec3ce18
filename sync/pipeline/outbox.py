"""The outbox writer: a ``Plan`` (``planner.py``) written in the caller's transaction, so
the state change and the requests it calls for commit together or not at all: each
deliverable's new status, the stored records planning held back (quarantined), and the
outbox entries, new rows in one multi-row INSERT each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col

from mappings.model import PerformanceRecord
from state.models import (
    OutboxEntry,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store import StateStore, insert_rows
from sync.hashing import idempotency_key
from sync.pipeline.plan import Decision
from sync.pipeline.planner import Plan, TeacherPlan

__all__ = ["OutboxWriter"]

Clock = Callable[[], dt.datetime]

_QUEUED = {RecordStatus.PENDING, RecordStatus.HELD, RecordStatus.WAITING}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _NewRows:
    """Rows a plan creates, inserted together at its end."""

    records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


class OutboxWriter:
    """Writes what planning decided: deliverables' statuses and outbox entries."""

    def __init__(self, store: StateStore, *, clock: Clock = _utcnow) -> None:
        self.store = store
        self.clock = clock

    def write(self, session: Session, plan: Plan) -> None:
        """Write ``plan`` in ``session`` (the caller's unit of work)."""
        for held in plan.held:
            session.execute(
                update(SourceRecord)
                .where(col(SourceRecord.id) == held.source_id)
                .values(
                    status=SourceStatus.QUARANTINED,
                    reason_code=held.reason_code,
                    reason=held.reason,
                )
            )
        new = _NewRows()
        for teacher in plan.teachers:
            for decision, row in zip(teacher.decisions, teacher.rows, strict=True):
                self._apply(session, plan, teacher, decision, row, new)
        # New deliverables and requests go in one multi-row INSERT each (ORM bulk insert):
        # an ORM object per row was most of the ingest's time.
        insert_rows(session, SyncRecord, new.records)
        insert_rows(session, OutboxEntry, new.requests)

    def _apply(
        self,
        session: Session,
        plan: Plan,
        teacher: TeacherPlan,
        decision: Decision,
        row: SyncRecord | None,
        new: _NewRows,
    ) -> None:
        """One deliverable's decision: its row changed (or a new one), a request queued."""
        period, mapping, nip, record = plan.period, plan.mapping, teacher.nip, teacher.record
        if decision.keep:
            if row is not None and record is not None:
                _take_source_fields(row, record)
                if decision.payload_hash is not None and decision.payload_hash == row.payload_hash:
                    row.mapping_version = mapping.name  # it makes the same payload
                session.add(row)
            return
        now = self.clock()
        mapped = (
            {"payload_hash": decision.payload_hash, "mapping_version": mapping.name}
            if decision.payload_hash is not None
            else {}
        )
        if row is None:
            if record is None:
                return
            new.records.append(
                {
                    "nip": nip,
                    "period": period,
                    "kind": decision.kind,
                    "npsn": record.school.npsn,
                    "source_id": record.source_id,
                    "assessor_nip": record.assessor.nip,
                    "assessor_role": record.assessor.role.value,
                    "status": decision.status,
                    "reason": decision.reason,
                    "reason_code": None,
                    "payload_hash": None,
                    "mapping_version": None,
                    "changed_at": now,
                    **mapped,
                }
            )
        else:
            # Only these statuses can have an unsent outbox entry (held and waiting ones
            # stay queued): skip the supersede query for the rest.
            may_have_pending = row.status in _QUEUED
            if record is not None:
                _take_source_fields(row, record)
            row.status, row.reason, row.reason_code = decision.status, decision.reason, None
            if decision.send is not None:
                # "Pending" is written even when the row read said so already: another worker
                # may have delivered the previous version since (the row says delivered), and
                # the ORM leaves out of the UPDATE a value equal to the one read. Left out, the
                # row said delivered while this change waits to be sent, and the penilaian went
                # under the SKP as it was (a new penilai: 422, dead). Written, it stays pending
                # (delivery's ``mark_delivered`` does not overwrite a newer payload's status).
                for key in ("status", "reason", "reason_code"):
                    flag_modified(row, key)
            for key, value in mapped.items():
                setattr(row, key, value)
            row.changed_at = now
            session.add(row)
            if may_have_pending:  # any unsent request for this deliverable is now out of date
                self.store.outbox.supersede_pending(session, nip, period, decision.kind)
        if decision.send is not None:
            send = decision.send
            new.requests.append(
                {
                    "nip": nip,
                    "period": period,
                    "kind": decision.kind,
                    "action": send.action,
                    "body": send.body_json,
                    "payload_hash": send.payload_hash,
                    "idempotency_key": idempotency_key(
                        send.action.value, nip, period, send.body_json, send.if_match
                    ),
                    "if_match": send.if_match,
                    "mapping_version": mapping.name,
                    "created_at": now,
                }
            )


def _take_source_fields(row: SyncRecord, record: PerformanceRecord) -> None:
    """What a deliverable keeps of its latest source record: school, record id, penilai."""
    row.npsn, row.source_id = record.school.npsn, record.source_id
    row.assessor_nip, row.assessor_role = record.assessor.nip, record.assessor.role.value
