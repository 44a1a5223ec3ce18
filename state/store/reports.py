"""What an operator and a run's summary read: counts per school, kind and status, the
failing and quarantined records, a deliverable's requests.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import Engine, and_, func, or_
from sqlalchemy import select as select_rows
from sqlalchemy.orm import aliased
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

__all__ = ["WAITING_REASONS", "Reports"]


def _reason_matches(code: str | None, text: str | None, wanted: str | None) -> bool:
    """``wanted`` is the answer's code (e.g. NIP_TIDAK_DITEMUKAN), a code's beginning
    (``retries_exhausted`` also matches ``retries_exhausted_timeout``), or a part of the reason."""
    if not wanted:
        return True
    needle = wanted.lower()
    return (code or "").lower().startswith(needle) or needle in (text or "").lower()


# Why a deliverable goes nowhere until a person acts (``waiting_on_people``), and who acts:
WAITING_REASONS: dict[str, str] = {
    "plan_not_approved": "an SKP (or the penilaian behind it) whose perencanaan is not "
    "approved in PMM: the school",
    "not_final": "a penilaian not final in PMM: its penilai",
    "penilai_missing": "held: its penilai has no SKP on e-Kinerja yet (or it is a penilaian "
    "behind such an SKP): see why the penilai's SKP is missing",
    "skp_failed": "a penilaian whose SKP e-Kinerja refused: fix and replay the SKP",
    "skp_cancelled": "a penilaian whose SKP was cancelled (in PMM, or discarded by an operator)",
    "failed": "refused by e-Kinerja (a dead letter): fix, then replay",
    "locked": "changed after e-Kinerja locked it: correct it in e-Kinerja by hand",
    "quarantined": "a source record with bad data (kind 'record'): fix it in PMM / Dapodik",
}


def _waiting_reason(
    kind: DeliveryKind,
    status: RecordStatus,
    skp_status: RecordStatus | None,
    skp_delivered: bool,
) -> str | None:
    """Why a deliverable waits on a person (``WAITING_REASONS``); None: it does not (a
    penilaian whose SKP is delivered or on its way goes as soon as it can)."""
    if status is RecordStatus.FAILED:
        return "failed"
    if status is RecordStatus.LOCKED:
        return "locked"
    if status is RecordStatus.HELD:
        return "penilai_missing"
    if kind is DeliveryKind.SKP:
        return "plan_not_approved"  # the one reason an SKP waits
    # A penilaian: what its SKP waits on comes first.
    if skp_status is RecordStatus.FAILED:
        return "skp_failed"
    if skp_status is RecordStatus.HELD:
        return "penilai_missing"
    if skp_delivered or skp_status is RecordStatus.PENDING:
        return "not_final" if status is RecordStatus.WAITING else None
    if skp_status in (RecordStatus.CANCELLED, RecordStatus.CANCELLED_AFTER_DELIVERY):
        return "skp_cancelled"
    return "plan_not_approved"  # its SKP waits for its plan, or has no row yet


class Reports:
    """What operators, the console, the metrics and a run's summary read: counts, the
    records that wait on a person, a deliverable's requests."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    @staticmethod
    def sendable_depths(session: Session) -> dict[str, int]:
        """Per period: the requests in the outbox that can be sent now, as delivery decides
        it (``sync.delivery.deliver``): its deliverable is pending and, for a penilaian, its
        SKP is delivered or on its way. Not those that wait on a person (a penilaian behind
        a refused or held SKP, a held SKP): ``waiting_on_people`` counts them."""
        skp = aliased(SyncRecord)
        query = (
            select(OutboxEntry.period, func.count())
            .join(
                SyncRecord,
                and_(
                    col(SyncRecord.nip) == col(OutboxEntry.nip),
                    col(SyncRecord.period) == col(OutboxEntry.period),
                    col(SyncRecord.kind) == col(OutboxEntry.kind),
                ),
            )
            .outerjoin(
                skp,
                and_(
                    col(skp.nip) == col(OutboxEntry.nip),
                    col(skp.period) == col(OutboxEntry.period),
                    col(skp.kind) == DeliveryKind.SKP,
                ),
            )
            .where(
                OutboxEntry.state == OutboxState.PENDING,
                SyncRecord.status == RecordStatus.PENDING,
                or_(
                    col(OutboxEntry.kind) == DeliveryKind.SKP,
                    col(skp.delivered_hash).is_not(None),
                    col(skp.status) == RecordStatus.PENDING,
                ),
            )
            .group_by(col(OutboxEntry.period))
        )
        return {period: n for period, n in session.exec(query)}

    @staticmethod
    def waiting_on_people(session: Session) -> list[tuple[str, str, str, int]]:
        """(period, kind, reason, count) of the deliverables that go nowhere until a person
        acts, one reason each (``WAITING_REASONS``), and of the quarantined source records
        (kind ``record``)."""
        skp = aliased(SyncRecord)
        stuck = [RecordStatus.WAITING, RecordStatus.HELD, RecordStatus.FAILED, RecordStatus.LOCKED]
        # Grouped by the states the reason is read from (a handful of groups), not by the
        # reason as SQL: the same rows on SQLite and PostgreSQL.
        skp_delivered = col(skp.delivered_hash).is_not(None)
        query = (
            select_rows(  # sqlmodel's select types 4 columns at most
                col(SyncRecord.period),
                col(SyncRecord.kind),
                col(SyncRecord.status),
                col(skp.status),
                skp_delivered,
                func.count(),
            )
            .outerjoin(
                skp,
                and_(
                    col(SyncRecord.kind) == DeliveryKind.ASSESSMENT,
                    col(skp.nip) == col(SyncRecord.nip),
                    col(skp.period) == col(SyncRecord.period),
                    col(skp.kind) == DeliveryKind.SKP,
                ),
            )
            .where(
                or_(
                    col(SyncRecord.status).in_(stuck),
                    and_(  # a penilaian planned to go: counted below if its SKP will not
                        col(SyncRecord.status) == RecordStatus.PENDING,
                        col(SyncRecord.kind) == DeliveryKind.ASSESSMENT,
                    ),
                )
            )
            .group_by(
                col(SyncRecord.period),
                col(SyncRecord.kind),
                col(SyncRecord.status),
                col(skp.status),
                skp_delivered,
            )
        )
        counts: Counter[tuple[str, str, str]] = Counter()
        for period, kind, status, skp_status, delivered, n in session.execute(query):
            reason = _waiting_reason(
                DeliveryKind(kind),
                RecordStatus(status),
                RecordStatus(skp_status) if skp_status is not None else None,
                bool(delivered),
            )
            if reason is not None:
                counts[(period, str(kind), reason)] += n
        quarantined = session.exec(
            select(SourceRecord.period, func.count())
            .where(SourceRecord.status == SourceStatus.QUARANTINED)
            .group_by(col(SourceRecord.period))
        )
        for period, n in quarantined:
            counts[(period, "record", "quarantined")] += n
        return [(period, kind, reason, n) for (period, kind, reason), n in sorted(counts.items())]

    def quarantined(self, period: str, npsns: Sequence[str] = ()) -> list[SourceRecord]:
        return self.quarantine(period=period, npsns=npsns)

    def noted(self, period: str, npsns: Sequence[str] = ()) -> list[SourceRecord]:
        """The period's valid, live records with a data note (``SourceRecord.note``): sent
        as they are, and shown so that the school can check them."""
        with Session(self.engine) as session:
            query = select(SourceRecord).where(
                SourceRecord.period == period,
                SourceRecord.status == SourceStatus.VALID,
                col(SourceRecord.note).is_not(None),
                col(SourceRecord.cancelled).is_(False),
            )
            if npsns:
                query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
            order = (col(SourceRecord.npsn), col(SourceRecord.nip), col(SourceRecord.id))
            return list(session.exec(query.order_by(*order)))

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
