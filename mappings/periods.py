"""Reading the source's period listing (``GET /api/v1/periode``) into ``ListedPeriod``.

The kind of a period is the ``jenis`` PMM lists (a ``Periode`` without one, from an older
deployment, is a semester); its code's shape must agree with it (``YYYY-S`` for a semester,
``YYYY`` for a year). An entry that breaks the contract is the source's fault: it is left
out and reported (``PeriodListing.problems``), never guessed around, and the other periods
sync as listed: one bad entry must not stop 2024's semesters or this year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mappings._errors import describe
from mappings.model import ListedPeriod, Period, PeriodKind

__all__ = [
    "ListingProblem",
    "PeriodListing",
    "PeriodListingError",
    "active_periods",
    "find_period",
    "read_periods",
]

_HELPDESK = "report it to the PMM helpdesk"


class PeriodListingError(ValueError):
    """The source's period listing lacks a period asked for, or lists it broken."""


@dataclass(frozen=True, slots=True)
class ListingProblem:
    """An entry of the listing that breaks the contract: left out, and why."""

    code: str | None  # its ``kode``, when it has a readable one
    reason: str  # what is wrong and who fixes it

    def __str__(self) -> str:
        return f"{self.reason}; the other periods sync"


class PeriodListing(list[ListedPeriod]):
    """The listed periods, oldest first, and the entries left out (``problems``)."""

    def __init__(
        self, periods: Iterable[ListedPeriod] = (), problems: Iterable[ListingProblem] = ()
    ) -> None:
        super().__init__(periods)
        self.problems: tuple[ListingProblem, ...] = tuple(problems)


class _Periode(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kode: str
    jenis: Literal["semester", "tahunan"] = "semester"
    tanggal_selesai: dt.date | None = None
    batas_penilaian: dt.date | None = None
    status: Literal["berjalan", "ditutup"] = "ditutup"


def _read_entry(entry: object) -> ListedPeriod | ListingProblem:
    kode = entry.get("kode") if isinstance(entry, Mapping) else None
    code = kode if isinstance(kode, str) else None
    try:
        wire = _Periode.model_validate(entry)
        period = Period.parse(wire.kode)
    except (ValidationError, ValueError) as exc:
        detail = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        named = f"period {code!r}" if code else "a period"
        return ListingProblem(
            code, f"the source lists {named} that breaks its contract ({detail}): {_HELPDESK}"
        )
    if period.kind is not PeriodKind(wire.jenis):
        shape = "YYYY" if wire.jenis == "tahunan" else "YYYY-1 or YYYY-2"
        return ListingProblem(
            code,
            f"the source lists period {wire.kode} as {wire.jenis}, but a {wire.jenis} code is "
            f"{shape}: {_HELPDESK}",
        )
    # batas_penilaian null: the period's last day (contract).
    deadline = wire.batas_penilaian or wire.tanggal_selesai or period.end
    return ListedPeriod(period, deadline, running=wire.status == "berjalan")


def read_periods(raw: Iterable[Any]) -> PeriodListing:
    """Every well-formed listed period, oldest first; the others in ``problems``. A code
    listed twice keeps its first entry (the second is a problem)."""
    listed: dict[str, ListedPeriod] = {}
    problems: list[ListingProblem] = []
    for entry in raw:
        read = _read_entry(entry)
        if isinstance(read, ListingProblem):
            problems.append(read)
        elif read.code in listed:
            problems.append(
                ListingProblem(read.code, f"the source lists period {read.code} twice: {_HELPDESK}")
            )
        else:
            listed[read.code] = read
    periods = sorted(listed.values(), key=lambda p: (p.period.start, p.period.end))
    return PeriodListing(periods, problems)


def find_period(listed: Sequence[ListedPeriod], code: str) -> ListedPeriod:
    """The listed period ``code``; the error names the periods the source does list."""
    for entry in listed:
        if entry.code == code:
            return entry
    for problem in getattr(listed, "problems", ()):
        if problem.code == code:
            raise PeriodListingError(problem.reason)
    known = ", ".join(p.code for p in listed) or "none"
    raise PeriodListingError(f"the source does not list period {code}; it lists: {known}")


def active_periods(
    listed: Sequence[ListedPeriod], today: dt.date, *, grace_days: int = 0
) -> list[ListedPeriod]:
    """The periods to sync on ``today``: those running and those still inside their
    deadline (``batas_penilaian``, plus ``grace_days``), newest first."""
    active = [p for p in listed if p.active_on(today, grace_days=grace_days)]
    return sorted(active, key=lambda p: p.period.start, reverse=True)
