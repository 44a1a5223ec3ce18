"""The calendar: which periods the daemon (and ``run`` without ``--period``) syncs at a
moment. Pure: the moment and the source's listing are passed in.

A period is active while the source lists it as running (``berjalan``) and, after that, until
its ``batas_penilaian`` has passed (plus ``grace_days``) in the service's time zone
(Asia/Jakarta by default: a deadline of 31 January ends at 24:00 WIB, not UTC). So a
semester of 2024 and the year 2026 are active together while both are due, and the calendar
moves to a new period the day the source lists it: nothing is worked out from the date.
Periods named in the config replace the calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from mappings.model import ListedPeriod
from mappings.periods import active_periods as _active

__all__ = ["active_periods", "resolve_periods"]


def active_periods(
    listing: Sequence[ListedPeriod], now: dt.datetime, *, timezone: ZoneInfo, grace_days: int
) -> list[str]:
    """The periods to sync at ``now`` (an aware datetime), newest first."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    if grace_days < 0:
        raise ValueError("grace_days must not be negative")
    today = now.astimezone(timezone).date()
    return [p.code for p in _active(listing, today, grace_days=grace_days)]


def resolve_periods(
    configured: Sequence[str],
    listing: Sequence[ListedPeriod],
    now: dt.datetime,
    *,
    timezone: ZoneInfo,
    grace_days: int,
) -> list[str]:
    """``configured`` when the config names periods, else the listing's active periods."""
    if configured:
        return list(dict.fromkeys(configured))
    return active_periods(listing, now, timezone=timezone, grace_days=grace_days)
