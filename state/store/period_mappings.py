"""The mapping version each period was first planned with (``period.mapping_version``).

Recorded once, by the first run that plans the period, and then read: a later release whose
default differs never remaps what was delivered (design: a released mapping version never
changes, nor the version a period's records go out with, until the operator names another).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from state.models import ListedPeriod, SyncRecord


class _PeriodMappings:
    """The per-period mapping versions of ``StateStore`` (see ``state.store``)."""

    engine: Engine

    def period_mapping(self, code: str) -> str | None:
        """The version recorded for period ``code`` (None: none yet, or not listed)."""
        with Session(self.engine) as session:
            row = session.get(ListedPeriod, code)
            return row.mapping_version if row is not None else None

    def record_period_mapping(self, code: str, version: str, at: dt.datetime) -> str | None:
        """Record ``version`` for period ``code`` unless one is recorded already (the first
        planner wins: two workers planning at once agree on the one kept). Returns the
        version recorded now, or None when the period is not in the stored listing."""
        with Session(self.engine) as session:
            session.execute(
                update(ListedPeriod)
                .where(
                    col(ListedPeriod.code) == code,
                    col(ListedPeriod.mapping_version).is_(None),
                )
                .values(mapping_version=version, mapping_chosen_at=at)
            )
            session.commit()
            row = session.get(ListedPeriod, code)
            return row.mapping_version if row is not None else None

    def delivered_mapping_versions(self, period: str) -> Counter[str]:
        """How many of the period's deliverables e-Kinerja holds, by the mapping version
        they went out with."""
        query = (
            select(SyncRecord.delivered_mapping_version, func.count())
            .where(
                SyncRecord.period == period,
                col(SyncRecord.delivered_hash).is_not(None),
                col(SyncRecord.delivered_mapping_version).is_not(None),
            )
            .group_by(col(SyncRecord.delivered_mapping_version))
        )
        with Session(self.engine) as session:
            return Counter({str(v): n for v, n in session.exec(query)})
