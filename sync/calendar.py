"""The semester calendar: which periods the daemon syncs on a given day. Pure: the moment is
passed in.

A period is a semester (``2025-1``: January-June, ``2025-2``: July-December), in the calendar of
the service's time zone (Asia/Jakarta by default: a semester starts at 00:00 WIB on 1 January
or 1 July, not at 00:00 UTC). The active periods are the current semester and, for
``grace_days`` days after it ended, the previous one: penilaian finalised late in PMM (after
30 June or 31 December) still reach e-Kinerja. Periods named in the config replace the calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from mappings.model import Period

__all__ = ["active_periods", "period_of", "previous_period", "resolve_periods"]


def period_of(day: dt.date) -> Period:
    """The semester ``day`` falls in."""
    return Period.parse(f"{day.year}-{1 if day.month <= 6 else 2}")


def previous_period(period: Period) -> Period:
    """The semester before ``period``."""
    if period.semester == 2:
        return Period.parse(f"{period.year}-1")
    return Period.parse(f"{period.year - 1}-2")


def active_periods(now: dt.datetime, *, timezone: ZoneInfo, grace_days: int) -> list[str]:
    """The periods to sync at ``now`` (an aware datetime), newest first: the current
    semester, and the previous one until ``grace_days`` whole days after its last day."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if grace_days < 0:
        raise ValueError("grace_days must not be negative")
    today = now.astimezone(timezone).date()
    current = period_of(today)
    previous = previous_period(current)
    periods = [current.code]
    if today <= previous.end + dt.timedelta(days=grace_days):
        periods.append(previous.code)
    return periods


def resolve_periods(
    configured: Sequence[str], now: dt.datetime, *, timezone: ZoneInfo, grace_days: int
) -> list[str]:
    """``configured`` when the config names periods, else the calendar's active periods."""
    if configured:
        return list(dict.fromkeys(configured))
    return active_periods(now, timezone=timezone, grace_days=grace_days)
