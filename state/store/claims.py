"""Claims and leases of several workers on one database: on outbox entries (who sends a
request) and on schools (who reads a school's records, or with ``PERIOD_WIDE`` the period).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection

from sqlalchemy import Engine, Table, delete, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from state.models import OutboxEntry, OutboxState, SchoolLease
from state.store.unit_of_work import unit_of_work

__all__ = ["Claims"]

_LEASE: Table = SchoolLease.__table__  # type: ignore[attr-defined]


class Claims:
    """Who holds what among several workers on one database: atomic claims on outbox
    entries and leases on reading schools."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- claims on outbox entries ----------------------------------------------------------

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
        with unit_of_work(self.engine) as session:
            taken = session.execute(
                claim.where(
                    *pending,
                    or_(
                        col(OutboxEntry.claimed_until).is_(None),
                        col(OutboxEntry.claimed_until) < now,
                        col(OutboxEntry.claimed_by) == worker,
                    ),
                ).returning(col(OutboxEntry.id))
            )
            mine = set(taken.scalars())
            if len(mine) == len(ids):
                return mine  # the usual case: one statement
            holders = session.execute(
                select(OutboxEntry.id, OutboxEntry.claimed_by).where(*pending)
            ).all()
            others = {holder for _id, holder in holders if holder is not None and holder != worker}
            dead = {holder for holder in others if orphaned(holder)}
            if not dead:
                return {entry_id for entry_id, holder in holders if holder == worker}
            session.execute(claim.where(*pending, col(OutboxEntry.claimed_by).in_(dead)))
            held = session.execute(
                select(OutboxEntry.id).where(*pending, col(OutboxEntry.claimed_by) == worker)
            )
            return set(held.scalars())

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
        with unit_of_work(self.engine) as session:
            session.execute(
                update(OutboxEntry)
                .where(
                    col(OutboxEntry.id).in_(list(entry_ids)),
                    col(OutboxEntry.claimed_by) == worker,
                )
                .values(claimed_by=None, claimed_until=None)
            )

    # -- leases on reading a school -------------------------------------------------------

    def take_school(
        self,
        session: Session,
        period: str,
        npsn: str,
        worker: str,
        *,
        now: dt.datetime,
        lease: dt.timedelta,
        orphaned: Callable[[str], bool] = lambda _owner: False,
    ) -> bool:
        """Take (or renew) the lease on reading one school's records (or the whole period),
        in the caller's transaction; False when another worker holds a live one (``orphaned``
        as in ``claim_entry``). One ``INSERT ... ON CONFLICT DO
        UPDATE ... WHERE (expired or mine) RETURNING``, atomic on both databases; a second
        statement only when another worker holds it (is that worker dead?)."""
        table = _LEASE
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        statement = insert(table).values(period=period, npsn=npsn, owner=worker, until=now + lease)
        upsert = statement.on_conflict_do_update(
            index_elements=["period", "npsn"],
            set_={"owner": statement.excluded.owner, "until": statement.excluded.until},
            where=or_(table.c.until < now, table.c.owner == worker),
        ).returning(table.c.owner)
        if session.execute(upsert).first() is not None:
            return True
        this = (table.c.period == period, table.c.npsn == npsn)
        holder = session.execute(sa_select(table.c.owner).where(*this)).scalar()
        if holder is None or holder == worker or not orphaned(holder):
            return False  # held by someone else (or just released: the next run reads it)
        taken = session.execute(
            update(table)
            .where(*this, table.c.owner == holder)
            .values(owner=worker, until=now + lease)
        )
        return bool(taken.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    def renew_school(
        session: Session, period: str, npsn: str, worker: str, *, until: dt.datetime
    ) -> None:
        """Extend the worker's lease on a school, in the caller's transaction (a page's)."""
        table = _LEASE
        session.execute(
            update(table)
            .where(table.c.period == period, table.c.npsn == npsn, table.c.owner == worker)
            .values(until=until)
        )

    def school_held_elsewhere(
        self,
        period: str,
        npsn: str,
        worker: str,
        *,
        now: dt.datetime,
        orphaned: Callable[[str], bool] = lambda _owner: False,
    ) -> bool:
        """True while another live worker holds the lease on reading the school (or, for
        ``PERIOD_WIDE``, on walking the period)."""
        table = _LEASE
        with unit_of_work(self.engine) as session:
            row = session.execute(
                sa_select(table.c.owner, table.c.until).where(
                    table.c.period == period, table.c.npsn == npsn
                )
            ).first()
        if row is None or row.owner == worker or row.until < now:
            return False
        return not orphaned(row.owner)

    def release_school(self, period: str, npsn: str, worker: str) -> None:
        with unit_of_work(self.engine) as session:
            session.execute(
                delete(SchoolLease).where(
                    col(SchoolLease.period) == period,
                    col(SchoolLease.npsn) == npsn,
                    col(SchoolLease.owner) == worker,
                )
            )
