"""Performance periods of the sandbox: a semester (``YYYY-S``) or a year (``YYYY``).

Both servers use it: the source lists periods (``GET /api/v1/periode``) and the target checks
that an SKP's dates are exactly its period's. Up to 2024 PMM ran semesters, from 2025 years;
the kind is the period's ``jenis``, never a guess from the year.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Jenis", "Period", "parse_period", "period_bounds"]

Jenis = Literal["semester", "tahunan"]

_SEMESTER_RE = re.compile(r"^(\d{4})-([12])$")
_YEAR_RE = re.compile(r"^(\d{4})$")


def period_bounds(tahun: int, jenis: str, semester: int | None) -> tuple[dt.date, dt.date]:
    """The first and last day of a period; ``ValueError`` for a kind/semester that do not fit."""
    if jenis == "tahunan" and semester is None:
        return dt.date(tahun, 1, 1), dt.date(tahun, 12, 31)
    if jenis == "semester" and semester == 1:
        return dt.date(tahun, 1, 1), dt.date(tahun, 6, 30)
    if jenis == "semester" and semester == 2:
        return dt.date(tahun, 7, 1), dt.date(tahun, 12, 31)
    raise ValueError(f"no period {jenis!r} {tahun} semester {semester!r}")


@dataclass(frozen=True)
class Period:
    """One period; ``semester`` is None for a year."""

    kode: str
    jenis: Jenis
    tahun: int
    semester: int | None

    @property
    def start(self) -> dt.date:
        return period_bounds(self.tahun, self.jenis, self.semester)[0]

    @property
    def end(self) -> dt.date:
        return period_bounds(self.tahun, self.jenis, self.semester)[1]

    @property
    def months(self) -> int:
        """6 for a semester, 12 for a year."""
        return 12 if self.jenis == "tahunan" else 6

    @property
    def deadline(self) -> dt.date:
        """``batas_penilaian``: a semester's last day; for a year 31 January of the next."""
        if self.jenis == "tahunan":
            return dt.date(self.tahun + 1, 1, 31)
        return self.end

    def as_wire(self, status: str) -> dict[str, Any]:
        """The ``Periode`` of docs/apis.md, "Source: periods"."""
        return {
            "kode": self.kode,
            "jenis": self.jenis,
            "tahun": self.tahun,
            "semester": self.semester,
            "tanggal_mulai": self.start.isoformat(),
            "tanggal_selesai": self.end.isoformat(),
            "batas_penilaian": self.deadline.isoformat(),
            "status": status,
        }


def parse_period(kode: str) -> Period:
    """``YYYY-S`` (S 1 or 2) is a semester, ``YYYY`` a year; ``ValueError`` otherwise."""
    match = _SEMESTER_RE.match(kode)
    if match is not None:
        return Period(kode, "semester", int(match.group(1)), int(match.group(2)))
    match = _YEAR_RE.match(kode)
    if match is not None:
        return Period(kode, "tahunan", int(match.group(1)), None)
    raise ValueError(
        f"a period is 'YYYY-S' (a semester, S 1 or 2) or 'YYYY' (a year), not {kode!r}"
    )
