from __future__ import annotations

import datetime as dt

from mappings.model import ListedPeriod, Period
from sync.operations.deadline import deadline_view, today_in_jakarta


def _listed(code: str, deadline: str | None = None) -> ListedPeriod:
    period = Period.parse(code)
    return ListedPeriod(
        period, dt.date.fromisoformat(deadline) if deadline else period.end, running=True
    )


COUNTS = {
    "20100001": {
        ("assessment", "delivered"): 8,
        ("assessment", "waiting"): 3,
        ("assessment", "failed"): 1,
        ("assessment", "cancelled"): 2,
        ("record", "quarantined"): 1,
    },
    "20100002": {("assessment", "delivered"): 10},
    "20100003": {("assessment", "waiting"): 6, ("assessment", "delivered"): 1},
}


def test_schools_with_penilaian_not_in_come_first_with_their_share() -> None:
    view = deadline_view(_listed("2025-1"), COUNTS, dt.date(2025, 6, 20))
    assert [(s.npsn, s.missing, s.teachers) for s in view.schools] == [
        ("20100003", 6, 7),
        ("20100001", 5, 13),  # 3 waiting + 1 failed + 1 quarantined, of 8 + 4 + 1
    ]
    assert view.deadline == dt.date(2025, 6, 30)
    assert view.days_left == 10
    assert view.in_last_month


def test_outside_the_last_month_and_after_the_deadline() -> None:
    early = deadline_view(_listed("2025-2"), COUNTS, dt.date(2025, 9, 1))
    assert not early.in_last_month
    assert early.deadline == dt.date(2025, 12, 31)
    assert early.when == "121 days left"
    late = deadline_view(_listed("2025-1"), COUNTS, dt.date(2025, 7, 3))
    assert late.days_left == -3
    assert late.when == "passed 3 days ago"
    assert not late.in_last_month
    assert deadline_view(_listed("2025-1"), COUNTS, dt.date(2025, 6, 30)).when == "today"


def test_an_annual_deadline_is_the_sources_batas_penilaian_not_the_years_end() -> None:
    view = deadline_view(_listed("2026", "2027-01-31"), COUNTS, dt.date(2026, 12, 31))
    assert view.deadline == dt.date(2027, 1, 31)
    assert view.when == "31 days left"
    assert not view.in_last_month
    assert deadline_view(_listed("2026", "2027-01-31"), COUNTS, dt.date(2027, 1, 2)).in_last_month


def test_today_is_the_jakarta_date() -> None:
    # 20:00 UTC on 30 June is already 1 July in Jakarta (UTC+7).
    assert today_in_jakarta(dt.datetime(2025, 6, 30, 20, 0, tzinfo=dt.UTC)) == dt.date(2025, 7, 1)
