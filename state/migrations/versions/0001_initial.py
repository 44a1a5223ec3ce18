"""Initial schema: the sync state, the outbox, runs, cursors, leases and the audit ledger
(with its append-only guards).

Revision ID: 0001
Revises:
Create Date: 2025-06-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Enums are stored by member name; on PostgreSQL each is a type of its own (deliverykind is
# shared by two tables: SQLAlchemy creates it once).
DELIVERY_KIND = sa.Enum("SKP", "ASSESSMENT", name="deliverykind")
OUTBOX_ACTION = sa.Enum("CREATE_SKP", "UPDATE_SKP", "CREATE_ASSESSMENT", name="outboxaction")
OUTBOX_STATE = sa.Enum("PENDING", "DONE", "DEAD", "SUPERSEDED", name="outboxstate")
SOURCE_STATUS = sa.Enum("VALID", "QUARANTINED", name="sourcestatus")
RECORD_STATUS = sa.Enum(
    "WAITING",
    "PENDING",
    "HELD",
    "DELIVERED",
    "FAILED",
    "LOCKED",
    "CANCELLED",
    "CANCELLED_AFTER_DELIVERY",
    name="recordstatus",
)
ENUMS = (DELIVERY_KIND, OUTBOX_ACTION, OUTBOX_STATE, SOURCE_STATUS, RECORD_STATUS)

# The ledger's guards as state.ledger_guards.install_guards writes them, copied here so that this
# revision stays what it was when it shipped (install_guards also runs at every start).
SQLITE_GUARDS = (
    "CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END",
    "CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END",
)
PG_GUARDS = (
    """
CREATE OR REPLACE FUNCTION ledger_entry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'ledger_entry is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END
$$
""",
    "CREATE TRIGGER ledger_entry_append_only "
    "BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_entry_append_only()",
    # ALWAYS: it fires even under session_replication_role = replica.
    "ALTER TABLE ledger_entry ENABLE ALWAYS TRIGGER ledger_entry_append_only",
)


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def upgrade() -> None:
    op.create_table(
        "cursor",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("npsn", sa.String(length=64), nullable=False),
        sa.Column("updated_since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "npsn", name=op.f("pk_cursor")),
    )
    op.create_table(
        "ledger_entry",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=True),
        sa.Column("npsn", sa.String(length=64), nullable=True),
        sa.Column("nip", sa.String(length=64), nullable=True),
        sa.Column("employee_name", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("mapping_version", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("answer_body", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_entry")),
    )
    op.create_index(op.f("ix_ledger_entry_at"), "ledger_entry", ["at"])
    op.create_index(op.f("ix_ledger_entry_nip"), "ledger_entry", ["nip"])
    op.create_index(op.f("ix_ledger_entry_npsn"), "ledger_entry", ["npsn"])
    op.create_index(op.f("ix_ledger_entry_period"), "ledger_entry", ["period"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nip", sa.String(length=18), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("kind", DELIVERY_KIND, nullable=False),
        sa.Column("action", OUTBOX_ACTION, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("if_match", sa.Integer(), nullable=True),
        sa.Column("mapping_version", sa.String(length=32), nullable=False),
        sa.Column("state", OUTBOX_STATE, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_state_period", "outbox", ["state", "period"])
    op.create_table(
        "run",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run")),
    )
    op.create_table(
        "school_lease",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("npsn", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("period", "npsn", name=op.f("pk_school_lease")),
    )
    op.create_table(
        "source_record",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("npsn", sa.String(length=64), nullable=False),
        sa.Column("nip", sa.String(length=64), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", SOURCE_STATUS, nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_record")),
    )
    op.create_index(op.f("ix_source_record_npsn"), "source_record", ["npsn"])
    op.create_index("ix_source_record_period_nip", "source_record", ["period", "nip"])
    op.create_table(
        "sync_record",
        sa.Column("nip", sa.String(length=18), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("kind", DELIVERY_KIND, nullable=False),
        sa.Column("npsn", sa.String(length=8), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("assessor_nip", sa.String(length=18), nullable=False),
        sa.Column("status", RECORD_STATUS, nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mapping_version", sa.String(length=32), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=True),
        sa.Column("delivered_hash", sa.String(length=64), nullable=True),
        sa.Column("delivered_mapping_version", sa.String(length=32), nullable=True),
        sa.Column("skp_id", sa.String(length=128), nullable=True),
        sa.Column("skp_version", sa.Integer(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nip", "period", "kind", name=op.f("pk_sync_record")),
    )
    op.create_index("ix_sync_record_period_npsn", "sync_record", ["period", "npsn"])
    for statement in PG_GUARDS if _postgresql() else SQLITE_GUARDS:
        op.execute(statement)


def downgrade() -> None:
    # Dropping ledger_entry drops its triggers; the index drops go with their tables.
    for table in (
        "sync_record",
        "source_record",
        "school_lease",
        "run",
        "outbox",
        "ledger_entry",
        "cursor",
    ):
        op.drop_table(table)
    if _postgresql():
        op.execute("DROP FUNCTION IF EXISTS ledger_entry_append_only()")
        for enum in ENUMS:
            op.execute(f"DROP TYPE IF EXISTS {enum.name}")
