"""The ledger's guards: the database itself refuses ``UPDATE`` and ``DELETE`` on
``ledger_entry`` (and ``TRUNCATE`` on PostgreSQL), through triggers installed at every start.

The hash chain (``state.ledger``) catches what is done behind the triggers' back.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from state.ledger import LOCK_KEY

__all__ = ["install_guards"]

_GUARD_LOCK_KEY = LOCK_KEY ^ 1  # serializes install_guards between processes starting at once

_SQLITE_GUARDS = {
    "ledger_entry_no_update": (
        "CREATE TRIGGER IF NOT EXISTS ledger_entry_no_update BEFORE UPDATE ON ledger_entry "
        "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END"
    ),
    "ledger_entry_no_delete": (
        "CREATE TRIGGER IF NOT EXISTS ledger_entry_no_delete BEFORE DELETE ON ledger_entry "
        "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END"
    ),
}
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_entry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'ledger_entry is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END
$$
"""
_PG_TRIGGER = (
    "CREATE TRIGGER ledger_entry_append_only "
    "BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_append_only()"
)
_PG_TRIGGER_STATE = (
    "SELECT tgenabled FROM pg_trigger "
    "WHERE tgrelid = to_regclass('ledger_entry') AND tgname = 'ledger_entry_append_only'"
)


def _sqlite_guards(connection: Connection) -> None:
    present = {
        name
        for (name,) in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_entry'"
        )
    }
    for name, ddl in _SQLITE_GUARDS.items():
        if name not in present:
            connection.exec_driver_sql(ddl)


def _pg_guards(connection: Connection) -> None:
    state = connection.exec_driver_sql(_PG_TRIGGER_STATE).scalar()
    if state == "A":  # present and enabled (ALWAYS): nothing to write
        return
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _GUARD_LOCK_KEY})
    state = connection.exec_driver_sql(_PG_TRIGGER_STATE).scalar()
    if state is None:
        connection.exec_driver_sql(_PG_FUNCTION)
        connection.exec_driver_sql(_PG_TRIGGER)
    if state != "A":
        # ALWAYS: it fires even under session_replication_role = replica; this also enables
        # a trigger someone disabled (ALTER TABLE ... DISABLE TRIGGER).
        connection.exec_driver_sql(
            "ALTER TABLE ledger_entry ENABLE ALWAYS TRIGGER ledger_entry_append_only"
        )


def install_guards(connection_or_engine: Connection | Engine) -> None:
    """Make the database refuse UPDATE and DELETE on ``ledger_entry`` (and TRUNCATE on
    PostgreSQL). Idempotent: writes nothing when the guards are in place; re-creates a
    dropped trigger and re-enables a disabled one. Given a connection, it works inside the
    caller's transaction; given an engine, in a transaction of its own.
    """
    if isinstance(connection_or_engine, Engine):
        with connection_or_engine.begin() as connection:
            install_guards(connection)
        return
    dialect = connection_or_engine.dialect.name
    if dialect == "sqlite":
        _sqlite_guards(connection_or_engine)
    elif dialect == "postgresql":
        _pg_guards(connection_or_engine)
    else:  # pragma: no cover - the project supports these two
        raise NotImplementedError(f"no ledger guards for {dialect}")
