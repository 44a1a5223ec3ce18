"""The source's period listing as last read (``period``), and the mapping version each
period was first planned with (``period.mapping_version``).

The version is recorded once, by the first run that plans the period, and then read: a later
release whose default differs never remaps what was delivered (design: a released mapping
version never changes, nor the version a period's records go out with, until the operator
names another).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from state.models import ListedPeriod, SyncRecord
from state.store.unit_of_work import unit_of_work

__all__ = ["Periods"]


class Periods:
    """The stored period listing and each period's mapping version."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- the source's period listing -----------------------------------------------------

    def save_listing(self, rows: Sequence[ListedPeriod]) -> None:
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
        with unit_of_work(self.engine) as session:
            session.execute(statement)

    def listing(self) -> list[ListedPeriod]:
        """The periods the source listed when last asked, oldest first."""
        with unit_of_work(self.engine) as session:
            return list(session.exec(select(ListedPeriod).order_by(col(ListedPeriod.starts_on))))

    # -- the mapping version of each period ----------------------------------------------

    def mapping(self, code: str) -> str | None:
        """The version recorded for period ``code`` (None: none yet, or not listed)."""
        with Session(self.engine) as session:
            row = session.get(ListedPeriod, code)
            return row.mapping_version if row is not None else None

    def record_mapping(self, code: str, version: str, at: dt.datetime) -> str | None:
        """Record ``version`` for period ``code`` unless one is recorded already (the first
        planner wins: two workers planning at once agree on the one kept). Returns the
        version recorded now, or None when the period is not in the stored listing."""
        with Session(self.engine) as session:
            session.execute(
                update(ListedPeriod)
                .where(
                    col(ListedPeriod.code) == code,
                    col(ListedPeriod.mapping_version).is_(None),
                )
                .values(mapping_version=version, mapping_chosen_at=at)
            )
            session.commit()
            row = session.get(ListedPeriod, code)
            return row.mapping_version if row is not None else None

    def delivered_mapping_versions(self, period: str) -> Counter[str]:
        """How many of the period's deliverables e-Kinerja holds, by the mapping version
        they went out with."""
        query = (
            select(SyncRecord.delivered_mapping_version, func.count())
            .where(
                SyncRecord.period == period,
                col(SyncRecord.delivered_hash).is_not(None),
                col(SyncRecord.delivered_mapping_version).is_not(None),
            )
            .group_by(col(SyncRecord.delivered_mapping_version))
        )
        with Session(self.engine) as session:
            return Counter({str(v): n for v, n in session.exec(query)})
