"""Planning applied to the state: for a set of teachers, read their source records and
deliverables, plan (``plan.py``, pure), and write the deliverables' changes and the outbox
entries in the caller's transaction (one multi-row INSERT each).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import update
from sqlmodel import Session, col

from mappings.model import PerformanceRecord
from mappings.source import Rejection, read_record
from mappings.versions import MappingVersion
from state.models import (
    DeliveryKind,
    OutboxEntry,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store import SourceHead, StateStore, insert_rows
from sync.advice import advice
from sync.hashing import idempotency_key
from sync.pipeline.plan import (
    Decision,
    effective_record,
    known_of,
    plan_cancellation,
    plan_record,
)

log = structlog.get_logger("ekinerja_sync.engine")

Clock = Callable[[], dt.datetime]

_QUEUED = {RecordStatus.PENDING, RecordStatus.HELD, RecordStatus.WAITING}


@dataclass
class _NewRows:
    """Rows a planning pass creates, inserted together at its end."""

    records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


_NIP_GONE = "not in PMM under this NIP any more (NIP corrected?)"


class _Outbox:
    """The planning half of ``Engine`` (see ``sync.pipeline.engine``)."""

    store: StateStore
    clock: Clock

    def _plan(
        self,
        session: Session,
        period: str,
        mapping: MappingVersion,
        nips: set[str],
        validated: Mapping[str, PerformanceRecord] | None = None,
    ) -> None:
        """Plan these teachers; ``validated``: records of the page just read, already
        validated (a record is validated once; others are read from the store)."""
        validated = validated or {}
        sources = self.store.sources.heads(session, period, nips)
        effective_of: dict[str, tuple[SourceHead, bool]] = {}
        for nip, heads in sources.items():
            effective_of[nip] = effective_record(heads)
        bodies = self.store.sources.bodies(
            session,
            [
                head.id
                for head, all_cancelled in effective_of.values()
                if head.id not in validated
                and (head.status is not SourceStatus.QUARANTINED or all_cancelled)
            ],
        )
        current = self.store.deliverables.records(session, period, nips)
        new = _NewRows()
        for nip in sorted(nips):
            rows = sources.get(nip)
            skp_row = current.get((nip, DeliveryKind.SKP))
            assessment_row = current.get((nip, DeliveryKind.ASSESSMENT))
            if not rows:
                # No source record carries this NIP any more (corrected in PMM).
                gone = plan_cancellation(
                    known_of(skp_row), known_of(assessment_row), reason=_NIP_GONE
                )
                for decision, row in zip(gone, (skp_row, assessment_row), strict=True):
                    self._apply(session, period, mapping, nip, None, decision, row, new)
                continue
            effective, all_cancelled = effective_of[nip]
            if effective.status is SourceStatus.QUARANTINED and not all_cancelled:
                continue  # the record that counts is bad data: it waits in quarantine
            record = validated.get(effective.id)
            if record is None and effective.id in bodies:
                checked = read_record(bodies[effective.id])
                if isinstance(checked, Rejection) and not all_cancelled:
                    # Stored as valid by an older release whose rules it now breaks (a
                    # release can add a provable check): quarantined like a record read now.
                    session.execute(
                        update(SourceRecord)
                        .where(col(SourceRecord.id) == effective.id)
                        .values(
                            status=SourceStatus.QUARANTINED,
                            reason_code=checked.code,
                            reason=checked.reason,
                        )
                    )
                    log.warning("record.quarantined", period=period, nip=nip, reason=checked.reason)
                    continue
                record = checked if isinstance(checked, PerformanceRecord) else None
            seen = max(r.seen_at for r in rows)  # the newest version PMM served of this NIP
            if all_cancelled:
                decisions = plan_cancellation(
                    known_of(skp_row, seen), known_of(assessment_row, seen)
                )
            else:
                assert record is not None  # a valid, live effective record
                try:
                    decisions = plan_record(
                        record, known_of(skp_row, seen), known_of(assessment_row, seen), mapping
                    )
                except ValueError as exc:
                    # The mapping refused what validation let through: a gap in validation,
                    # kept from the batch like any bad record, with the mapping's words.
                    session.execute(
                        update(SourceRecord)
                        .where(col(SourceRecord.id) == effective.id)
                        .values(
                            status=SourceStatus.QUARANTINED,
                            reason_code="mapping_failed",
                            reason=(
                                f"mapping {mapping.name} cannot map this record: {exc}. "
                                f"What to do: {advice('mapping_failed')}"
                            )[:2000],
                        )
                    )
                    log.error("record.mapping_failed", period=period, nip=nip, error=str(exc))
                    continue
            for decision, row in zip(decisions, (skp_row, assessment_row), strict=True):
                self._apply(session, period, mapping, nip, record, decision, row, new)
        # New deliverables and requests go in one multi-row INSERT each (ORM bulk insert):
        # an ORM object per row was most of the ingest's time.
        insert_rows(session, SyncRecord, new.records)
        insert_rows(session, OutboxEntry, new.requests)

    def _apply(
        self,
        session: Session,
        period: str,
        mapping: MappingVersion,
        nip: str,
        record: PerformanceRecord | None,
        decision: Decision,
        row: SyncRecord | None,
        new: _NewRows,
    ) -> None:
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
