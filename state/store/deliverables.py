"""The deliverables (``sync_record``: one SKP or penilaian of a teacher in a period), in the
caller's transaction."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlmodel import Session, col, select

from state.models import DeliveryKind, RecordStatus, SyncRecord
from state.store.heads import DELIVERABLE_HEAD_COLUMNS, DeliverableHead
from state.store.prepared import IdList, Prepared, connection_of, prepare

__all__ = ["Deliverables"]

_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]


class Deliverables:
    """Reads of the deliverables that planning and delivery make: rows, heads, and which
    teachers another mapping version planned."""

    @staticmethod
    def records(
        session: Session, period: str, nips: Collection[str]
    ) -> dict[tuple[str, DeliveryKind], SyncRecord]:
        """{(nip, kind): row} of these teachers' deliverables in the period."""
        if not nips:
            return {}
        query = select(SyncRecord).where(
            SyncRecord.period == period, col(SyncRecord.nip).in_(list(nips))
        )
        return {(row.nip, row.kind): row for row in session.exec(query)}

    @staticmethod
    def heads(
        session: Session | Connection, period: str, nips: Collection[str]
    ) -> dict[tuple[str, DeliveryKind], DeliverableHead]:
        """``records`` as plain rows (delivery reads thousands a second), by one prepared
        statement (``state.store.prepared``)."""
        if not nips:
            return {}
        connection = connection_of(session)
        rows = _heads(connection.dialect).run(connection, period=period, nips=list(nips))
        # A row is the head's fields in order, enums as their enums.
        heads = (DeliverableHead(*row) for row in rows)
        return {(head.nip, head.kind): head for head in heads}

    @staticmethod
    def nips_mapped_otherwise(
        session: Session, period: str, npsns: Sequence[str], version: str
    ) -> list[str]:
        """Teachers whose planned payload was made by another mapping version. A refused
        deliverable does not count: it waits for a replay whatever the mapping (the replay
        plans it with the version active then), so a switch has nothing to plan for it."""
        query = (
            select(SyncRecord.nip)
            .where(
                SyncRecord.period == period,
                col(SyncRecord.mapping_version).is_not(None),
                SyncRecord.mapping_version != version,
                SyncRecord.status != RecordStatus.FAILED,
            )
            .distinct()
        )
        if npsns:
            query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
        return sorted(session.exec(query))


@functools.lru_cache(maxsize=64)
def _heads(dialect: Dialect) -> Prepared:
    """The statement of ``Deliverables.heads``."""
    t = _SYNC.c
    columns = ", ".join(DELIVERABLE_HEAD_COLUMNS)
    return prepare(
        dialect,
        f"SELECT {columns} FROM sync_record WHERE period = :period AND {{in:nip:nips}}",  # noqa: S608
        {"period": t.period.type, "nips": IdList("text")},
        [t[name].type for name in DELIVERABLE_HEAD_COLUMNS],
    )
