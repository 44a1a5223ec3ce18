"""The outbox (one row per request planned for e-Kinerja): what is still to send, read a page
at a time, and unsent requests a newer decision replaces. In the caller's transaction."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, func, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine
from sqlmodel import Session, col, select

from state.models import DeliveryKind, OutboxEntry, OutboxState, SyncRecord
from state.store.heads import OUTBOX_HEAD_COLUMNS, OutboxHead
from state.store.prepared import IdList, Prepared, connection_of, prepare

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
        session: Session | Connection,
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
        the others; None, all. One prepared statement (``state.store.prepared``)."""
        connection = connection_of(session)
        statement = _pending_page(connection.dialect, bool(npsns), up_to_id is not None, assessors)
        rows = statement.run(
            connection,
            pending=OutboxState.PENDING,
            period=period,
            kind=kind,
            after=after_id,
            limit=limit,
            **({"npsns": list(npsns)} if npsns else {}),
            **({"up_to": up_to_id} if up_to_id is not None else {}),
        )
        # A row is the head's fields in order, enums as their enums.
        return [OutboxHead(*row) for row in rows]


@functools.lru_cache(maxsize=256)
def _pending_page(
    dialect: Dialect, of_schools: bool, up_to: bool, assessors: bool | None
) -> Prepared:
    """The statement of ``Outbox.pending_page`` for these options."""
    o = _OUTBOX.c
    columns = ", ".join(f"o.{name}" for name in OUTBOX_HEAD_COLUMNS)
    where = [
        "o.state = :pending",
        "o.period = :period",
        "o.kind = :kind",
        "o.id > :after",
    ]
    params: dict[str, TypeEngine[Any] | IdList] = {
        "pending": o.state.type,
        "period": o.period.type,
        "kind": o.kind.type,
        "after": o.id.type,
        "limit": o.id.type,
    }
    if of_schools:
        where.append("{in:r.npsn:npsns}")
        params["npsns"] = IdList("text")
    if up_to:
        where.append("o.id <= :up_to")
        params["up_to"] = o.id.type
    if assessors is not None:
        # EXISTS, not IN (subquery): PostgreSQL runs NOT IN over a large subquery as a scan
        # of the period's deliverables per entry (quadratic); EXISTS is an anti-join on
        # ix_sync_record_period_assessor.
        exists = (
            "EXISTS (SELECT 1 FROM sync_record AS penilai"
            " WHERE penilai.period = :period AND penilai.assessor_nip = o.nip)"
        )
        where.append(exists if assessors else f"NOT {exists}")
    sql = (
        f"SELECT {columns}, r.npsn FROM outbox AS o JOIN sync_record AS r"  # noqa: S608
        " ON r.nip = o.nip AND r.period = o.period AND r.kind = o.kind"
        f" WHERE {' AND '.join(where)} ORDER BY o.id LIMIT :limit"
    )
    results = [o[name].type for name in OUTBOX_HEAD_COLUMNS] + [_SYNC.c.npsn.type]
    return prepare(dialect, sql, params, results)
