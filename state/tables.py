"""Every table of the state store, registered in one place: the application's ``metadata``.

Importing this module imports each module that declares tables (``models`` first: it sets
the naming convention that makes constraint names the same on SQLite and PostgreSQL), so
``state.db`` (which creates and checks the store) and ``state.schema`` (which compares it
with the migrations) both see all of them without importing each other.
"""

from __future__ import annotations

from sqlmodel import SQLModel

import state.change_requests
import state.console_sessions
import state.lifecycle
import state.login_throttle
import state.models
import state.notices
import state.schools
import state.users
from state import ledger

__all__ = ["metadata"]

# The modules above declared their tables on it; named here so nobody imports them for effect.
TABLE_MODULES = (
    state.models,
    state.users,
    state.console_sessions,
    state.lifecycle,
    state.change_requests,
    state.login_throttle,
    ledger,
)
# The school contacts and the messages that tell the schools (issue 25).
SCHOOL_TABLE_MODULES = (state.schools, state.notices)
metadata = SQLModel.metadata
