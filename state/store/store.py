"""The state store: the engine, the one transaction of a batch, and the parts that read and
write the tables, each named for what it does.

Nothing here talks HTTP or knows the wire formats; the engine (``sync/``) drives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlmodel import Session

from state.models import Run
from state.store.claims import Claims
from state.store.cursors import Cursors
from state.store.deliverables import Deliverables
from state.store.outbox import Outbox
from state.store.periods import Periods
from state.store.rates import RateSlots
from state.store.reports import Reports
from state.store.sources import Sources
from state.store.unit_of_work import unit_of_work

__all__ = ["StateStore"]


class StateStore:
    """Reads and writes the sync state. ``unit_of_work`` gives the one transaction of a batch;
    the parts that take a ``session`` work in the caller's:

    - ``sources``: the stored source records (hashes, heads, bodies);
    - ``deliverables``: the deliverables (rows and plain heads);
    - ``outbox``: the unsent requests, a delivery page at a time;
    - ``claims``: claims on outbox entries and leases on schools, among several workers;
    - ``cursors``: each school's read position;
    - ``reports``: what operators, the console and the metrics read;
    - ``periods``: the source's period listing and each period's mapping version;
    - ``rate_slots``: the send schedule shared through the database.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sources = Sources()
        self.deliverables = Deliverables()
        self.outbox = Outbox()
        self.claims = Claims(engine)
        self.cursors = Cursors()
        self.reports = Reports(engine)
        self.periods = Periods(engine)
        self.rate_slots = RateSlots(engine)

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

    def save_run(self, run: Run) -> None:
        """Keep a run's summary row (made at its start, updated at its end)."""
        with self.unit_of_work() as session:
            session.merge(run)
