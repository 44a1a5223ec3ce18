"""The calendar: active periods for a moment, from the source's listing, in Asia/Jakarta."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mappings.model import ListedPeriod, Period
from sync.service.calendar import active_periods, resolve_periods

WIB = ZoneInfo("Asia/Jakarta")


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _listed(code: str, deadline: str, *, running: bool = False) -> ListedPeriod:
    return ListedPeriod(Period.parse(code), dt.date.fromisoformat(deadline), running=running)


# A dinas late in 2026: 2024's semesters closed, 2025 due by 31 January 2026, 2026 running.
LISTING = [
    _listed("2024-1", "2024-06-30"),
    _listed("2024-2", "2024-12-31"),
    _listed("2025", "2026-01-31"),
    _listed("2026", "2027-01-31", running=True),
]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-30T09:00:00+07:00", ["2026"]),
        ("2026-01-10T08:00:00+07:00", ["2026", "2025"]),
        # The deadline ends at 24:00 WIB on 31 January: 16:59 UTC is still the 31st there...
        ("2026-01-31T16:59:00+00:00", ["2026", "2025"]),
        # ... and 17:00 UTC is 1 February in Jakarta.
        ("2026-01-31T17:00:00+00:00", ["2026"]),
    ],
)
def test_active_periods_follow_the_listing_in_jakarta(now: str, expected: list[str]) -> None:
    assert active_periods(LISTING, _at(now), timezone=WIB, grace_days=0) == expected


def test_a_semester_and_a_year_can_be_active_together() -> None:
    listing = [_listed("2024-2", "2026-12-31"), _listed("2026", "2027-01-31", running=True)]
    now = _at("2026-11-30T09:00:00+07:00")
    assert active_periods(listing, now, timezone=WIB, grace_days=0) == ["2026", "2024-2"]


def test_grace_days_extend_a_deadline() -> None:
    now = _at("2026-02-05T08:00:00+07:00")
    assert active_periods(LISTING, now, timezone=WIB, grace_days=7) == ["2026", "2025"]
    assert active_periods(LISTING, now, timezone=WIB, grace_days=4) == ["2026"]


def test_configured_periods_replace_the_calendar() -> None:
    now = _at("2026-01-05T08:00:00+07:00")
    assert resolve_periods(["2024-2", "2024-2"], LISTING, now, timezone=WIB, grace_days=0) == [
        "2024-2"
    ]
    assert resolve_periods([], LISTING, now, timezone=WIB, grace_days=0) == ["2026", "2025"]


def test_no_listing_means_no_period_rather_than_a_guess() -> None:
    assert (
        resolve_periods([], [], _at("2026-01-05T08:00:00+07:00"), timezone=WIB, grace_days=0) == []
    )


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        active_periods(LISTING, dt.datetime(2025, 1, 1), timezone=WIB, grace_days=0)
