"""The state store: queries and writes over the tables, one unit of work per batch.

Nothing here talks HTTP or knows the wire formats; the engine (``sync/``) drives it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, delete, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from state.models import (
    Cursor,
    DeliveryKind,
    ListedPeriod,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    Run,
    SchoolLease,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)

__all__ = ["StateStore"]


def _reason_matches(code: str | None, text: str | None, wanted: str | None) -> bool:
    """``wanted`` is the answer's code (e.g. NIP_TIDAK_DITEMUKAN) or a part of the reason."""
    if not wanted:
        return True
    needle = wanted.lower()
    return needle == (code or "").lower() or needle in (text or "").lower()


class StateStore:
    """Reads and writes the sync state. ``unit_of_work`` gives the one transaction of a batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def unit_of_work(self, *, commit: bool = True) -> Iterator[Session]:
        """A session whose changes commit together at the end (or roll back on error, or
        always when ``commit`` is False: that is how a dry run writes nothing)."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                if commit:
                    session.commit()
                else:
                    session.rollback()
            except BaseException:
                session.rollback()
                raise

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
    def source_records_of(
        session: Session, period: str, nips: Collection[str]
    ) -> dict[str, list[SourceRecord]]:
        """Every stored source record of these teachers in the period (all schools)."""
        found: dict[str, list[SourceRecord]] = defaultdict(list)
        if not nips:
            return found
        query = select(SourceRecord).where(
            SourceRecord.period == period, col(SourceRecord.nip).in_(list(nips))
        )
        for row in session.exec(query):
            found[row.nip].append(row)
        return found

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
    def nips_mapped_otherwise(
        session: Session, period: str, npsns: Sequence[str], version: str
    ) -> list[str]:
        """Teachers whose planned payload was made by another mapping version."""
        query = (
            select(SyncRecord.nip)
            .where(
                SyncRecord.period == period,
                col(SyncRecord.mapping_version).is_not(None),
                SyncRecord.mapping_version != version,
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
    def outbox_entries(session: Session, ids: Collection[int]) -> dict[int, OutboxEntry]:
        if not ids:
            return {}
        rows = session.exec(select(OutboxEntry).where(col(OutboxEntry.id).in_(list(ids))))
        return {row.id: row for row in rows if row.id is not None}

    @staticmethod
    def last_outbox_id(session: Session) -> int:
        """The newest outbox entry's id (0 when empty): where a delivery round stops reading,
        so the requests it writes itself (a 412's replacement) are not read back."""
        newest = session.exec(select(func.max(OutboxEntry.id))).one()
        return newest or 0

    @classmethod
    def pending_outbox_page(
        cls,
        session: Session,
        period: str,
        npsns: Sequence[str] = (),
        *,
        kind: DeliveryKind,
        assessors: bool | None = None,
        after_id: int = 0,
        up_to_id: int | None = None,
        limit: int = 500,
    ) -> list[tuple[OutboxEntry, SyncRecord]]:
        """One page of the unsent requests of a kind, by id after ``after_id`` (keyset paging,
        so a period of any size is read in bounded memory). ``assessors``: True, only SKPs of
        teachers who are some record's penilai; False, only the others; None, all."""
        query = (
            cls._pending_with_records(period, npsns)
            .where(OutboxEntry.kind == kind, col(OutboxEntry.id) > after_id)
            .limit(limit)
        )
        if up_to_id is not None:
            query = query.where(col(OutboxEntry.id) <= up_to_id)
        if assessors is not None:
            penilai = select(SyncRecord.assessor_nip).where(SyncRecord.period == period)
            is_penilai = col(OutboxEntry.nip).in_(penilai.scalar_subquery())
            query = query.where(is_penilai if assessors else ~is_penilai)
        return [(entry, record) for entry, record in session.exec(query)]

    # -- claims (several workers on one database) ----------------------------------------

    def claim_entries(
        self,
        entry_ids: Collection[int],
        worker: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        orphaned: Callable[[str], bool] = lambda _owner: False,
    ) -> set[int]:
        """Take (or renew) a worker's claims on unsent outbox entries; returns the ids it now
        holds: not those another worker holds a live claim on, nor those no longer pending.
        Atomic UPDATEs, so two workers can never both win (PostgreSQL and SQLite alike). A
        claim whose owner ``orphaned`` says is dead is taken over at once instead of at its
        expiry."""
        if not entry_ids:
            return set()
        ids = list(entry_ids)
        pending = (col(OutboxEntry.id).in_(ids), col(OutboxEntry.state) == OutboxState.PENDING)
        claim = update(OutboxEntry).values(claimed_by=worker, claimed_until=now + lease)
        with self.unit_of_work() as session:
            session.execute(
                claim.where(
                    *pending,
                    or_(
                        col(OutboxEntry.claimed_until).is_(None),
                        col(OutboxEntry.claimed_until) < now,
                        col(OutboxEntry.claimed_by) == worker,
                    ),
                )
            )
            holders = session.execute(
                select(OutboxEntry.id, OutboxEntry.claimed_by).where(*pending)
            ).all()
            others = {holder for _id, holder in holders if holder is not None and holder != worker}
            dead = {holder for holder in others if orphaned(holder)}
            if not dead:
                return {entry_id for entry_id, holder in holders if holder == worker}
            session.execute(claim.where(*pending, col(OutboxEntry.claimed_by).in_(dead)))
            mine = session.execute(
                select(OutboxEntry.id).where(*pending, col(OutboxEntry.claimed_by) == worker)
            )
            return set(mine.scalars())

    def claim_entry(
        self,
        entry_id: int,
        worker: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        orphaned: Callable[[str], bool] = lambda _owner: False,
    ) -> bool:
        """``claim_entries`` of one entry: True when the worker now holds it."""
        return entry_id in self.claim_entries(
            [entry_id], worker, now=now, lease=lease, orphaned=orphaned
        )

    def release_entries(self, entry_ids: Collection[int], worker: str) -> None:
        """Hand back the worker's claims on these entries (for the next round or worker)."""
        if not entry_ids:
            return
        with self.unit_of_work() as session:
            session.execute(
                update(OutboxEntry)
                .where(
                    col(OutboxEntry.id).in_(list(entry_ids)),
                    col(OutboxEntry.claimed_by) == worker,
                )
                .values(claimed_by=None, claimed_until=None)
            )

    def lease_school(
        self,
        period: str,
        npsn: str,
        worker: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        orphaned: Callable[[str], bool] = lambda _owner: False,
    ) -> bool:
        """Take (or renew) the lease on reading one school's records; False when another
        worker holds a live one (``orphaned`` as in ``claim_entry``)."""
        with self.unit_of_work() as session:
            current = session.get(SchoolLease, (period, npsn))
            holder = current.owner if current is not None else None
        conditions = [col(SchoolLease.until) < now, col(SchoolLease.owner) == worker]
        if holder is not None and holder != worker and orphaned(holder):
            conditions.append(col(SchoolLease.owner) == holder)
        with self.unit_of_work() as session:
            result = session.execute(
                update(SchoolLease)
                .where(
                    col(SchoolLease.period) == period,
                    col(SchoolLease.npsn) == npsn,
                    or_(*conditions),
                )
                .values(owner=worker, until=now + lease)
            )
            if result.rowcount:  # type: ignore[attr-defined]
                return True
            if session.get(SchoolLease, (period, npsn)) is not None:
                return False  # held by someone else
        try:
            with self.unit_of_work() as session:
                session.add(SchoolLease(period=period, npsn=npsn, owner=worker, until=now + lease))
        except IntegrityError:
            return False  # another worker inserted it first
        return True

    def release_school(self, period: str, npsn: str, worker: str) -> None:
        with self.unit_of_work() as session:
            session.execute(
                delete(SchoolLease).where(
                    col(SchoolLease.period) == period,
                    col(SchoolLease.npsn) == npsn,
                    col(SchoolLease.owner) == worker,
                )
            )

    # -- cursors -------------------------------------------------------------------------

    @staticmethod
    def cursor(session: Session, period: str, npsn: str) -> dt.datetime | None:
        row = session.get(Cursor, (period, npsn))
        return row.updated_since if row is not None else None

    @staticmethod
    def set_cursor(session: Session, period: str, npsn: str, updated_since: dt.datetime) -> None:
        row = session.get(Cursor, (period, npsn))
        if row is None:
            session.add(Cursor(period=period, npsn=npsn, updated_since=updated_since))
        elif updated_since > row.updated_since:
            row.updated_since = updated_since
            session.add(row)

    @staticmethod
    def reset_cursors(session: Session, period: str, npsns: Sequence[str] = ()) -> list[str]:
        """Delete the read positions of the period (some schools, or all); returns whose."""
        query = select(Cursor).where(Cursor.period == period)
        if npsns:
            query = query.where(col(Cursor.npsn).in_(list(npsns)))
        rows = list(session.exec(query))
        for row in rows:
            session.delete(row)
        return sorted(row.npsn for row in rows)

    # -- reports ---

    @staticmethod
    def kind_status_counts(
        session: Session, period: str, npsns: Sequence[str] = ()
    ) -> dict[tuple[str, str], int]:
        """{(kind, status): count} over the period (optionally some schools)."""
        query = (
            select(SyncRecord.kind, SyncRecord.status, func.count())
            .where(SyncRecord.period == period)
            .group_by(col(SyncRecord.kind), col(SyncRecord.status))
        )
        if npsns:
            query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
        return {(str(k), str(s)): n for k, s, n in session.exec(query)}

    @staticmethod
    def quarantined_count(session: Session, period: str, npsns: Sequence[str] = ()) -> int:
        query = select(func.count()).where(
            SourceRecord.period == period, SourceRecord.status == SourceStatus.QUARANTINED
        )
        if npsns:
            query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
        return int(session.exec(query).one())

    def status_counts(
        self, period: str, npsns: Sequence[str] = ()
    ) -> dict[str, dict[tuple[str, str], int]]:
        """Per school: {(kind, status): count}, plus ("record", "quarantined") per school."""
        counts: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        with Session(self.engine) as session:
            query = (
                select(SyncRecord.npsn, SyncRecord.kind, SyncRecord.status, func.count())
                .where(SyncRecord.period == period)
                .group_by(col(SyncRecord.npsn), col(SyncRecord.kind), col(SyncRecord.status))
            )
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            for npsn, kind, status, n in session.exec(query):
                counts[npsn][(str(kind), str(status))] = n
            quarantine = (
                select(SourceRecord.npsn, func.count())
                .where(
                    SourceRecord.period == period,
                    SourceRecord.status == SourceStatus.QUARANTINED,
                )
                .group_by(col(SourceRecord.npsn))
            )
            if npsns:
                quarantine = quarantine.where(col(SourceRecord.npsn).in_(list(npsns)))
            for npsn, n in session.exec(quarantine):
                counts[npsn][("record", "quarantined")] = n
        return dict(counts)

    def quarantined(self, period: str, npsns: Sequence[str] = ()) -> list[SourceRecord]:
        return self.quarantine(period=period, npsns=npsns)

    def records(self, period: str, npsns: Sequence[str] = ()) -> list[SyncRecord]:
        with Session(self.engine) as session:
            query = select(SyncRecord).where(SyncRecord.period == period)
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            return list(session.exec(query.order_by(col(SyncRecord.npsn), col(SyncRecord.nip))))

    def failing(self, period: str, npsns: Sequence[str] = ()) -> list[SyncRecord]:
        bad = {RecordStatus.FAILED, RecordStatus.LOCKED, RecordStatus.HELD}
        return [r for r in self.records(period, npsns) if r.status in bad]

    def failures(
        self,
        *,
        period: str | None = None,
        npsns: Sequence[str] = (),
        reason: str | None = None,
        statuses: Collection[RecordStatus] = (RecordStatus.FAILED, RecordStatus.LOCKED),
    ) -> list[SyncRecord]:
        """Dead and locked deliverables; ``reason`` matches the answer's code (e.g.
        NIP_TIDAK_DITEMUKAN) or any part of the reason text, case-insensitively."""
        with Session(self.engine) as session:
            query = select(SyncRecord).where(col(SyncRecord.status).in_(list(statuses)))
            if period:
                query = query.where(SyncRecord.period == period)
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            query = query.order_by(
                col(SyncRecord.period), col(SyncRecord.npsn), col(SyncRecord.nip)
            )
            rows = list(session.exec(query))
        return [r for r in rows if _reason_matches(r.reason_code, r.reason, reason)]

    def record(self, period: str, nip: str, kind: DeliveryKind) -> SyncRecord | None:
        with Session(self.engine) as session:
            return session.get(SyncRecord, (nip, period, kind))

    def outbox_of(self, period: str, nip: str, kind: DeliveryKind) -> list[OutboxEntry]:
        """Every request ever planned for a deliverable, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(OutboxEntry)
                .where(
                    OutboxEntry.period == period,
                    OutboxEntry.nip == nip,
                    OutboxEntry.kind == kind,
                )
                .order_by(col(OutboxEntry.id))
            )
            return list(session.exec(query))

    def quarantine(
        self, *, period: str | None = None, npsns: Sequence[str] = (), reason: str | None = None
    ) -> list[SourceRecord]:
        with Session(self.engine) as session:
            query = select(SourceRecord).where(SourceRecord.status == SourceStatus.QUARANTINED)
            if period:
                query = query.where(SourceRecord.period == period)
            if npsns:
                query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
            rows = list(
                session.exec(
                    query.order_by(
                        col(SourceRecord.period), col(SourceRecord.npsn), col(SourceRecord.nip)
                    )
                )
            )
        return [r for r in rows if _reason_matches(r.reason_code, r.reason, reason)]

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
