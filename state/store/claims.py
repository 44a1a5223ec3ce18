"""Claims and leases of several workers on one database: on outbox entries (who sends a
request) and on schools (who reads a school's records, or with ``PERIOD_WIDE`` the period).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Collection

from sqlalchemy import Engine, Table, delete, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlmodel import Session, col

from state.models import OutboxEntry, OutboxState, SchoolLease
from state.store.prepared import IdList, Prepared, prepare
from state.store.unit_of_work import unit_of_work

__all__ = ["Claims"]

_LEASE: Table = SchoolLease.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=64)
def _claim(dialect: Dialect) -> Prepared:
    """The claim of a page: one atomic ``UPDATE ... RETURNING`` (two workers never both win)."""
    c = _OUTBOX.c
    # SQLite: ``+state`` keeps its planner on the primary key (an index lookup per id); with
    # ``state`` it may walk ix_outbox_pending_page over every unsent entry of the store.
    state = "+state" if dialect.name == "sqlite" else "state"
    return prepare(
        dialect,
        f"""UPDATE outbox SET claimed_by = :worker, claimed_until = :until
        WHERE {{in:id:ids}} AND {state} = :pending
        AND (claimed_until IS NULL OR claimed_until < :now OR claimed_by = :worker)
        RETURNING id""",  # noqa: S608 (the statement's own words, no value)
        {
            "worker": c.claimed_by.type,
            "until": c.claimed_until.type,
            "ids": IdList("int"),
            "pending": c.state.type,
            "now": c.claimed_until.type,
        },
    )


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
        o = _OUTBOX.c
        with self.engine.begin() as connection:
            # The usual case, one prepared statement (``state.store.prepared``): every entry
            # free, expired or already this worker's.
            taken = _claim(self.engine.dialect).run(
                connection,
                worker=worker,
                until=now + lease,
                ids=ids,
                pending=OutboxState.PENDING,
                now=now,
            )
            mine = {row[0] for row in taken}
            if len(mine) == len(ids):
                return mine
            pending = (o.id.in_(ids), o.state == OutboxState.PENDING)
            holders = connection.execute(sa_select(o.id, o.claimed_by).where(*pending)).all()
            others = {holder for _id, holder in holders if holder is not None and holder != worker}
            dead = {holder for holder in others if orphaned(holder)}
            if not dead:
                return {entry_id for entry_id, holder in holders if holder == worker}
            connection.execute(
                update(_OUTBOX)
                .where(*pending, o.claimed_by.in_(dead))
                .values(claimed_by=worker, claimed_until=now + lease)
            )
            held = connection.execute(sa_select(o.id).where(*pending, o.claimed_by == worker))
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
