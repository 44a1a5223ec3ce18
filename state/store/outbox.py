"""The outbox (one row per request planned for e-Kinerja): what is still to send, read a page
at a time, and unsent requests a newer decision replaces. In the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Table, func, literal, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from state.models import DeliveryKind, OutboxEntry, OutboxState, SyncRecord
from state.store.heads import OUTBOX_HEAD_COLUMNS, OutboxHead

__all__ = ["Outbox"]

_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]


class Outbox:
    """The unsent requests: superseding them, and reading them for a delivery round."""

    @staticmethod
    def supersede_pending(session: Session, nip: str, period: str, kind: DeliveryKind) -> None:
        """Mark unsent outbox entries of a deliverable as replaced by a newer decision."""
        session.execute(
            update(OutboxEntry)
            .where(
                col(OutboxEntry.nip) == nip,
                col(OutboxEntry.period) == period,
                col(OutboxEntry.kind) == kind,
                col(OutboxEntry.state) == OutboxState.PENDING,
            )
            .values(state=OutboxState.SUPERSEDED, finished_at=dt.datetime.now(dt.UTC))
        )

    @staticmethod
    def pending(
        session: Session, period: str, npsns: Sequence[str] = ()
    ) -> list[tuple[OutboxEntry, SyncRecord]]:
        """Unsent requests of the period (optionally of some schools) with their
        deliverables, oldest first."""
        query = (
            select(OutboxEntry, SyncRecord)
            .join(
                SyncRecord,
                (col(SyncRecord.nip) == col(OutboxEntry.nip))
                & (col(SyncRecord.period) == col(OutboxEntry.period))
                & (col(SyncRecord.kind) == col(OutboxEntry.kind)),
            )
            .where(OutboxEntry.state == OutboxState.PENDING, OutboxEntry.period == period)
            .order_by(col(OutboxEntry.id))
        )
        if npsns:
            query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
        return [(entry, record) for entry, record in session.exec(query)]

    @staticmethod
    def last_id(session: Session) -> int:
        """The newest outbox entry's id (0 when empty): where a delivery round stops reading,
        so the requests it writes itself (a 412's replacement) are not read back."""
        newest = session.exec(select(func.max(OutboxEntry.id))).one()
        return newest or 0

    @staticmethod
    def pending_page(
        session: Session,
        period: str,
        npsns: Sequence[str] = (),
        *,
        kind: DeliveryKind,
        assessors: bool | None = None,
        after_id: int = 0,
        up_to_id: int | None = None,
        limit: int = 500,
    ) -> list[OutboxHead]:
        """One page of the unsent requests of a kind, by id after ``after_id`` (keyset paging,
        so a period of any size is read in bounded memory), as plain rows with their school.
        ``assessors``: True, only SKPs of teachers who are some record's penilai; False, only
        the others; None, all."""
        o, r = _OUTBOX, _SYNC
        query = (
            sa_select(*(o.c[name] for name in OUTBOX_HEAD_COLUMNS), r.c.npsn)
            .join(r, (r.c.nip == o.c.nip) & (r.c.period == o.c.period) & (r.c.kind == o.c.kind))
            .where(
                o.c.state == OutboxState.PENDING,
                o.c.period == period,
                o.c.kind == kind,
                o.c.id > after_id,
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        if npsns:
            query = query.where(r.c.npsn.in_(list(npsns)))
        if up_to_id is not None:
            query = query.where(o.c.id <= up_to_id)
        if assessors is not None:
            # EXISTS, not IN (subquery): PostgreSQL runs NOT IN over a large subquery as a
            # scan of the period's deliverables per entry (quadratic); EXISTS is an anti-join
            # on ix_sync_record_period_assessor.
            penilai = r.alias("penilai")
            is_penilai = (
                sa_select(literal(1))
                .where(penilai.c.period == period, penilai.c.assessor_nip == o.c.nip)
                .exists()
            )
            query = query.where(is_penilai if assessors else ~is_penilai)
        # Enum columns come back as their enums: a row is the head's fields in order.
        return [OutboxHead(*row) for row in session.execute(query)]
