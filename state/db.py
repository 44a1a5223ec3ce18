"""Making the database engine: one URL setting, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, event, make_url
from sqlmodel import create_engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

# Imported for their side effect: registering every table on the metadata.
import state.models
import state.users  # noqa: F401
from state.ledger import install_guards
from state.schema import SchemaState, check, require_current, upgrade

__all__ = ["create_schema", "make_engine", "prepare_schema"]

# Seconds a SQLite connection waits for another's write lock before "database is locked".
_SQLITE_BUSY_TIMEOUT = 30.0


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """The one place an engine is made. SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if make_url(url).get_driver_name() == "psycopg":
        # No server-side prepared statements: psycopg prepares a query after five runs, and
        # PostgreSQL may then keep a generic plan made while the tables were small (a
        # sequential scan per page of a first sync: quadratic in the semester's size).
        connect_args["prepare_threshold"] = None
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)


# Switching a database file to WAL needs it to itself, and SQLite answers "database is locked"
# at once (no busy timeout) when another connection opens it at that moment: processes
# starting together on a new file. The mode is kept in the file, so only the first
# connections ever switch; they retry for as long as the busy timeout would have waited.
@retry(
    retry=retry_if_exception(lambda error: "locked" in str(error)),
    wait=wait_random(0.005, 0.05),
    stop=stop_after_delay(_SQLITE_BUSY_TIMEOUT),
    reraise=True,
)
def _use_wal(cursor: sqlite3.Cursor) -> None:
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        cursor.execute("PRAGMA journal_mode=WAL")


def prepare_schema(engine: Engine, *, auto_create: bool) -> None:
    """Make sure the schema is this release's before anything reads or writes.

    An empty database is brought to head by running the migrations when ``auto_create``
    (so ``run`` and the demo work on a fresh SQLite file with no extra step; else
    ``SchemaBehind``); a database at head is used as is; one that is behind, or has tables
    but no version, raises ``SchemaBehind`` naming ``ekinerja-sync db upgrade``; one a newer
    release upgraded raises ``SchemaAhead``. The ledger's guards are (re)installed every time:
    a start puts back a trigger someone dropped.
    """
    if auto_create and check(engine) is SchemaState.FRESH:
        upgrade(engine)  # serialized: another process starting at once waits, then no-ops
    require_current(engine)
    install_guards(engine)


def create_schema(engine: Engine) -> None:
    """``prepare_schema(engine, auto_create=True)``: kept for tests and scripts."""
    prepare_schema(engine, auto_create=True)
