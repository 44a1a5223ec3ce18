"""The deadline view: which schools still have penilaian that have not reached e-Kinerja,
as the period's last month runs out (a semester's penilaian must be in by 30 June /
31 December; allowances for the next semester use what reached e-Kinerja)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from mappings.model import Period

__all__ = ["DeadlineView", "SchoolBacklog", "deadline_view", "today_in_jakarta"]

_JAKARTA = ZoneInfo("Asia/Jakarta")
# Deliverables that still count towards a teacher's penilaian being in: everything but
# delivered ones and cancelled ones.
_DONE = {"delivered", "cancelled", "cancelled_after_delivery"}


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
    days_left: int
    in_last_month: bool
    schools: tuple[SchoolBacklog, ...]  # most missing first

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
    period: Period, counts: Mapping[str, Mapping[tuple[str, str], int]], today: dt.date
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
    last_month_start = period.end.replace(day=1)
    return DeadlineView(
        period=period.code,
        deadline=period.end,
        days_left=max((period.end - today).days, 0),
        in_last_month=last_month_start <= today <= period.end,
        schools=tuple(schools),
    )
