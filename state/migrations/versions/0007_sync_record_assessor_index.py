"""sync_record index on (period, assessor_nip): delivery asks per outbox entry whether its
teacher is some record's penilai

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_record_period_assessor", ["period", "assessor_nip"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_record", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_record_period_assessor")
