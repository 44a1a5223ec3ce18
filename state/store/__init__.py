"""The state store: queries and writes over the tables, one unit of work per batch.

``StateStore`` (``state.store.store``) holds the engine and its parts; the plain rows the
engine reads by the thousand and the set-based writes are importable from here too.
"""

from __future__ import annotations

from state.store.claims import Claims
from state.store.cursors import PERIOD_WIDE, Cursors
from state.store.deliverables import Deliverables
from state.store.heads import DeliverableHead, OutboxHead, SourceHead
from state.store.outbox import Outbox
from state.store.periods import Periods
from state.store.rates import RateSlots
from state.store.reports import WAITING_REASONS, Reports
from state.store.rows import close_entries, insert_rows, mark_delivered, update_rows
from state.store.sources import Sources
from state.store.store import StateStore
from state.store.unit_of_work import unit_of_work

__all__ = [
    "PERIOD_WIDE",
    "WAITING_REASONS",
    "Claims",
    "Cursors",
    "DeliverableHead",
    "Deliverables",
    "Outbox",
    "OutboxHead",
    "Periods",
    "RateSlots",
    "Reports",
    "SourceHead",
    "Sources",
    "StateStore",
    "close_entries",
    "insert_rows",
    "mark_delivered",
    "unit_of_work",
    "update_rows",
]
