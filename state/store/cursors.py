"""The read position (cursor) of each school in a period: the newest ``diperbarui_pada`` read
from the source, where the next pull starts. In the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from state.models import Cursor

__all__ = ["PERIOD_WIDE", "Cursors"]

# The NPSN of the period-wide cursor and lease (one walk of every school of a period).
PERIOD_WIDE = "*"

_CURSOR: Table = Cursor.__table__  # type: ignore[attr-defined]


class Cursors:
    """Where each school's (or, with ``PERIOD_WIDE``, the period's) next pull starts."""

    @staticmethod
    def position(session: Session, period: str, npsn: str) -> dt.datetime | None:
        """The school's read position in the period (None: read it from the start)."""
        row = session.get(Cursor, (period, npsn))
        return row.updated_since if row is not None else None

    @staticmethod
    def advance(session: Session, period: str, positions: Mapping[str, dt.datetime]) -> None:
        """Move the read positions of these schools (NPSN: newest ``diperbarui_pada`` read)
        forward, never back; one upsert for the lot (a page of the period-wide walk carries
        a few dozen schools)."""
        if not positions:
            return
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(_CURSOR).values(
            [
                {"period": period, "npsn": npsn, "updated_since": when}
                for npsn, when in sorted(positions.items())
            ]
        )
        # Datetimes compare in SQL as they do in Python: PostgreSQL's timestamptz, and SQLite's
        # fixed-width UTC text (state/types.py).
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["period", "npsn"],
                set_={"updated_since": statement.excluded.updated_since},
                where=_CURSOR.c.updated_since < statement.excluded.updated_since,
            )
        )

    @staticmethod
    def reset(session: Session, period: str, npsns: Sequence[str] = ()) -> list[str]:
        """Delete the read positions of the period (some schools, or all); returns whose."""
        # The period-wide position goes too, even for some schools: the next run of every
        # school then walks the period from the start again (unchanged records are skipped
        # by their content hash), so a reset school is read in full either way.
        query = select(Cursor).where(Cursor.period == period)
        if npsns:
            query = query.where(col(Cursor.npsn).in_([*npsns, PERIOD_WIDE]))
        rows = list(session.exec(query))
        for row in rows:
            session.delete(row)
        return sorted(row.npsn for row in rows if row.npsn != PERIOD_WIDE)
