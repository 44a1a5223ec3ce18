"""The core's own view of a performance record, in English, free of wire names.

Source schemas (v1, v2) are read into these frozen values by ``mappings.source``; the target
payloads are made from them by a mapping version (``mappings.versions``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from mappings.rules import Grade, Predicate, Rating

__all__ = [
    "PERIOD_CODE",
    "Assessment",
    "AssessmentStatus",
    "Assessor",
    "Employee",
    "EmploymentStatus",
    "Indicator",
    "ListedPeriod",
    "PerformanceRecord",
    "Period",
    "PeriodKind",
    "Role",
    "School",
]

# The contract's two period codes: ``YYYY-S`` (a semester, up to 2024) and ``YYYY`` (a year,
# from 2025). The one place a period code is read; PMM exists from 2024, so 20xx is plenty.
PERIOD_CODE = re.compile(r"(20[0-9]{2})(?:-([12]))?")


class Role(StrEnum):
    TEACHER = "teacher"  # guru
    PRINCIPAL = "principal"  # kepala_sekolah
    SUPERVISOR = "supervisor"  # pengawas_sekolah (only ever an assessor here)
    # kepala_dinas: a kepala sekolah's assessor from 2026. Like a pengawas, outside the sync:
    # e-Kinerja holds their SKP already, so nothing waits for one of ours.
    HEAD_OF_OFFICE = "head_of_office"


class EmploymentStatus(StrEnum):
    PNS = "PNS"
    PPPK = "PPPK"


class AssessmentStatus(StrEnum):
    NOT_STARTED = "not_started"  # belum
    DRAFT = "draft"  # draf
    FINAL = "final"  # final


class PeriodKind(StrEnum):
    """What a period is, as the source lists it (``jenis``)."""

    SEMESTER = "semester"  # January-June or July-December; the cycle up to 2024
    ANNUAL = "tahunan"  # January-December; the cycle from 2025


@dataclass(frozen=True, slots=True)
class Period:
    """A performance period: a semester (``2024-1`` January-June, ``2024-2`` July-December)
    or a year (``2026``, January-December).

    The kind is the source's (``jenis``); the code's shape is the contract's name for it
    (``YYYY-S`` or ``YYYY``), so the two always agree. Never derived from the year itself:
    2024 has semesters because PMM lists them so, not because it is 2024.
    """

    code: str
    kind: PeriodKind
    year: int
    semester: int | None  # 1 or 2 for a semester, None for a year

    @classmethod
    def parse(cls, code: str) -> Period:
        """Read a period code; the error says what a code looks like."""
        match = PERIOD_CODE.fullmatch(code) if isinstance(code, str) else None
        if match is None:
            raise ValueError(
                f"period {code!r} is neither a semester YYYY-1 / YYYY-2 nor a year YYYY (2000-2099)"
            )
        if match[2] is None:
            return cls(code=code, kind=PeriodKind.ANNUAL, year=int(match[1]), semester=None)
        return cls(code=code, kind=PeriodKind.SEMESTER, year=int(match[1]), semester=int(match[2]))

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 7 if self.semester == 2 else 1, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.year, 6, 30) if self.semester == 1 else dt.date(self.year, 12, 31)

    @property
    def months(self) -> int:
        return 12 if self.kind is PeriodKind.ANNUAL else 6

    def months_from(self, position_start: dt.date | None) -> int:
        """The whole months of the period counted from ``position_start`` (tmt_jabatan):
        all of them when it is before the period or unknown; from its own month when it is
        the 1st, else from the next month; 0 when it is after the period
        (docs/domain.md, "Angka kredit")."""
        if position_start is None or position_start <= self.start:
            return self.months
        if position_start > self.end:
            return 0
        first = position_start.month + (0 if position_start.day == 1 else 1)
        return max(self.end.month - first + 1, 0)

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class ListedPeriod:
    """A period as the source lists it: its deadline and whether it is still running."""

    period: Period
    deadline: dt.date  # batas_penilaian: the penilaian must have reached e-Kinerja by then
    running: bool  # status ``berjalan`` (else ``ditutup``)

    @property
    def code(self) -> str:
        return self.period.code

    def active_on(self, day: dt.date, *, grace_days: int = 0) -> bool:
        """Running, or still inside its deadline (plus ``grace_days``) on ``day``."""
        return self.running or day <= self.deadline + dt.timedelta(days=grace_days)


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Employee:
    nip: str
    nuptk: str | None
    name: str
    role: Role
    employment_status: EmploymentStatus
    position: str
    grade: Grade | None
    position_start: dt.date | None = None  # tmt_jabatan: the day this jabatan began


@dataclass(frozen=True, slots=True)
class School:
    npsn: str
    name: str


@dataclass(frozen=True, slots=True)
class Assessor:
    nip: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Assessment:
    status: AssessmentStatus
    result_rating: Rating | None
    behaviour_rating: Rating | None
    predicate: Predicate | None
    finalised_at: dt.datetime | None
    note: str | None


@dataclass(frozen=True, slots=True)
class PerformanceRecord:
    """One teacher's performance cycle at one school for one period, as PMM holds it."""

    source_id: str
    schema_version: int
    period: Period
    employee: Employee
    school: School
    assessor: Assessor
    indicators: tuple[Indicator, ...]
    plan_approved_at: dt.datetime | None
    training_hours: int | None
    assessment: Assessment
    cancelled: bool
    updated_at: dt.datetime
    # What is odd but not provably wrong (a malformed NUPTK, a tmt_jabatan after the period):
    # the record is sent, and these are shown to the people who can check them.
    notes: tuple[str, ...] = ()

    @property
    def plan_approved(self) -> bool:
        return self.plan_approved_at is not None

    @property
    def assessment_final(self) -> bool:
        return self.assessment.status is AssessmentStatus.FINAL
