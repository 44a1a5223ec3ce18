"""Making the database engine: one URL setting, SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import create_engine
from tenacity import retry, retry_if_exception, stop_after_delay, wait_random

from state.canonical import canonical_json

# Imported for their side effect: registering every table on the metadata.
from state.ledger_guards import install_guards
from state.schema import SchemaState, check, require_current, upgrade

__all__ = [
    "StoreUnusable",
    "create_schema",
    "make_engine",
    "open_engine",
    "prepare_schema",
    "require_existing",
    "safe_url",
    "sqlite_path",
]

# Seconds a SQLite connection waits for another's write lock before "database is locked".
_SQLITE_BUSY_TIMEOUT = 30.0


class StoreUnusable(Exception):
    """The state store cannot be opened; the message says where it looked and what to do."""


_ENV = "EKINERJA_SYNC_STATE__URL"


def _setting(url: str) -> str:
    """The setting that gave ``url``, to name in a message: the environment wins over the
    config file (sync/settings.py), so a URL equal to the variable's came from it."""
    return _ENV if os.environ.get(_ENV) == url else "state.url"


def _where(url: str) -> str:
    return f"from {_ENV}" if _setting(url) == _ENV else f"state.url in the config, or {_ENV}"


def safe_url(url: str) -> str:
    """The state URL without a password, to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a URL that cannot be read)"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None: not SQLite, in memory, or a ``file:`` URI)."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def require_existing(url: str) -> None:
    """``StoreUnusable`` naming the path when ``url`` is a SQLite file that does not exist."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreUnusable(
            f"no state store at {path.resolve()} ({_where(url)}): is this the right directory or "
            "URL? A new store is made only on request: `ekinerja-sync db upgrade` (or "
            "`run --create-store`)"
        )


def open_engine(url: str, *, create: bool = False) -> Engine:
    """The engine of the state store at ``url``, connected once to prove it can be used.

    Without ``create`` a SQLite file that does not exist is not made: ``StoreUnusable``
    names the path (a command run in the wrong directory must not start an empty store).
    Every reason a store cannot be opened (no driver, no server, no database, refused
    credentials, a directory that is not there) is a ``StoreUnusable`` in one sentence.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnusable(
            f"{_setting(url)} is not a database URL; e.g. sqlite:///ekinerja-sync.db "
            "or postgresql+psycopg://user@host/db"
        ) from None
    path = sqlite_path(url)
    if not create:
        require_existing(url)
    try:
        engine = make_engine(url)
    except (ImportError, NoSuchModuleError) as exc:
        raise StoreUnusable(_no_driver(parsed, exc)) from None
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        raise StoreUnusable(_cannot_connect(parsed, path, exc, _setting(url))) from None
    return engine


def _no_driver(url: URL, exc: Exception) -> str:
    if url.get_backend_name() == "postgresql":
        return (
            f"the state store {safe_url(str(url))} is PostgreSQL, and its driver (psycopg) is "
            "not installed: pip install 'ekinerja-sync[postgres]'"
        )
    return f"the state store {safe_url(str(url))} needs a database driver that is missing: {exc}"


def _cannot_connect(url: URL, path: Path | None, exc: DBAPIError, setting: str) -> str:
    shown = url.render_as_string(hide_password=True)
    if path is not None:
        return (
            f"cannot open the SQLite state store {path.resolve()}: {exc.orig} (does its "
            "directory exist, and may this user write there?)"
        )
    # psycopg adds a hint on a second line ("Is the server running ...?"): the first says it.
    said = " ".join((str(exc.orig).strip().splitlines() or [""])[0].split())
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    if "does not exist" in said and (found := re.search(r'database "([^"]+)"', said)):
        # The server the URL names, so the command works from this machine as it is.
        where = f"-h {url.host} " if url.host else ""
        where += f"-p {url.port} " if url.port else ""
        return (
            f'the database "{found.group(1)}" does not exist on the PostgreSQL server at '
            f"{server}: create it (createdb {where}-O {url.username or 'USER'} "
            f"{found.group(1)}), or correct {setting} ({shown})"
        )
    if "refused" in said or "resolve host" in said or "timeout" in said.lower():
        return (
            f"cannot reach PostgreSQL at {server} for the state store {shown}: "
            f"{_last_words(said)}; start PostgreSQL, or correct {setting}"
        )
    return f"the state store {shown} cannot be used: {_last_words(said)}"


def _last_words(said: str) -> str:
    """psycopg's "connection failed: connection to server at ... failed: FATAL: X" -> "X"."""
    return said.rsplit("failed: ", 1)[-1].removeprefix("FATAL:").strip()[:300]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """The one place an engine is made. SQLite gets foreign keys, WAL and a busy timeout.

    JSON columns (a source record as read, a run's summary) are written as canonical JSON:
    the same value as ``json.dumps`` writes (read back alike), in orjson's time; a page's
    source records took 8 % of the ingest in ``json.dumps`` alone."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": _SQLITE_BUSY_TIMEOUT},
            json_serializer=canonical_json,
        )

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
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        connect_args=connect_args,
        json_serializer=canonical_json,
    )


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
