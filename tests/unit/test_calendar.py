"""The semester calendar: active periods for a moment, in Asia/Jakarta."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mappings.model import Period
from sync.calendar import active_periods, period_of, previous_period, resolve_periods

WIB = ZoneInfo("Asia/Jakarta")


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("day", "period"),
    [
        (dt.date(2025, 1, 1), "2025-1"),
        (dt.date(2025, 6, 30), "2025-1"),
        (dt.date(2025, 7, 1), "2025-2"),
        (dt.date(2025, 12, 31), "2025-2"),
    ],
)
def test_period_of(day: dt.date, period: str) -> None:
    assert period_of(day).code == period


def test_previous_period_crosses_the_year() -> None:
    assert previous_period(Period.parse("2026-1")).code == "2025-2"
    assert previous_period(Period.parse("2025-2")).code == "2025-1"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Mid-semester: only the current one.
        ("2025-03-15T12:00:00+07:00", ["2025-1"]),
        ("2025-10-01T00:00:00+00:00", ["2025-2"]),
        # 1 July 00:30 WIB is still 30 June in UTC: the calendar is Jakarta's.
        ("2025-06-30T17:30:00+00:00", ["2025-2", "2025-1"]),
        ("2025-06-30T16:59:59+00:00", ["2025-1"]),
        # The previous semester stays for 31 days after its last day, through 31 July WIB...
        ("2025-07-31T23:59:00+07:00", ["2025-2", "2025-1"]),
        # ... and not a minute longer.
        ("2025-08-01T00:00:00+07:00", ["2025-2"]),
        # Across the year: 2025-2 in grace in January 2026.
        ("2026-01-10T08:00:00+07:00", ["2026-1", "2025-2"]),
        ("2026-01-31T16:59:00+00:00", ["2026-1", "2025-2"]),
        ("2026-01-31T17:00:00+00:00", ["2026-1"]),
    ],
)
def test_active_periods_follow_the_calendar_in_jakarta(now: str, expected: list[str]) -> None:
    assert active_periods(_at(now), timezone=WIB, grace_days=31) == expected


def test_no_grace_means_only_the_current_semester() -> None:
    assert active_periods(_at("2025-07-01T08:00:00+07:00"), timezone=WIB, grace_days=0) == [
        "2025-2"
    ]


def test_configured_periods_replace_the_calendar() -> None:
    now = _at("2025-07-05T08:00:00+07:00")
    assert resolve_periods(["2024-2", "2024-2"], now, timezone=WIB, grace_days=31) == ["2024-2"]
    assert resolve_periods([], now, timezone=WIB, grace_days=31) == ["2025-2", "2025-1"]


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        active_periods(dt.datetime(2025, 1, 1), timezone=WIB, grace_days=31)
