"""The state store's schema version: alembic migrations, run from the package.

The migrations live in ``state/migrations`` (shipped in the wheel) and run with a config made
here, in code: no ``alembic.ini`` is needed at run time. ``check`` says where a database
stands against this release's ``head_revision``:

- ``fresh``: no tables at all; ``upgrade`` creates everything (the first ``run`` does it too);
- ``current``: at this release's head: used as is;
- ``behind``: at an older revision: ``ekinerja-sync db upgrade`` brings it to head;
- ``ahead``: at a revision this release does not know: a newer release upgraded it;
- ``unversioned``: tables but no version: made before migrations existed (``create_all``).
  ``upgrade`` adopts it (stamps head) when its tables are exactly this release's; otherwise
  it says what differs and changes nothing.

Errors, all ``SchemaError``: ``SchemaBehind`` (its message names the command that fixes it),
``SchemaAhead`` and ``SchemaMismatch`` (an unversioned database that is not this release's).

Upgrades are serialized, so processes starting at once on an empty database do not both
create it: on PostgreSQL a transaction-scoped advisory lock (the migrations run in that one
transaction: DDL is transactional there); on SQLite the upgrade first makes its transaction
the database's one writer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from state import tables
from state.ledger_guards import install_guards

__all__ = [
    "MIGRATIONS",
    "UPGRADE_COMMAND",
    "VERSION_TABLE",
    "SchemaAhead",
    "SchemaBehind",
    "SchemaError",
    "SchemaMismatch",
    "SchemaState",
    "alembic_config",
    "check",
    "current_revision",
    "describe_difference",
    "differences",
    "downgrade",
    "head_revision",
    "require_current",
    "target_metadata",
    "upgrade",
]

UPGRADE_COMMAND = "ekinerja-sync db upgrade"
# The migrations folder of the package. Tests point it at a copy with extra revisions.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key of schema upgrades: the first 8 bytes of sha256("ekinerja-sync
# schema upgrade") as a signed 64-bit integer (any constant every process agrees on).
_UPGRADE_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"ekinerja-sync schema upgrade").digest()[:8], "big", signed=True
)


class SchemaState(StrEnum):
    FRESH = "fresh"
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"
    UNVERSIONED = "unversioned"


class SchemaError(Exception):
    """The state store's schema does not fit this release; the message says what to do."""


class SchemaBehind(SchemaError):
    """The schema is older than this release needs (or has no version yet)."""

    def __init__(self, current: str | None, head: str, *, empty: bool = False) -> None:
        self.current = current
        self.head = head
        if current is not None:
            where = f"the state store's schema is at {current}"
        elif empty:
            where = "the state store is empty"
        else:
            where = "the state store's schema has no version (its tables predate migrations)"
        super().__init__(f"{where}, this release needs {head}: run `{UPGRADE_COMMAND}`")


class SchemaAhead(SchemaError):
    """The schema is at a revision this release does not know: a newer release upgraded it."""

    def __init__(self, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the state store's schema is at {current}, which this release does not know (it "
            f"needs {head}): a newer release of ekinerja-sync upgraded it; run that release, "
            f"or restore the backup taken before the upgrade"
        )


class SchemaMismatch(SchemaError):
    """An unversioned database whose tables are not exactly this release's."""

    def __init__(self, found: list[str]) -> None:
        self.found = found
        shown = "; ".join(found[:10]) + (f"; and {len(found) - 10} more" if len(found) > 10 else "")
        super().__init__(
            "the state store has tables but no schema version, and they are not the ones this "
            f"release expects ({shown}); nothing was changed: point state.url at the store an "
            "earlier release made, or at an empty database"
        )


def target_metadata() -> MetaData:
    """The metadata of every table of the application (what the migrations must produce)."""
    return tables.metadata


def alembic_config(*, connection: Connection | None = None, engine: Engine | None = None) -> Config:
    """An alembic config made in code; ``env.py`` runs on the connection (or engine) given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    # Files are named 0002_add_users.py; the revision ids are the numbers (see __main__).
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    config.attributes["engine"] = engine
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """This release's schema revision (the one head of the migrations)."""
    head = _script().get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise SchemaError(f"no migrations found in {MIGRATIONS}")
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never upgraded, or downgraded to base)."""
    with engine.connect() as connection:
        return _current(connection)


def _state(connection: Connection) -> tuple[SchemaState, str | None, str]:
    head = head_revision()
    current = _current(connection)
    if current is None:
        tables = set(inspect(connection).get_table_names()) - {VERSION_TABLE}
        return (SchemaState.UNVERSIONED if tables else SchemaState.FRESH), None, head
    if current == head:
        return SchemaState.CURRENT, current, head
    try:
        _script().get_revision(current)
    except CommandError:
        return SchemaState.AHEAD, current, head
    return SchemaState.BEHIND, current, head


def check(engine: Engine) -> SchemaState:
    """Where the database stands against this release (see the module docstring)."""
    with engine.connect() as connection:
        return _state(connection)[0]


def require_current(engine: Engine) -> None:
    """Raise the ``SchemaError`` that says what to do unless the schema is at head."""
    with engine.connect() as connection:
        state, current, head = _state(connection)
    if state is SchemaState.AHEAD:
        assert current is not None
        raise SchemaAhead(current, head)
    if state is not SchemaState.CURRENT:
        raise SchemaBehind(current, head, empty=state is SchemaState.FRESH)


def differences(connection_or_engine: Connection | Engine) -> list[Any]:
    """What differs between the database and the models, as alembic's autogenerate sees it
    (tables, columns, types, nullability, indexes, constraints): empty when they agree."""
    if isinstance(connection_or_engine, Engine):
        with connection_or_engine.connect() as connection:
            return differences(connection)
    context = MigrationContext.configure(
        connection_or_engine,
        opts={"compare_type": True, "render_as_batch": True},
    )
    return list(compare_metadata(context, target_metadata()))


@contextmanager
def _serialized(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other upgrade runs beside (see the module docstring)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK_KEY}
            )
        elif connection.dialect.name == "sqlite":
            # Take the database's write lock first (waiting, with the busy timeout, for
            # another upgrade to commit): a deferred transaction that read first could be
            # refused at once ("database is locked") when it then tried to write.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            # The same table alembic makes; the DDL after it runs in this one transaction.
            connection.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
            )
            connection.exec_driver_sql(
                f"UPDATE {VERSION_TABLE} SET version_num = version_num WHERE 0"  # noqa: S608
            )
        yield connection


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Run the migrations up to ``revision``; returns (revision before, revision after).

    A database made before migrations existed is adopted (stamped at head) when its tables
    are exactly this release's; ``SchemaMismatch`` otherwise, ``SchemaAhead`` when a newer
    release upgraded it. At head, the ledger's append-only guards are (re)installed.
    """
    with _serialized(engine) as connection:
        state, before, head = _state(connection)
        if state is SchemaState.AHEAD:
            assert before is not None
            raise SchemaAhead(before, head)
        if state is SchemaState.UNVERSIONED:
            found = differences(connection)
            if found:
                raise SchemaMismatch([describe_difference(diff) for diff in found])
            command.stamp(alembic_config(connection=connection), "head")
        try:
            command.upgrade(alembic_config(connection=connection), revision)
        except CommandError as exc:  # e.g. an unknown revision, or one below the current
            raise SchemaError(f"cannot upgrade to {revision!r}: {exc}") from exc
        after = _current(connection)
        if after == head:
            install_guards(connection)
    return before, after


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    """Run the migrations down to ``revision`` (``base``: no tables); (before, after)."""
    with _serialized(engine) as connection:
        before = _current(connection)
        try:
            command.downgrade(alembic_config(connection=connection), revision)
        except CommandError as exc:
            raise SchemaError(f"cannot downgrade to {revision!r}: {exc}") from exc
        return before, _current(connection)


def describe_difference(diff: Any) -> str:
    """One difference of ``compare_metadata`` in words: ("add_table", Table) -> "add_table
    console_user"; column and index changes name their table and column."""
    if isinstance(diff, list):  # modify_* changes of one column come grouped
        return ", ".join(describe_difference(d) for d in diff)
    kind, *rest = diff
    names = []
    for item in rest:
        name = getattr(item, "name", None)
        if isinstance(item, str) or name is None:
            continue
        table = getattr(getattr(item, "table", None), "name", None)
        names.append(f"{table}.{name}" if table else str(name))
    if kind.startswith("modify_") and len(rest) >= 3:
        names = [f"{rest[1]}.{rest[2]}"]
    what = {
        "add_table": "table missing",
        "remove_table": "unexpected table",
        "add_column": "column missing",
        "remove_column": "unexpected column",
        "add_index": "index missing",
        "remove_index": "unexpected index",
    }.get(kind, kind.replace("_", " "))
    return f"{what} {' '.join(names)}".strip()
