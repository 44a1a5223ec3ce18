"""What an operator and a run's summary read: counts per school, kind and status, the
failing and quarantined records, a deliverable's requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from state.models import (
    DeliveryKind,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)


def _reason_matches(code: str | None, text: str | None, wanted: str | None) -> bool:
    """``wanted`` is the answer's code (e.g. NIP_TIDAK_DITEMUKAN) or a part of the reason."""
    if not wanted:
        return True
    needle = wanted.lower()
    return needle == (code or "").lower() or needle in (text or "").lower()


class _Reports:
    """The reports of ``StateStore`` (see ``state.store``)."""

    engine: Engine

    # -- reports ---

    @staticmethod
    def kind_status_counts(
        session: Session, period: str, npsns: Sequence[str] = ()
    ) -> dict[tuple[str, str], int]:
        """{(kind, status): count} over the period (optionally some schools)."""
        query = (
            select(SyncRecord.kind, SyncRecord.status, func.count())
            .where(SyncRecord.period == period)
            .group_by(col(SyncRecord.kind), col(SyncRecord.status))
        )
        if npsns:
            query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
        return {(str(k), str(s)): n for k, s, n in session.exec(query)}

    @staticmethod
    def quarantined_count(session: Session, period: str, npsns: Sequence[str] = ()) -> int:
        query = select(func.count()).where(
            SourceRecord.period == period, SourceRecord.status == SourceStatus.QUARANTINED
        )
        if npsns:
            query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
        return int(session.exec(query).one())

    def status_counts(
        self, period: str, npsns: Sequence[str] = ()
    ) -> dict[str, dict[tuple[str, str], int]]:
        """Per school: {(kind, status): count}, plus ("record", "quarantined") per school."""
        counts: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        with Session(self.engine) as session:
            query = (
                select(SyncRecord.npsn, SyncRecord.kind, SyncRecord.status, func.count())
                .where(SyncRecord.period == period)
                .group_by(col(SyncRecord.npsn), col(SyncRecord.kind), col(SyncRecord.status))
            )
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            for npsn, kind, status, n in session.exec(query):
                counts[npsn][(str(kind), str(status))] = n
            quarantine = (
                select(SourceRecord.npsn, func.count())
                .where(
                    SourceRecord.period == period,
                    SourceRecord.status == SourceStatus.QUARANTINED,
                )
                .group_by(col(SourceRecord.npsn))
            )
            if npsns:
                quarantine = quarantine.where(col(SourceRecord.npsn).in_(list(npsns)))
            for npsn, n in session.exec(quarantine):
                counts[npsn][("record", "quarantined")] = n
        return dict(counts)

    def periods_with_pending(self) -> list[str]:
        """The periods with requests still in the outbox (read from the index on state and
        period), in order."""
        with Session(self.engine) as session:
            query = (
                select(OutboxEntry.period)
                .where(OutboxEntry.state == OutboxState.PENDING)
                .distinct()
            )
            return sorted(session.exec(query))

    def quarantined(self, period: str, npsns: Sequence[str] = ()) -> list[SourceRecord]:
        return self.quarantine(period=period, npsns=npsns)

    def records(self, period: str, npsns: Sequence[str] = ()) -> list[SyncRecord]:
        with Session(self.engine) as session:
            query = select(SyncRecord).where(SyncRecord.period == period)
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            return list(session.exec(query.order_by(col(SyncRecord.npsn), col(SyncRecord.nip))))

    def failing(self, period: str, npsns: Sequence[str] = ()) -> list[SyncRecord]:
        bad = {RecordStatus.FAILED, RecordStatus.LOCKED, RecordStatus.HELD}
        return [r for r in self.records(period, npsns) if r.status in bad]

    def failures(
        self,
        *,
        period: str | None = None,
        npsns: Sequence[str] = (),
        reason: str | None = None,
        statuses: Collection[RecordStatus] = (RecordStatus.FAILED, RecordStatus.LOCKED),
    ) -> list[SyncRecord]:
        """Dead and locked deliverables; ``reason`` matches the answer's code (e.g.
        NIP_TIDAK_DITEMUKAN) or any part of the reason text, case-insensitively."""
        with Session(self.engine) as session:
            query = select(SyncRecord).where(col(SyncRecord.status).in_(list(statuses)))
            if period:
                query = query.where(SyncRecord.period == period)
            if npsns:
                query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
            query = query.order_by(
                col(SyncRecord.period), col(SyncRecord.npsn), col(SyncRecord.nip)
            )
            rows = list(session.exec(query))
        return [r for r in rows if _reason_matches(r.reason_code, r.reason, reason)]

    def record(self, period: str, nip: str, kind: DeliveryKind) -> SyncRecord | None:
        with Session(self.engine) as session:
            return session.get(SyncRecord, (nip, period, kind))

    def outbox_of(self, period: str, nip: str, kind: DeliveryKind) -> list[OutboxEntry]:
        """Every request ever planned for a deliverable, oldest first."""
        with Session(self.engine) as session:
            query = (
                select(OutboxEntry)
                .where(
                    OutboxEntry.period == period,
                    OutboxEntry.nip == nip,
                    OutboxEntry.kind == kind,
                )
                .order_by(col(OutboxEntry.id))
            )
            return list(session.exec(query))

    def quarantine(
        self, *, period: str | None = None, npsns: Sequence[str] = (), reason: str | None = None
    ) -> list[SourceRecord]:
        with Session(self.engine) as session:
            query = select(SourceRecord).where(SourceRecord.status == SourceStatus.QUARANTINED)
            if period:
                query = query.where(SourceRecord.period == period)
            if npsns:
                query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
            rows = list(
                session.exec(
                    query.order_by(
                        col(SourceRecord.period), col(SourceRecord.npsn), col(SourceRecord.nip)
                    )
                )
            )
        return [r for r in rows if _reason_matches(r.reason_code, r.reason, reason)]
