"""Reading the source's period listing (``GET /api/v1/periode``) into ``ListedPeriod``.

The kind of a period is the ``jenis`` PMM lists (a ``Periode`` without one, from an older
deployment, is a semester); its code's shape must agree with it (``YYYY-S`` for a semester,
``YYYY`` for a year). A listing that breaks the contract is the source's fault and is
reported as one error naming the entry, never guessed around.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mappings._errors import describe
from mappings.model import ListedPeriod, Period, PeriodKind

__all__ = ["PeriodListingError", "active_periods", "find_period", "read_periods"]


class PeriodListingError(ValueError):
    """The source's period listing breaks the contract, or lacks a period asked for."""


class _Periode(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kode: str
    jenis: Literal["semester", "tahunan"] = "semester"
    tanggal_selesai: dt.date | None = None
    batas_penilaian: dt.date | None = None
    status: Literal["berjalan", "ditutup"] = "ditutup"


def read_periods(raw: Iterable[Mapping[str, Any]]) -> list[ListedPeriod]:
    """Every listed period, oldest first."""
    listed: list[ListedPeriod] = []
    for entry in raw:
        try:
            wire = _Periode.model_validate(entry)
            period = Period.parse(wire.kode)
        except (ValidationError, ValueError) as exc:
            detail = describe(exc) if isinstance(exc, ValidationError) else str(exc)
            raise PeriodListingError(
                f"the source lists a period that breaks its contract ({detail}): report it to "
                "the PMM helpdesk"
            ) from None
        if period.kind is not PeriodKind(wire.jenis):
            raise PeriodListingError(
                f"the source lists period {wire.kode} as {wire.jenis}, but a {wire.jenis} code "
                f"is {'YYYY' if wire.jenis == 'tahunan' else 'YYYY-1 or YYYY-2'}: report it to "
                "the PMM helpdesk"
            )
        # batas_penilaian null: the period's last day (contract).
        deadline = wire.batas_penilaian or wire.tanggal_selesai or period.end
        listed.append(ListedPeriod(period, deadline, running=wire.status == "berjalan"))
    listed.sort(key=lambda p: (p.period.start, p.period.end))
    return listed


def find_period(listed: Sequence[ListedPeriod], code: str) -> ListedPeriod:
    """The listed period ``code``; the error names the periods the source does list."""
    for entry in listed:
        if entry.code == code:
            return entry
    known = ", ".join(p.code for p in listed) or "none"
    raise PeriodListingError(f"the source does not list period {code}; it lists: {known}")


def active_periods(
    listed: Sequence[ListedPeriod], today: dt.date, *, grace_days: int = 0
) -> list[ListedPeriod]:
    """The periods to sync on ``today``: those running and those still inside their
    deadline (``batas_penilaian``, plus ``grace_days``), newest first."""
    active = [p for p in listed if p.active_on(today, grace_days=grace_days)]
    return sorted(active, key=lambda p: p.period.start, reverse=True)
