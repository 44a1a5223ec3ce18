"""The state store: queries and writes over the tables, one unit of work per batch.

Nothing here talks HTTP or knows the wire formats; the engine (``sync/``) drives it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Table, func, literal, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from state.models import (
    DeliveryKind,
    ListedPeriod,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    Run,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store.claims import _Claims
from state.store.heads import (
    DELIVERABLE_HEAD_COLUMNS,
    OUTBOX_HEAD_COLUMNS,
    DeliverableHead,
    OutboxHead,
    SourceHead,
)
from state.store.period_mappings import _PeriodMappings
from state.store.rates import _RateSlots
from state.store.reports import _Reports
from state.store.unit_of_work import unit_of_work

__all__ = ["PERIOD_WIDE", "StateStore"]

# The NPSN of the period-wide cursor and lease (one walk of every school of a period).
PERIOD_WIDE = "*"


_SOURCE: Table = SourceRecord.__table__  # type: ignore[attr-defined]
_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]


class StateStore(_Claims, _Reports, _RateSlots, _PeriodMappings):
    """Reads and writes the sync state. ``unit_of_work`` gives the one transaction of a batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def unit_of_work(self, *, commit: bool = True) -> Iterator[Session]:
        """A session whose changes commit together at the end (or roll back on error, or
        always when ``commit`` is False: that is how a dry run writes nothing)."""
        with unit_of_work(self.engine, commit=commit) as session:
            yield session

    def refresh_statistics(self) -> None:
        """Let PostgreSQL's planner see the tables as they are now (SQLite plans without
        statistics). A first sync grows them from empty faster than autovacuum analyzes
        them, and with the statistics of near-empty tables the planner joins an outbox page
        to its deliverables by scanning every deliverable of the period once per row:
        delivery became quadratic. ANALYZE reads a sample: well under a second."""
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE source_record, sync_record, outbox")

    # -- source records ------------------------------------------------------------------

    @staticmethod
    def source_records(session: Session, ids: Collection[str]) -> dict[str, SourceRecord]:
        if not ids:
            return {}
        rows = session.exec(select(SourceRecord).where(col(SourceRecord.id).in_(list(ids))))
        return {row.id: row for row in rows}

    @staticmethod
    def source_hashes(session: Session, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """{id: (content_hash, nip)} of the stored source records among ``ids``: all the
        ingest needs to tell new, changed and unchanged rows apart (no body is read)."""
        if not ids:
            return {}
        table = _SOURCE
        rows = session.execute(
            sa_select(table.c.id, table.c.content_hash, table.c.nip).where(
                table.c.id.in_(list(ids))
            )
        )
        return {row.id: (row.content_hash, row.nip) for row in rows}

    @staticmethod
    def source_heads(
        session: Session, period: str, nips: Collection[str]
    ) -> dict[str, list[SourceHead]]:
        """Every stored source record of these teachers in the period (all schools), without
        the bodies: what choosing the effective record needs (``source_bodies`` reads the
        body of the one chosen when it is not at hand)."""
        found: dict[str, list[SourceHead]] = defaultdict(list)
        if not nips:
            return found
        table = _SOURCE
        query = sa_select(
            table.c.id,
            table.c.nip,
            table.c.updated_at,
            table.c.cancelled,
            table.c.status,
            table.c.seen_at,
        ).where(table.c.period == period, table.c.nip.in_(list(nips)))
        for row in session.execute(query):
            found[row.nip].append(
                SourceHead(
                    row.id,
                    row.nip,
                    row.updated_at,
                    bool(row.cancelled),
                    SourceStatus(row.status),
                    row.seen_at,
                )
            )
        return found

    @staticmethod
    def source_bodies(session: Session, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        table = _SOURCE
        rows = session.execute(sa_select(table.c.id, table.c.body).where(table.c.id.in_(list(ids))))
        return {row.id: row.body for row in rows}

    # -- deliverables --------------------------------------------------------------------

    @staticmethod
    def sync_records(
        session: Session, period: str, nips: Collection[str]
    ) -> dict[tuple[str, DeliveryKind], SyncRecord]:
        if not nips:
            return {}
        query = select(SyncRecord).where(
            SyncRecord.period == period, col(SyncRecord.nip).in_(list(nips))
        )
        return {(row.nip, row.kind): row for row in session.exec(query)}

    @staticmethod
    def deliverable_heads(
        session: Session, period: str, nips: Collection[str]
    ) -> dict[tuple[str, DeliveryKind], DeliverableHead]:
        """``sync_records`` as plain rows (delivery reads thousands a second)."""
        if not nips:
            return {}
        t = _SYNC
        query = sa_select(*(t.c[name] for name in DELIVERABLE_HEAD_COLUMNS)).where(
            t.c.period == period, t.c.nip.in_(list(nips))
        )
        # Enum columns come back as their enums: a row is the head's fields in order.
        heads = (DeliverableHead(*row) for row in session.execute(query))
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
    def _pending_with_records(period: str, npsns: Sequence[str]) -> Select[OutboxEntry, SyncRecord]:
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
        return query

    @classmethod
    def pending_outbox(
        cls, session: Session, period: str, npsns: Sequence[str] = ()
    ) -> list[tuple[OutboxEntry, SyncRecord]]:
        """Unsent requests of the period (optionally of some schools), oldest first."""
        return [
            (entry, record)
            for entry, record in session.exec(cls._pending_with_records(period, npsns))
        ]

    @staticmethod
    def last_outbox_id(session: Session) -> int:
        """The newest outbox entry's id (0 when empty): where a delivery round stops reading,
        so the requests it writes itself (a 412's replacement) are not read back."""
        newest = session.exec(select(func.max(OutboxEntry.id))).one()
        return newest or 0

    @staticmethod
    def pending_outbox_page(
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

    # -- the source's period listing -----------------------------------------------------

    def save_periods(self, rows: Sequence[ListedPeriod]) -> None:
        """Keep the listing as the source gave it last (a period it no longer lists stays).

        One upsert: several workers starting at once each write the listing, and a read
        followed by an insert would collide."""
        if not rows:
            return
        values = [row.model_dump() for row in rows]
        dialect = self.engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert(ListedPeriod).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["code"],
            set_={
                name: statement.excluded[name]
                for name in ("kind", "starts_on", "ends_on", "deadline", "running", "listed_at")
            },
        )
        with self.unit_of_work() as session:
            session.execute(statement)

    def listed_periods(self) -> list[ListedPeriod]:
        with self.unit_of_work() as session:
            return list(session.exec(select(ListedPeriod).order_by(col(ListedPeriod.starts_on))))

    def save_run(self, run: Run) -> None:
        with self.unit_of_work() as session:
            session.merge(run)
