"""The periods the source lists (kind, dates, batas_penilaian): annual beside semester.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 08:30:00.000000

Existing stores hold semester codes (``2024-2``) in every ``period`` column; annual codes
(``2026``) fit the same columns, so no data moves: the table is filled by the next run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "period",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_period")),
    )


def downgrade() -> None:
    op.drop_table("period")
