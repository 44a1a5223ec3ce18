"""source_record.note: what is odd in a record but not wrong (a malformed NUPTK, a tmt_jabatan
after the period), shown by ``status``; period.mapping_version: the mapping version a period
was first planned with, which it keeps until the operator names another in the config

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 20:00:00

Rows already stored keep no note (the next version PMM serves of a record gets one), and
periods already planned have no recorded version: the first run after the upgrade records
the version their delivered records went out with (2025.1 for a semester, when the config
named none), so nothing already delivered is mapped anew.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("period", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mapping_version", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("mapping_chosen_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("period", schema=None) as batch_op:
        batch_op.drop_column("mapping_chosen_at")
        batch_op.drop_column("mapping_version")
    with op.batch_alter_table("source_record", schema=None) as batch_op:
        batch_op.drop_column("note")
