"""sync_record.assessor_role: the penilai's role, so that a worker delivering while another
reads the period waits only for a penilai whose record is still to come (a kepala sekolah;
a pengawas or a kepala dinas never has a record in PMM)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 17:56:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows planned before it stay None: their penilai is not waited for (as before).
    with op.batch_alter_table("sync_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assessor_role", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_record", schema=None) as batch_op:
        batch_op.drop_column("assessor_role")
