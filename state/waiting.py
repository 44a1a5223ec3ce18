"""The records of a period that are not on their way to e-Kinerja, as plain rows: what the
schools' action lists are made of (``sync.operations.school_actions``).

Two kinds of row:

- a **quarantined source record** (bad data read from PMM), when it is the record that counts
  for its teacher: the latest one not cancelled, by (``updated_at``, ``id``), over every school
  of the period (an older, bad record at a school the teacher left waits on nobody);
- a **deliverable** (SKP or penilaian) that is waiting, held, failed, locked, or cancelled
  after it was delivered, with the body of its source record (for the teacher's name).

Read only; plain functions over the caller's ``Session``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from state.models import RecordStatus, SourceRecord, SourceStatus, SyncRecord

__all__ = ["QUARANTINED", "WAITING_STATUSES", "WaitingRow", "period_schools", "waiting_rows"]

_SOURCE: Table = SourceRecord.__table__  # type: ignore[attr-defined]
_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]

# The ``status`` of a row read from the quarantine.
QUARANTINED = "quarantined"
# Deliverables that wait on someone (pending ones are on their way: they wait on no one).
WAITING_STATUSES = (
    RecordStatus.WAITING,
    RecordStatus.HELD,
    RecordStatus.FAILED,
    RecordStatus.LOCKED,
    RecordStatus.CANCELLED_AFTER_DELIVERY,
)


@dataclass(frozen=True, slots=True)
class WaitingRow:
    """One record that waits. ``kind``: ``record`` (a quarantined source record), ``skp`` or
    ``assessment``; ``since``: when it entered this state (a deliverable's last change, a
    quarantined record's reading); ``body``: its source record as PMM sent it (None when the
    store has none)."""

    period: str
    npsn: str
    nip: str
    kind: str
    status: str
    reason_code: str | None
    reason: str | None
    assessor_role: str | None
    since: dt.datetime
    source_id: str
    body: dict[str, Any] | None


def _effective_ids(session: Session, period: str, nips: set[str]) -> dict[str, str]:
    """NIP -> the id of the source record that counts for the teacher in the period."""
    if not nips:
        return {}
    t = _SOURCE
    rows = session.execute(
        sa_select(t.c.id, t.c.nip, t.c.updated_at).where(
            t.c.period == period, t.c.nip.in_(sorted(nips)), t.c.cancelled.is_(False)
        )
    )
    best: dict[str, tuple[dt.datetime, str]] = {}
    for row in rows:
        key = (row.updated_at, row.id)
        if row.nip not in best or best[row.nip] < key:
            best[row.nip] = key
    return {nip: key[1] for nip, key in best.items()}


def waiting_rows(session: Session, period: str, npsns: Sequence[str] = ()) -> list[WaitingRow]:
    """Every record of the period (optionally of some schools) that waits on someone, by
    school and NIP. A teacher whose record that counts is quarantined is listed once, for the
    quarantine: what is known of their deliverables was planned from an older record."""
    s, r = _SOURCE, _SYNC
    quarantine = sa_select(
        s.c.id, s.c.npsn, s.c.nip, s.c.reason_code, s.c.reason, s.c.seen_at, s.c.body
    ).where(
        s.c.period == period,
        s.c.status == SourceStatus.QUARANTINED,
        s.c.cancelled.is_(False),
    )
    if npsns:
        quarantine = quarantine.where(s.c.npsn.in_(list(npsns)))
    bad = list(session.execute(quarantine))
    effective = _effective_ids(session, period, {row.nip for row in bad if row.nip})
    found: list[WaitingRow] = []
    held_back: set[str] = set()
    for row in bad:
        if row.nip and effective.get(row.nip) != row.id:
            continue  # an older record, or one at a school the teacher left
        held_back.add(row.nip)
        found.append(
            WaitingRow(
                period=period,
                npsn=row.npsn,
                nip=row.nip,
                kind="record",
                status=QUARANTINED,
                reason_code=row.reason_code,
                reason=row.reason,
                assessor_role=None,
                since=row.seen_at,
                source_id=row.id,
                body=row.body,
            )
        )
    deliverables = (
        sa_select(
            r.c.npsn,
            r.c.nip,
            r.c.kind,
            r.c.status,
            r.c.reason_code,
            r.c.reason,
            r.c.assessor_role,
            r.c.changed_at,
            r.c.source_id,
            s.c.body,
        )
        .select_from(r.outerjoin(s, s.c.id == r.c.source_id))
        .where(r.c.period == period, or_(*(r.c.status == status for status in WAITING_STATUSES)))
    )
    if npsns:
        deliverables = deliverables.where(r.c.npsn.in_(list(npsns)))
    for row in session.execute(deliverables):
        if row.nip in held_back:
            continue
        found.append(
            WaitingRow(
                period=period,
                npsn=row.npsn,
                nip=row.nip,
                kind=str(row.kind),
                status=str(row.status),
                reason_code=row.reason_code,
                reason=row.reason,
                assessor_role=row.assessor_role,
                since=row.changed_at,
                source_id=row.source_id,
                body=row.body,
            )
        )
    found.sort(key=lambda w: (w.npsn, w.nip, w.kind))
    return found


def period_schools(session: Session, period: str) -> list[str]:
    """Every school of the period the store has read a record of, by NPSN."""
    t = _SOURCE
    query = sa_select(t.c.npsn).where(t.c.period == period, t.c.npsn != "").distinct()
    return sorted(str(npsn) for (npsn,) in session.execute(query))
