"""The state store's migrations (alembic), on SQLite and PostgreSQL.

The first test is the drift guard: the migrations run from an empty database must give
exactly the schema of the models. It fails when someone changes a model (a table, a column,
a type, an index) without adding a migration; the fix is
``python -m state.migrations revision --autogenerate -m "what changed"`` (docs/developers.md).

Then: the ledger's guards come with the migration, down to base and up again, a schema that is
behind (or ahead, or older than migrations) is refused by ``build_store`` with the message
naming ``ekinerja-sync db upgrade``, and ``db upgrade`` / ``db check`` through the CLI.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, exc, inspect, text
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from state import ledger, schema
from state.db import make_engine, prepare_schema
from state.ledger import LedgerEvent
from state.ledger_guards import install_guards
from state.schema import SchemaAhead, SchemaBehind, SchemaError, SchemaState
from sync.bootstrap import build_store
from sync.cli import app, main
from sync.settings import Settings, load_settings

runner = CliRunner()
T0 = dt.datetime(2025, 3, 1, 1, 2, 3, tzinfo=dt.UTC)
# A throwaway revision after this release's head, written into a copy of the migrations
# (see ``next_release``): the release after this one.
HEAD = schema.head_revision()
NEXT = f"{int(HEAD) + 1:04d}"
NEXT_REVISION = f'''"""Throwaway test revision: a note on every run."""

import sqlalchemy as sa
from alembic import op

revision = "{NEXT}"
down_revision = "{HEAD}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("note")
'''


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    engine = make_engine(state_url)
    yield engine
    engine.dispose()


@pytest.fixture
def config_file(state_url: str, tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "{state_url}"\n', encoding="utf-8")
    return config


@pytest.fixture
def next_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the migrations with one more revision (``NEXT``): the next release."""
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / f"{NEXT}_run_note.py").write_text(NEXT_REVISION, encoding="utf-8")
    monkeypatch.setattr(schema, "MIGRATIONS", copy)
    return copy


def _settings(url: str) -> Settings:
    return load_settings(None, overrides={"state": {"url": url}})


def _db(config: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--config", str(config), "db", *args])
    return result.exit_code, result.stdout, result.stderr


def _flat(text_: str) -> str:
    """Console output with its line wrapping undone."""
    return " ".join(text_.split())


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {schema.VERSION_TABLE}


def _append(engine: Engine, n: int = 1) -> None:
    with Session(engine) as session:
        for i in range(n):
            ledger.append(session, LedgerEvent(actor="cli", action="test", outcome=f"{i}"), at=T0)
        session.commit()


# -- the drift guard ---------------------------------------------------------------------------


def test_migrations_from_empty_give_exactly_the_models(engine: Engine) -> None:
    """Drift guard: fails when a model changed without a migration. Add one with
    ``python -m state.migrations revision --autogenerate -m "..."`` and read it."""
    assert schema.check(engine) is SchemaState.FRESH
    assert schema.upgrade(engine) == (None, schema.head_revision())
    found = schema.differences(engine)
    assert found == [], (
        "the models and the migrations differ: add a migration with "
        '`python -m state.migrations revision --autogenerate -m "..."`\n'
        + "\n".join(map(schema.describe_difference, found))
    )
    assert schema.check(engine) is SchemaState.CURRENT
    assert schema.current_revision(engine) == schema.head_revision()


def test_postgres_enum_types_have_the_models_members(engine: Engine) -> None:
    """Drift guard for what alembic does not compare: the members of PostgreSQL enum types
    (a new member needs ``ALTER TYPE ... ADD VALUE`` in a migration, written by hand)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("enum types are PostgreSQL's")
    schema.upgrade(engine)
    wanted = {
        column.type.name: list(column.type.enums)
        for table in SQLModel.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, sa.Enum) and column.type.name
    }
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e "
                "ON e.enumtypid = t.oid ORDER BY t.typname, e.enumsortorder"
            )
        ).all()
    found: dict[str, list[str]] = {}
    for name, label in rows:
        found.setdefault(name, []).append(label)
    assert found == wanted


def test_one_head_numbered_revisions() -> None:
    script = ScriptDirectory.from_config(schema.alembic_config())
    assert len(script.get_heads()) == 1
    assert all(rev.revision.isdigit() for rev in script.walk_revisions())


# -- guards, down and up ---------------------------------------------------------------------


def test_the_migration_installs_the_ledger_guards(engine: Engine) -> None:
    # alembic's own command, so this is the migration's doing (schema.upgrade would also
    # call install_guards at head).
    command.upgrade(schema.alembic_config(engine=engine), "head")
    _append(engine, 2)
    for statement in ("UPDATE ledger_entry SET outcome = 'forged'", "DELETE FROM ledger_entry"):
        with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with Session(engine) as session:
        assert ledger.verify(session).count == 2


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    head = schema.head_revision()
    schema.upgrade(engine)
    assert schema.downgrade(engine, "base") == (head, None)
    assert _tables(engine) == set()
    assert schema.check(engine) is SchemaState.FRESH
    if engine.dialect.name == "postgresql":  # nothing left behind: types, the guard function
        with engine.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT typname FROM pg_type WHERE typtype = 'e' UNION ALL "
                    "SELECT proname FROM pg_proc WHERE proname = 'ledger_entry_append_only'"
                )
            ).all()
        assert left == []
    assert schema.upgrade(engine) == (None, head)
    assert schema.differences(engine) == []
    _append(engine)
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_entry")


# -- what build_store does with each state -----------------------------------------------------


def test_build_store_creates_an_empty_database(state_url: str, engine: Engine) -> None:
    store = build_store(_settings(state_url))
    store.engine.dispose()
    assert schema.check(engine) is SchemaState.CURRENT
    assert {"ledger_entry", "sync_record", "outbox"} <= _tables(engine)


def test_prepare_schema_without_auto_create_refuses_an_empty_database(engine: Engine) -> None:
    with pytest.raises(SchemaBehind, match="the state store is empty"):
        prepare_schema(engine, auto_create=False)
    assert _tables(engine) == set()


def test_starting_at_once_on_an_empty_database(state_url: str) -> None:
    """Several processes (here threads, each with its own engine) start on an empty store:
    one creates it, the others wait for it and find it at head."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        engine = make_engine(state_url)
        try:
            barrier.wait()
            prepare_schema(engine, auto_create=True)
        except BaseException as error:
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = make_engine(state_url)
    try:
        assert schema.check(engine) is SchemaState.CURRENT
    finally:
        engine.dispose()


def test_a_new_sqlite_file_busy_at_the_first_connect_is_waited_for(tmp_path: Path) -> None:
    """Switching a file to WAL while another connection writes it in the old journal mode is
    refused at once, busy timeout or not: processes starting together on a new file hit
    this. The first connect waits for the file instead of failing."""
    import sqlite3

    path = tmp_path / "state.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")  # a write lock on a file not yet in WAL
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # what SQLite does
        sqlite3.connect(path, timeout=30).execute("PRAGMA journal_mode=WAL")
    release = threading.Timer(0.3, writer.execute, ["COMMIT"])
    release.start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        release.join()
        engine.dispose()
        writer.close()


def test_a_schema_behind_is_refused_then_db_upgrade_fixes_it(
    state_url: str, engine: Engine, config_file: Path, next_release: Path
) -> None:
    schema.upgrade(engine, HEAD)  # made by this release: behind the next
    _append(engine, 3)
    assert schema.check(engine) is SchemaState.BEHIND

    with pytest.raises(SchemaBehind) as refused:
        build_store(_settings(state_url))
    assert str(refused.value) == (
        f"the state store's schema is at {HEAD}, this release needs {NEXT}: "
        "run `ekinerja-sync db upgrade`"
    )

    code, out, err = _db(config_file, "check")
    assert code == 1
    assert "run `ekinerja-sync db upgrade`" in _flat(err)
    code, out, _ = _db(config_file, "current")
    assert code == 0
    assert f"current: {HEAD}" in _flat(out)
    assert f"this release: {NEXT}" in _flat(out)
    assert "state: behind" in _flat(out)

    code, out, err = _db(config_file, "upgrade")
    assert (code, err) == (0, "")
    assert f"schema upgraded from {HEAD} to {NEXT}" in _flat(out)
    code, out, _ = _db(config_file, "upgrade")
    assert code == 0
    assert f"already at {NEXT}" in _flat(out)
    assert _db(config_file, "check")[0] == 0

    store = build_store(_settings(state_url))
    try:
        assert "note" in {c["name"] for c in inspect(store.engine).get_columns("run")}
        with Session(store.engine) as session:  # the data came through, the chain is sound
            assert ledger.verify(session).count == 3
    finally:
        store.engine.dispose()


def test_the_command_line_stops_on_a_schema_behind_with_exit_2(
    engine: Engine,
    config_file: Path,
    next_release: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Any command that opens the store (here ``status``; the daemon alike) stops with the
    message, through the real entry point."""
    schema.upgrade(engine, HEAD)
    monkeypatch.setattr(
        sys, "argv", ["ekinerja-sync", "--config", str(config_file), "status", "-p", "2025-1"]
    )
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    err = _flat(capsys.readouterr().err)
    assert f"error: the state store's schema is at {HEAD}, this release needs {NEXT}" in err
    assert "run `ekinerja-sync db upgrade`" in err
    assert "Traceback" not in err


def test_a_schema_ahead_is_refused(state_url: str, engine: Engine, config_file: Path) -> None:
    schema.upgrade(engine)
    with engine.begin() as conn:  # as if a newer release had upgraded it
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    assert schema.check(engine) is SchemaState.AHEAD
    with pytest.raises(SchemaAhead, match="at 0999, which this release does not know"):
        build_store(_settings(state_url))
    code, _, err = _db(config_file, "check")
    assert code == 2
    assert "a newer release of ekinerja-sync upgraded it" in _flat(err)
    code, _, err = _db(config_file, "upgrade")
    assert code == 2
    assert schema.current_revision(engine) == "0999"


def test_a_store_from_before_migrations_is_adopted_by_db_upgrade(
    state_url: str, engine: Engine, config_file: Path
) -> None:
    SQLModel.metadata.create_all(engine)  # what create_schema did before migrations
    install_guards(engine)
    _append(engine, 2)
    assert schema.check(engine) is SchemaState.UNVERSIONED
    with pytest.raises(SchemaBehind, match=r"has no version .* run `ekinerja-sync db upgrade`"):
        build_store(_settings(state_url))
    code, out, err = _db(config_file, "upgrade")
    assert (code, err) == (0, "")
    assert f"schema upgraded from nothing to {schema.head_revision()}" in _flat(out)
    store = build_store(_settings(state_url))
    store.engine.dispose()
    with Session(engine) as session:
        assert ledger.verify(session).count == 2


def test_unknown_tables_without_a_version_are_not_touched(
    engine: Engine, config_file: Path
) -> None:
    SQLModel.metadata.tables["cursor"].create(engine)
    code, _, err = _db(config_file, "upgrade")
    assert code == 2
    assert "they are not the ones this release expects (table missing" in _flat(err)
    assert _tables(engine) == {"cursor"}
    assert schema.current_revision(engine) is None
    with pytest.raises(SchemaError):
        schema.upgrade(engine)


def test_an_unknown_target_revision_is_an_error(engine: Engine, config_file: Path) -> None:
    code, _, err = _db(config_file, "upgrade", "--revision", "0777")
    assert code == 2
    assert "cannot upgrade to '0777'" in _flat(err)


# -- regenerating ------------------------------------------------------------------------------


def test_autogenerate_brings_the_migrations_to_the_models(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m state.migrations revision --autogenerate`` on a copy of the migrations:
    whatever the models have that the migrations lack, the revision it writes adds (and that
    revision runs on both databases)."""
    from state.migrations.__main__ import main as migrations_main

    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS", copy)
    before = set((copy / "versions").glob("*.py"))
    migrations_main(["revision", "--autogenerate", "-m", "catch up"])
    written = set((copy / "versions").glob("*.py")) - before
    assert all(path.name.endswith("_catch_up.py") for path in written)
    schema.upgrade(engine)
    assert schema.differences(engine) == []
    schema.downgrade(engine, "base")
    assert _tables(engine) == set()
