"""Where each period stands (``periods list``, the console's periods page) and closing one
(``periods close``): a period closes after its ``batas_penilaian``, before it only when the
operator forces it with a reason (issue 26).

The deadline is the source's ``batas_penilaian`` as last listed (``sync.pipeline.periods``),
counted in WIB; a period PMM never listed has no known deadline, so closing it is forced too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from state.change_requests import ChangeRequests
from state.ledger import LedgerEntry
from state.lifecycle import Lifecycle, PeriodState, PeriodStatus
from state.store import StateStore
from sync.operations.actions import ActionRefused, clean_why
from sync.operations.deadline import today_in_jakarta
from sync.operations.known_periods import known_periods, require_known
from sync.pipeline.periods import stored_listing

__all__ = ["PeriodRow", "close_period", "period_rows"]

# Deliverable statuses that still wait to go out (or on a person).
_UNSENT = ("waiting", "pending", "held")


@dataclass(frozen=True)
class PeriodRow:
    """One period: its kind and deadline as PMM listed it (None: never listed), where it
    stands, its deliverables by (kind, status), its ledger entries and pending requests."""

    period: str
    kind: str | None
    deadline: dt.date | None
    status: PeriodStatus
    counts: Counter[tuple[str, str]]
    entries: int
    pending_requests: int

    def delivered(self, kind: str) -> int:
        return self.counts[(kind, "delivered")]

    def total(self, kind: str) -> int:
        return sum(n for (k, _status), n in self.counts.items() if k == kind)

    @property
    def failed(self) -> int:
        return sum(n for (k, s), n in self.counts.items() if k != "record" and s == "failed")

    @property
    def unsent(self) -> int:
        return sum(n for (k, s), n in self.counts.items() if k != "record" and s in _UNSENT)


def _entries_per_period(store: StateStore) -> dict[str, int]:
    with Session(store.engine) as session:
        query = select(LedgerEntry.period, func.count()).group_by(col(LedgerEntry.period))
        return {str(p): int(n) for p, n in session.exec(query) if p is not None}


def period_rows(store: StateStore, lifecycle: Lifecycle) -> list[PeriodRow]:
    """Every period the store knows (``known_periods``), or has a lifecycle of, oldest first."""
    listed = {p.code: p for p in stored_listing(store)}
    statuses = lifecycle.statuses()
    pending = ChangeRequests(lifecycle).pending_counts()
    entries = _entries_per_period(store)
    codes = known_periods(store)
    codes += [p for p in sorted(statuses) if p not in codes]
    rows = []
    for code in codes:
        counts: Counter[tuple[str, str]] = Counter()
        for school in store.reports.status_counts(code).values():
            counts.update(school)
        entry = listed.get(code)
        rows.append(
            PeriodRow(
                period=code,
                kind=entry.period.kind.value if entry is not None else None,
                deadline=entry.deadline if entry is not None else None,
                status=statuses.get(code, PeriodStatus(code, PeriodState.OPEN)),
                counts=counts,
                entries=entries.get(code, 0),
                pending_requests=pending.get(code, 0),
            )
        )
    return rows


def close_period(
    store: StateStore,
    lifecycle: Lifecycle,
    period: str,
    *,
    by: str,
    why: str,
    force: bool = False,
    today: dt.date | None = None,
) -> PeriodStatus:
    """Close ``period`` as ``by`` because ``why``: after its ``batas_penilaian`` (WIB), or
    before it (or with none known) only with ``force``. ``ActionRefused`` (``too_early``,
    ``why_missing``, ...) or ``LifecycleRefused`` (``not_open``) otherwise; nothing changes
    then. The ledger's ``period_close`` entry says which case it was."""
    require_known(store, period)
    reason = clean_why(why, missing="say why (the close): --why TEXT")
    today = today or today_in_jakarta()
    deadline = next((p.deadline for p in stored_listing(store) if p.code == period), None)
    if deadline is None:
        if not force:
            raise ActionRefused(
                "too_early",
                f"the batas_penilaian of {period} is not known (PMM has not listed it since the "
                "state store keeps its listing): close it with --force and the reason",
            )
        detail = f"{reason} (closed with --force: batas_penilaian not known)"
    elif today <= deadline:
        left = (deadline - today).days
        if not force:
            raise ActionRefused(
                "too_early",
                f"the batas_penilaian of {period} is {deadline.isoformat()} ({left} day(s) "
                "left): a period closes after it; before it only with --force and the reason",
            )
        detail = (
            f"{reason} (closed early with --force: batas_penilaian {deadline.isoformat()}, "
            f"{left} day(s) left)"
        )
    else:
        detail = f"{reason} (after batas_penilaian {deadline.isoformat()})"
    return lifecycle.close(period, by=by, why=reason, detail=detail)
