"""The deadline view: which schools still have penilaian that have not reached e-Kinerja,
as the period's ``batas_penilaian`` comes near (the source's date: a semester's last day, a
year's usually in the next January; allowances and promotions use what reached e-Kinerja)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from mappings.model import ListedPeriod

__all__ = ["DeadlineView", "SchoolBacklog", "deadline_view", "today_in_jakarta"]

_JAKARTA = ZoneInfo("Asia/Jakarta")
# Deliverables that still count towards a teacher's penilaian being in: everything but
# delivered ones and cancelled ones.
_DONE = {"delivered", "cancelled", "cancelled_after_delivery"}
# The stretch before the deadline in which the view urges the operator on.
_LAST_STRETCH = dt.timedelta(days=30)


def today_in_jakarta(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(_JAKARTA).date()


@dataclass(frozen=True, slots=True)
class SchoolBacklog:
    npsn: str
    missing: int  # teachers whose penilaian is not in e-Kinerja yet
    teachers: int


@dataclass(frozen=True, slots=True)
class DeadlineView:
    period: str
    deadline: dt.date
    days_left: int  # negative: the deadline passed that many days ago
    in_last_month: bool  # within the 30 days up to the deadline
    schools: tuple[SchoolBacklog, ...]  # most missing first

    @property
    def when(self) -> str:
        """``12 days left``, ``today``, or ``passed 3 days ago``."""
        if self.days_left > 0:
            return f"{self.days_left} day{'s' if self.days_left != 1 else ''} left"
        if self.days_left == 0:
            return "today"
        ago = -self.days_left
        return f"passed {ago} day{'s' if ago != 1 else ''} ago"

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "deadline": self.deadline.isoformat(),
            "days_left": self.days_left,
            "in_last_month": self.in_last_month,
            "schools": [
                {"npsn": s.npsn, "missing": s.missing, "teachers": s.teachers} for s in self.schools
            ],
        }


def deadline_view(
    period: ListedPeriod, counts: Mapping[str, Mapping[tuple[str, str], int]], today: dt.date
) -> DeadlineView:
    """From ``StateStore.status_counts``: per school, penilaian not in yet (quarantined
    teachers count as not in: their record is stuck in PMM)."""
    schools = []
    for npsn, by_status in counts.items():
        assessments = {s: n for (k, s), n in by_status.items() if k == "assessment"}
        quarantined = by_status.get(("record", "quarantined"), 0)
        teachers = sum(n for s, n in assessments.items() if s not in _DONE) + sum(
            n for s, n in assessments.items() if s == "delivered"
        )
        missing = sum(n for s, n in assessments.items() if s not in _DONE) + quarantined
        if missing:
            schools.append(SchoolBacklog(npsn, missing, teachers + quarantined))
    schools.sort(key=lambda s: (-s.missing, s.npsn))
    deadline = period.deadline
    return DeadlineView(
        period=period.code,
        deadline=deadline,
        days_left=(deadline - today).days,
        in_last_month=deadline - _LAST_STRETCH <= today <= deadline,
        schools=tuple(schools),
    )
