"""Planning against the store: for a set of teachers, read their source records and their
two deliverables, and decide (``plan.py``, pure) what becomes of each deliverable.

It reads and decides, nothing more: ``OutboxWriter`` (``outbox.py``) writes the ``Plan`` in
the same transaction, so what was read and what is written agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from sqlmodel import Session

from mappings.model import PerformanceRecord
from mappings.source import Rejection, read_record
from mappings.versions import MappingVersion
from state.models import DeliveryKind, SourceStatus, SyncRecord
from state.store import SourceHead, StateStore
from sync.advice import advice
from sync.pipeline.plan import Decision, effective_record, known_of, plan_cancellation, plan_record

__all__ = ["Held", "Plan", "Planner", "TeacherPlan"]

log = structlog.get_logger("ekinerja_sync.engine")

_NIP_GONE = "not in PMM under this NIP any more (NIP corrected?)"


@dataclass(frozen=True, slots=True)
class Held:
    """A stored record planning cannot use (this release's rules refuse it, or the mapping
    cannot map it): it goes to the quarantine with ``reason_code`` and ``reason``."""

    source_id: str
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class TeacherPlan:
    """One teacher's decisions for the SKP and the penilaian, the record they were made
    from (None: no live record carries the NIP) and the deliverables' rows as they stood
    (None: not planned before)."""

    nip: str
    record: PerformanceRecord | None
    decisions: tuple[Decision, Decision]
    rows: tuple[SyncRecord | None, SyncRecord | None]


@dataclass(frozen=True, slots=True)
class Plan:
    """What planning decided for some teachers of a period, for ``OutboxWriter.write``."""

    period: str
    mapping: MappingVersion
    teachers: tuple[TeacherPlan, ...]
    held: tuple[Held, ...]


class Planner:
    """Compares what the source says with what the store holds: for each teacher, new,
    changed or unchanged, and so what each deliverable becomes and what is to be sent."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def plan(
        self,
        session: Session,
        period: str,
        mapping: MappingVersion,
        nips: set[str],
        validated: Mapping[str, PerformanceRecord] | None = None,
    ) -> Plan:
        """Plan these teachers. ``validated``: the records this pass has validated, by source
        id (the page just read, the quarantine just checked again), planned as they are. A
        record that counts and is not among them (a teacher's record from an earlier page or
        run: a remap, a replay) is read from its stored body and validated with this
        release's rules, which may now refuse it (``Held``)."""
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
        teachers: list[TeacherPlan] = []
        held: list[Held] = []
        for nip in sorted(nips):
            rows = sources.get(nip)
            skp_row = current.get((nip, DeliveryKind.SKP))
            assessment_row = current.get((nip, DeliveryKind.ASSESSMENT))
            if not rows:
                # No source record carries this NIP any more (corrected in PMM).
                gone = plan_cancellation(
                    known_of(skp_row), known_of(assessment_row), reason=_NIP_GONE
                )
                teachers.append(TeacherPlan(nip, None, gone, (skp_row, assessment_row)))
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
                    held.append(Held(effective.id, reason_code=checked.code, reason=checked.reason))
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
                    reason = (
                        f"mapping {mapping.name} cannot map this record: {exc}. "
                        f"What to do: {advice('mapping_failed')}"
                    )[:2000]
                    held.append(Held(effective.id, reason_code="mapping_failed", reason=reason))
                    log.error("record.mapping_failed", period=period, nip=nip, error=str(exc))
                    continue
            teachers.append(TeacherPlan(nip, record, decisions, (skp_row, assessment_row)))
        return Plan(period, mapping, tuple(teachers), tuple(held))
