"""What a mapping version would change, before anything is sent.

Two parts:

- ``diff_payloads``: pure; two JSON values (the body last delivered, the body a mapping version
  makes now) -> the changed fields, each with its path (``rencana_hasil_kerja[1].indikator[0]
  .target``), its value before and after;
- ``diff_period``: for the deliverables of a period (optionally of some schools), the body last
  delivered (the latest ``done`` outbox entry of that nip, period and kind: the canonical JSON
  as sent) against the body ``version`` makes from the stored effective source record. It only
  reads the state store: nothing is sent, nothing is written.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from mappings.model import PerformanceRecord
from mappings.source import read_record
from mappings.versions import MappingVersion
from state.models import (
    DeliveryKind,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store import StateStore
from sync.pipeline.plan import Known, effective_record, known_of, plan_record

__all__ = [
    "DiffStatus",
    "FieldChange",
    "MappingDiff",
    "RecordDiff",
    "diff_payloads",
    "diff_period",
]


# -- the pure diff -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs. ``change`` is ``changed``, ``added`` (absent before: ``before``
    is None) or ``removed`` (absent after: ``after`` is None)."""

    path: str
    change: str
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "before": self.before,
            "after": self.after,
        }


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and 1.0 are the same number, but true is not 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def diff_payloads(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """The fields of two JSON values that differ, depth first, in a stable order.

    Objects are compared key by key (sorted), arrays index by index (extra items are
    ``added`` or ``removed`` whole); anything else is compared as a value.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(before) | set(after)):
            where = _child(path, key)
            if key not in after:
                changes.append(FieldChange(where, "removed", before[key], None))
            elif key not in before:
                changes.append(FieldChange(where, "added", None, after[key]))
            else:
                changes.extend(diff_payloads(before[key], after[key], where))
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for i in range(max(len(before), len(after))):
            where = _child(path, i)
            if i >= len(after):
                changes.append(FieldChange(where, "removed", before[i], None))
            elif i >= len(before):
                changes.append(FieldChange(where, "added", None, after[i]))
            else:
                changes.extend(diff_payloads(before[i], after[i], where))
        return changes
    if _same(before, after):
        return []
    return [FieldChange(path or "(body)", "changed", before, after)]


# -- a period ----------------------------------------------------------------------------------


class DiffStatus(StrEnum):
    UNCHANGED = "unchanged"  # the version makes exactly what was delivered
    CHANGED = "changed"  # would be sent as an update of the SKP
    LOCKED = "locked"  # would change, but e-Kinerja takes no change any more: by hand
    NOT_DELIVERED = "not_delivered"  # nothing delivered yet: the version's body goes as new
    WAITS_FOR_REPLAY = "waits_for_replay"  # refused by e-Kinerja: goes only once replayed
    NOT_MAPPED = "not_mapped"  # nothing to compare: see ``note``


_LOCKED_NOTE = {
    DeliveryKind.SKP: "its penilaian was already sent, so e-Kinerja has locked the SKP: the "
    "change would be reported as locked, not sent; correct it in e-Kinerja by hand if it matters",
    DeliveryKind.ASSESSMENT: "e-Kinerja takes one penilaian per SKP: the change would be "
    "reported as locked, not sent; correct it in e-Kinerja by hand if it matters",
}


@dataclass(frozen=True, slots=True)
class RecordDiff:
    """One deliverable (the SKP or the penilaian of a teacher in the period)."""

    nip: str
    npsn: str
    kind: DeliveryKind
    status: DiffStatus
    name: str | None = None
    delivered_version: str | None = None  # the mapping version of the body delivered
    changes: tuple[FieldChange, ...] = ()
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "nip": self.nip,
            "npsn": self.npsn,
            "name": self.name,
            "kind": self.kind.value,
            "status": self.status.value,
            "delivered_version": self.delivered_version,
            "changes": [c.as_dict() for c in self.changes],
            "note": self.note,
        }


@dataclass(frozen=True)
class MappingDiff:
    """What switching to ``version`` would do in ``period``, per deliverable."""

    period: str
    version: str
    records: list[RecordDiff] = field(default_factory=list)

    def counts(self) -> Counter[tuple[str, str]]:
        """(kind, status) -> number of deliverables."""
        return Counter((r.kind.value, r.status.value) for r in self.records)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "version": self.version,
            "counts": {f"{k}.{s}": n for (k, s), n in sorted(self.counts().items())},
            "records": [r.as_dict() for r in self.records],
        }


def _body(record: PerformanceRecord, mapping: MappingVersion, kind: DeliveryKind) -> Any:
    """The body ``mapping`` makes for the deliverable, or None when none would be sent yet."""
    if kind is DeliveryKind.SKP:
        if not record.plan_approved:
            return None
        body = mapping.skp(record)
    else:
        if not record.assessment_final:
            return None
        body = mapping.assessment(record)
    # Through JSON, as the outbox keeps it: numbers and dates compare as sent.
    return json.loads(json.dumps(body, sort_keys=True, ensure_ascii=False))


def _latest_done(session: Session, period: str) -> dict[tuple[str, DeliveryKind], OutboxEntry]:
    query = select(OutboxEntry).where(
        OutboxEntry.period == period, OutboxEntry.state == OutboxState.DONE
    )
    latest: dict[tuple[str, DeliveryKind], OutboxEntry] = {}
    for entry in session.exec(query):
        key = (entry.nip, entry.kind)
        held = latest.get(key)
        if held is None or (entry.finished_at, entry.id or 0) > (held.finished_at, held.id or 0):
            latest[key] = entry
    return latest


def diff_period(
    store: StateStore, period: str, mapping: MappingVersion, npsns: Sequence[str] = ()
) -> MappingDiff:
    """For each deliverable of ``period`` (in ``npsns``, if given): what ``mapping`` would send
    against what was last delivered. Read-only."""
    wanted = set(npsns)
    result = MappingDiff(period=period, version=mapping.name)
    with Session(store.engine) as session:
        sources: dict[str, list[SourceRecord]] = defaultdict(list)
        for row in session.exec(select(SourceRecord).where(SourceRecord.period == period)):
            if row.nip:
                sources[row.nip].append(row)
        deliverables = {
            (r.nip, r.kind): r
            for r in session.exec(select(SyncRecord).where(SyncRecord.period == period))
        }
        delivered = _latest_done(session, period)
        # A teacher whose records all left (NIP corrected in PMM) has no source rows.
        for nip in sorted(set(sources) | {nip for nip, _kind in deliverables}):
            rows = sources.get(nip, [])
            record: PerformanceRecord | None = None
            note: str | None = None
            npsn = ""
            seen = max((r.seen_at for r in rows if r.seen_at is not None), default=None)
            known = {
                kind: known_of(deliverables.get((nip, kind)), seen)
                for kind in (DeliveryKind.SKP, DeliveryKind.ASSESSMENT)
            }
            if rows:
                effective, all_cancelled = effective_record(rows)
                npsn = effective.npsn
                if all_cancelled:
                    note = "cancelled in PMM: nothing is sent for it"
                elif effective.status is SourceStatus.QUARANTINED:
                    note = (
                        f"its record is quarantined ({effective.reason_code}): {effective.reason}"
                    )
                else:
                    checked = read_record(effective.body)
                    if isinstance(checked, PerformanceRecord):
                        record = checked
                    else:  # pragma: no cover - a valid row reads again
                        note = f"its record no longer reads: {checked.reason}"
            else:
                note = "no record in PMM carries this NIP any more"
            for kind in (DeliveryKind.SKP, DeliveryKind.ASSESSMENT):
                state = deliverables.get((nip, kind))
                school = npsn or (state.npsn if state is not None else "")
                if wanted and school not in wanted and (state is None or state.npsn not in wanted):
                    continue
                diff = _diff_one(period, nip, school, kind, record, note, mapping, delivered, known)
                if diff is not None:
                    result.records.append(diff)
    return result


_GOES_OUT_QUEUED = {RecordStatus.PENDING, RecordStatus.HELD}


def _diff_one(
    period: str,
    nip: str,
    npsn: str,
    kind: DeliveryKind,
    record: PerformanceRecord | None,
    note: str | None,
    mapping: MappingVersion,
    delivered: dict[tuple[str, DeliveryKind], OutboxEntry],
    known: dict[DeliveryKind, Known | None],
) -> RecordDiff | None:
    sent = delivered.get((nip, kind))
    name = record.employee.name if record is not None else None
    sent_version = sent.mapping_version if sent is not None else None

    def not_compared(why: str | None) -> RecordDiff:
        return RecordDiff(nip, npsn, kind, DiffStatus.NOT_MAPPED, name, sent_version, (), why)

    if record is None:
        return not_compared(note)  # cancelled, quarantined, or gone from PMM: counted
    mine = known[kind]
    if mine is not None and mine.closed_by_operator:
        return not_compared(
            "closed by an operator (discarded): not sent by a switch, only when PMM changes it"
        )
    if mine is not None and mine.awaits_replay:
        # A switch sends no dead letter again (nor does a run): the operator replays it,
        # and the replay maps it with the version active then.
        return RecordDiff(
            nip,
            npsn,
            kind,
            DiffStatus.WAITS_FOR_REPLAY,
            name,
            sent_version,
            (),
            "refused by e-Kinerja: it waits for a replay (after fixing its cause: "
            f"ekinerja-sync replay {period}/{nip}/{kind.value}), then goes with the version "
            "active then",
        )
    try:
        body = _body(record, mapping, kind)
    except ValueError as exc:  # the version cannot map the record (MappingError included)
        return not_compared(f"mapping {mapping.name} cannot map this record: {exc}")
    if sent is None:
        # What a run would do, decided as a run decides it: a penilaian whose SKP cannot go
        # yet, or a refused request with the same body, is not sent by a switch.
        skp, assessment = plan_record(
            record, known[DeliveryKind.SKP], known[DeliveryKind.ASSESSMENT], mapping
        )
        decision = skp if kind is DeliveryKind.SKP else assessment
        queued = decision.keep and mine is not None and mine.status in _GOES_OUT_QUEUED
        if decision.send is not None or queued:
            return RecordDiff(nip, npsn, kind, DiffStatus.NOT_DELIVERED, name)
        why = decision.reason or (
            f"{mine.status.value}: not sent again by a switch" if mine is not None else None
        )
        return not_compared(why or "not ready in PMM")
    if body is None:
        return not_compared(
            "delivered, but not ready in PMM any more (plan or penilaian reopened): nothing "
            "would be sent"
        )
    changes = tuple(diff_payloads(json.loads(sent.body), body))
    if not changes:
        return RecordDiff(nip, npsn, kind, DiffStatus.UNCHANGED, name, sent_version)
    if kind is DeliveryKind.ASSESSMENT or (nip, DeliveryKind.ASSESSMENT) in delivered:
        return RecordDiff(
            nip, npsn, kind, DiffStatus.LOCKED, name, sent_version, changes, _LOCKED_NOTE[kind]
        )
    return RecordDiff(nip, npsn, kind, DiffStatus.CHANGED, name, sent_version, changes)
