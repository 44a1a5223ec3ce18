"""The send schedule of a rate limit shared through the database (``rate_slot``).

Every worker process and thread on one database takes its send slots from one row, updated
atomically by one statement per request: GCRA with no burst, i.e. the next slot is
``max(next_at, now) + spacing``. On PostgreSQL ``now`` is the database's clock
(``clock_timestamp()``), so workers on several hosts agree on it, and the wait comes back
as seconds from that same instant: the caller sleeps it on its own clock. SQLite has one
writer process anyway; it uses the caller's wall clock.

The rate itself adapts to 429s (AIMD, ``sync.delivery.ratelimit``): ``rate`` is the adapted
rate (None: the configured one, ``limit``), never above ``limit``.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, Engine, TextClause, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from state.models import RateSlot

__all__ = ["RateSlots"]

# Written once for both databases: PostgreSQL's greatest/least are SQLite's two-argument
# max/min; ``{now}`` is the database's clock on PostgreSQL unless a test gives one; ``{rate}``
# the adapted rate, never above the limit. What ``_sql`` fills in are fixed SQL words; every
# value is a bound parameter.
_RATE = "{least}(coalesce(rate_slot.rate, :limit), :limit)"
_NOW_PG = (
    "coalesce(CAST(:now AS double precision), "
    "CAST(extract(epoch FROM clock_timestamp()) AS double precision))"
)
# One statement per slot. On PostgreSQL ``{now}`` is read where the row is held (a caller that
# waited for another's lock is measured from when it got it), in SET and again in RETURNING.
_TAKE = """UPDATE rate_slot SET next_at = {greatest}(rate_slot.next_at, {now}) + :margin / {rate}
WHERE rate_slot.name = :name
RETURNING rate_slot.next_at - :margin / {rate} - {now}, {rate}"""
# A cut multiplies the rate by ``factor`` (not below ``floor``), at most once per ``hold_s``:
# the 429s of the requests already in flight when the first came back do not cut it again.
_CUT = """WITH t AS (SELECT {now} AS now)
UPDATE rate_slot SET rate = {greatest}(:floor, {rate} * :factor), cut_at = t.now
FROM t WHERE rate_slot.name = :name AND (rate_slot.cut_at IS NULL
  OR rate_slot.cut_at <= t.now - :hold_s OR rate_slot.cut_at > t.now)
RETURNING {rate}"""
# Back to NULL ("the configured rate") once it reaches the limit (or all but the float dust
# of the steps).
_RAISE = """UPDATE rate_slot
SET rate = CASE WHEN {rate} + :step >= :limit * 0.999999999 THEN NULL ELSE {rate} + :step END
WHERE rate_slot.name = :name RETURNING coalesce(rate_slot.rate, :limit)"""


class RateSlots:
    """The send schedules shared through the database, one ``rate_slot`` row per name."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def ensure(self, name: str) -> None:
        """The row of the schedule ``name`` exists (made once, by whoever comes first)."""
        table = RateSlot.__table__  # type: ignore[attr-defined]
        insert = pg_insert if self._postgres() else sqlite_insert
        with self.engine.begin() as connection:
            connection.execute(
                insert(table).values(name=name, next_at=0.0).on_conflict_do_nothing()
            )

    def _sql(self, template: str) -> TextClause:
        if self._postgres():
            words = {"least": "least", "greatest": "greatest", "now": _NOW_PG}
        else:
            words = {"least": "min", "greatest": "max", "now": "CAST(:now AS REAL)"}
        return text(template.format(rate=_RATE.format(**words), **words))

    def _now(self, now: float | None) -> float | None:
        """The instant a statement measures from: the database's clock on PostgreSQL (None),
        the wall clock on SQLite (one process writes)."""
        return time.time() if now is None and not self._postgres() else now

    def connect(self) -> Connection:
        """A connection of its own for ``take`` (the caller keeps it and closes it):
        each slot is then one round trip, no pool check-out (a ping) and no transaction to
        end (autocommit on PostgreSQL, where the row is held for the statement alone)."""
        connection = self.engine.connect()
        if self._postgres():
            return connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def take(
        self,
        name: str,
        *,
        limit: float,
        margin: float,
        now: float | None = None,
        connection: Connection | None = None,
    ) -> tuple[float, float]:
        """Take the next send slot of ``name``: (seconds from now until it, the rate it was
        spaced by). Slots are ``margin / rate`` apart, the rate being the adapted one, at most
        ``limit``. ``now``: seconds since the epoch (tests); default the database's clock on
        PostgreSQL, the wall clock on SQLite. ``connection``: one of
        ``connect`` (default: one from the pool, for this slot). Makes the row
        when there is none."""
        if limit <= 0:
            raise ValueError("limit must be > 0")
        params = {"name": name, "limit": limit, "margin": margin, "now": self._now(now)}
        for _ in range(2):
            if connection is not None:
                row = connection.execute(self._sql(_TAKE), params).first()
                connection.commit()  # a no-op in autocommit
            else:
                with self.connect() as own, own.begin():
                    row = own.execute(self._sql(_TAKE), params).first()
            if row is not None:
                return max(0.0, float(row[0])), float(row[1])
            self.ensure(name)
        raise RuntimeError(f"rate_slot {name!r} cannot be made")  # pragma: no cover

    def cut(
        self,
        name: str,
        *,
        limit: float,
        floor: float,
        factor: float = 0.5,
        hold_s: float = 1.0,
        now: float | None = None,
    ) -> float | None:
        """Multiply the adapted rate of ``name`` by ``factor`` (not below ``floor``), unless
        it was cut less than ``hold_s`` ago. Returns the new rate, or None when it was not
        cut (another worker's cut of the same burst of 429s came first)."""
        params = {
            "name": name,
            "limit": limit,
            "floor": floor,
            "factor": factor,
            "hold_s": hold_s,
            "now": self._now(now),
        }
        with self.engine.begin() as connection:
            row = connection.execute(self._sql(_CUT), params).first()
        return None if row is None else float(row[0])

    def raise_rate(self, name: str, *, limit: float, step: float) -> float:
        """Add ``step`` to the adapted rate of ``name``, up to ``limit`` (where it goes back to
        "the configured one"). Returns the rate now."""
        with self.engine.begin() as connection:
            row = connection.execute(
                self._sql(_RAISE), {"name": name, "limit": limit, "step": step}
            ).first()
        return limit if row is None else float(row[0])

    def get(self, name: str) -> RateSlot | None:
        """The row of the schedule ``name`` as it is (reports, tests)."""
        with Session(self.engine) as session:
            found = session.get(RateSlot, name)
            if found is not None:
                session.expunge(found)
            return found
