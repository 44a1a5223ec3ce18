"""Making the database engine: one URL setting, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import SQLModel, create_engine

import state.models  # noqa: F401  (registers the tables on the metadata)
from state.ledger import install_guards

__all__ = ["create_schema", "make_engine"]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """The one place an engine is made. SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create the tables that do not exist yet, and the ledger's append-only guards."""
    SQLModel.metadata.create_all(engine)
    install_guards(engine)
