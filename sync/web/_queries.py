"""What the console's pages read from the state store. Read only: nothing here writes."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, or_
from sqlmodel import Session, col, select

from mappings.model import Period
from state.ledger import LedgerEntry
from state.models import OutboxEntry, RecordStatus, SourceRecord, SyncRecord
from state.store import StateStore

__all__ = [
    "LedgerFilters",
    "Overview",
    "SchoolRow",
    "TeacherRecord",
    "TeacherView",
    "delivery_history",
    "ledger_entries",
    "ledger_page",
    "overview",
    "periods",
    "school_names",
    "school_teachers",
    "teacher",
    "teacher_names",
]

_DELIVERING_ACTIONS = ("create_skp", "update_skp", "create_assessment")
# Statuses that do not count towards what a school still has to deliver.
_CLOSED = {RecordStatus.CANCELLED.value, RecordStatus.CANCELLED_AFTER_DELIVERY.value}


def periods(engine: Engine) -> list[str]:
    """Every period the store knows, latest first (a year after the semesters before it)."""
    with Session(engine) as session:
        found = set(session.exec(select(SyncRecord.period).distinct()))
        found |= set(session.exec(select(SourceRecord.period).distinct()))

    def newest_first(code: str) -> tuple[int, int]:
        try:
            period = Period.parse(code)
        except ValueError:  # not a code this release knows: last
            return (0, 0)
        return (period.start.toordinal(), period.end.toordinal())

    return sorted(found, key=newest_first, reverse=True)


def _body_text(*path: str) -> Any:
    return SourceRecord.__table__.c.body[path].as_string()  # type: ignore[attr-defined]


def school_names(session: Session, period: str | None, npsns: Sequence[str] = ()) -> dict[str, str]:
    """NPSN -> the school's name as PMM last sent it."""
    query = select(SourceRecord.npsn, _body_text("sekolah", "nama"))
    if period:
        query = query.where(SourceRecord.period == period)
    if npsns:
        query = query.where(col(SourceRecord.npsn).in_(list(npsns)))
    names: dict[str, str] = {}
    for npsn, name in session.exec(query.order_by(col(SourceRecord.updated_at))):
        if name:
            names[npsn] = name
    return names


def teacher_names(session: Session, nips: Sequence[str]) -> dict[str, str]:
    """NIP -> the person's name as PMM last sent it."""
    if not nips:
        return {}
    query = (
        select(SourceRecord.nip, _body_text("pegawai", "nama"))
        .where(col(SourceRecord.nip).in_(list(nips)))
        .order_by(col(SourceRecord.updated_at))
    )
    return {nip: name for nip, name in session.exec(query) if name}


@dataclass
class SchoolRow:
    npsn: str
    name: str
    counts: Counter[str] = field(default_factory=Counter)  # status -> deliverables (both kinds)
    quarantined: int = 0

    @property
    def total(self) -> int:
        return sum(n for status, n in self.counts.items() if status not in _CLOSED)

    @property
    def delivered(self) -> int:
        return self.counts[RecordStatus.DELIVERED.value]

    @property
    def percent(self) -> int:
        return round(100 * self.delivered / self.total) if self.total else 0

    @property
    def attention(self) -> int:
        return self.counts["failed"] + self.counts["locked"] + self.quarantined


@dataclass
class Overview:
    period: str
    schools: list[SchoolRow]
    totals: dict[tuple[str, str], int]  # (kind, status) -> count
    quarantined: int

    def total(self, kind: str) -> int:
        return sum(n for (k, s), n in self.totals.items() if k == kind and s not in _CLOSED)

    def delivered(self) -> int:
        return sum(n for (_k, s), n in self.totals.items() if s == "delivered")

    def open_total(self) -> int:
        return sum(n for (_k, s), n in self.totals.items() if s not in _CLOSED)

    def percent(self) -> int:
        total = self.open_total()
        return round(100 * self.delivered() / total) if total else 0


def overview(store: StateStore, period: str) -> Overview:
    counts = store.reports.status_counts(period)
    totals: Counter[tuple[str, str]] = Counter()
    rows: list[SchoolRow] = []
    with Session(store.engine) as session:
        names = school_names(session, period)
    quarantined = 0
    for npsn, by_status in counts.items():
        row = SchoolRow(npsn, names.get(npsn, ""))
        for (kind, status), n in by_status.items():
            if kind == "record":
                row.quarantined += n
                quarantined += n
                continue
            row.counts[status] += n
            totals[(kind, status)] += n
        rows.append(row)
    rows.sort(key=lambda r: (r.percent, r.npsn))
    return Overview(period, rows, dict(totals), quarantined)


def delivery_history(session: Session, period: str) -> dict[str, list[dt.datetime]]:
    """NPSN -> when each of its deliverables was first delivered, in order (from the ledger:
    the first ``delivered`` answer per NIP and kind)."""
    query = (
        select(LedgerEntry.npsn, LedgerEntry.nip, LedgerEntry.kind, func.min(LedgerEntry.at))
        .where(
            LedgerEntry.period == period,
            LedgerEntry.outcome == "delivered",
            col(LedgerEntry.action).in_(_DELIVERING_ACTIONS),
        )
        .group_by(col(LedgerEntry.npsn), col(LedgerEntry.nip), col(LedgerEntry.kind))
    )
    history: dict[str, list[dt.datetime]] = defaultdict(list)
    for npsn, _nip, _kind, at in session.exec(query):
        if npsn and at is not None:
            moment = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
            history[npsn].append(moment)
    for times in history.values():
        times.sort()
    return dict(history)


@dataclass
class TeacherRow:
    nip: str
    name: str
    records: dict[str, SyncRecord]  # kind -> record


def school_teachers(
    store: StateStore, period: str, npsn: str
) -> tuple[str, list[TeacherRow], list[SourceRecord], dict[str, str]]:
    """The school's name, its teachers with their deliverables, its quarantined records, and
    the names of everyone in them (NIP -> name)."""
    records = store.reports.records(period, [npsn])
    quarantined = store.reports.quarantine(period=period, npsns=[npsn])
    by_nip: dict[str, dict[str, SyncRecord]] = defaultdict(dict)
    for r in records:
        by_nip[r.nip][r.kind.value] = r
    with Session(store.engine) as session:
        name = school_names(session, period, [npsn]).get(npsn, "")
        names = teacher_names(session, [*by_nip, *(q.nip for q in quarantined)])
    rows = [TeacherRow(nip, names.get(nip, ""), kinds) for nip, kinds in sorted(by_nip.items())]
    rows.sort(key=lambda t: (t.name.lower(), t.nip))
    return name, rows, quarantined, names


@dataclass
class TeacherRecord:
    record: SyncRecord
    requests: list[OutboxEntry]
    school_name: str


@dataclass
class TeacherView:
    nip: str
    name: str
    records: list[TeacherRecord]
    sources: list[SourceRecord]
    entries: list[LedgerEntry]
    school_names: dict[str, str]


def teacher(store: StateStore, nip: str, period: str | None) -> TeacherView | None:
    """Everything the store holds about one person (in one period, or all); None: nothing."""
    with Session(store.engine) as session:
        query = select(SyncRecord).where(SyncRecord.nip == nip)
        sources_query = select(SourceRecord).where(SourceRecord.nip == nip)
        if period:
            query = query.where(SyncRecord.period == period)
            sources_query = sources_query.where(SourceRecord.period == period)
        records = list(
            session.exec(query.order_by(col(SyncRecord.period).desc(), col(SyncRecord.kind)))
        )
        sources = list(
            session.exec(
                sources_query.order_by(col(SourceRecord.period).desc(), col(SourceRecord.seen_at))
            )
        )
        entries = list(
            session.exec(
                _ledger_query(LedgerFilters(nip=nip, period=period)).order_by(col(LedgerEntry.seq))
            )
        )
        if not records and not sources and not entries:
            return None
        npsns = sorted({r.npsn for r in records} | {s.npsn for s in sources})
        schools = school_names(session, None, npsns)
        name = teacher_names(session, [nip]).get(nip, "")
    views = [
        TeacherRecord(r, store.reports.outbox_of(r.period, r.nip, r.kind), schools.get(r.npsn, ""))
        for r in records
    ]
    return TeacherView(nip, name, views, sources, entries, schools)


@dataclass(frozen=True)
class LedgerFilters:
    nip: str | None = None
    npsn: str | None = None
    period: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    text: str | None = None

    def any(self) -> bool:
        return any(
            v is not None for v in (self.nip, self.npsn, self.period, self.since, self.until)
        ) or bool(self.text)


def _ledger_query(filters: LedgerFilters) -> Any:
    query = select(LedgerEntry)
    if filters.nip is not None:
        query = query.where(LedgerEntry.nip == filters.nip)
    if filters.npsn is not None:
        query = query.where(LedgerEntry.npsn == filters.npsn)
    if filters.period is not None:
        query = query.where(LedgerEntry.period == filters.period)
    if filters.since is not None:
        query = query.where(col(LedgerEntry.at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(LedgerEntry.at) < filters.until)
    if filters.text:
        needle = filters.text
        query = query.where(
            or_(
                *(
                    col(column).icontains(needle, autoescape=True)
                    for column in (
                        LedgerEntry.actor,
                        LedgerEntry.action,
                        LedgerEntry.outcome,
                        LedgerEntry.nip,
                        LedgerEntry.npsn,
                        LedgerEntry.idempotency_key,
                        LedgerEntry.detail,
                        LedgerEntry.employee_name,
                    )
                )
            )
        )
    return query


def ledger_page(
    engine: Engine, filters: LedgerFilters, *, before: int | None, size: int
) -> tuple[list[LedgerEntry], int]:
    """Up to ``size`` entries matching the filters, newest first, below ``before`` (a seq);
    and how many match in all."""
    with Session(engine) as session:
        query = _ledger_query(filters)
        total = int(session.exec(select(func.count()).select_from(query.subquery())).one())
        if before is not None:
            query = query.where(col(LedgerEntry.seq) < before)
        rows = list(session.exec(query.order_by(col(LedgerEntry.seq).desc()).limit(size)))
    return rows, total


def ledger_entries(
    session: Session, filters: LedgerFilters, *, batch: int = 500
) -> Iterator[LedgerEntry]:
    """Every entry matching the filters, oldest first, ``batch`` at a time (for exports)."""
    after = 0
    while True:
        query = (
            _ledger_query(filters)
            .where(col(LedgerEntry.seq) > after)
            .order_by(col(LedgerEntry.seq))
            .limit(batch)
        )
        rows: list[LedgerEntry] = list(session.exec(query))
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq
