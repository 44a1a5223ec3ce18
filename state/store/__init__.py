"""The state store: queries and writes over the tables, one unit of work per batch.

``StateStore`` lives in ``state.store.store``; the plain rows the engine reads by the
thousand and the set-based writes are importable from here too.
"""

from __future__ import annotations

from state.store.heads import DeliverableHead, OutboxHead, SourceHead
from state.store.rows import close_entries, insert_rows, mark_delivered, update_rows
from state.store.store import PERIOD_WIDE, StateStore
from state.store.unit_of_work import unit_of_work

__all__ = [
    "PERIOD_WIDE",
    "DeliverableHead",
    "OutboxHead",
    "SourceHead",
    "StateStore",
    "close_entries",
    "insert_rows",
    "mark_delivered",
    "unit_of_work",
    "update_rows",
]
