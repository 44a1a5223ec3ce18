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
    "Assessment",
    "AssessmentStatus",
    "Assessor",
    "Employee",
    "EmploymentStatus",
    "Indicator",
    "PerformanceRecord",
    "Period",
    "Role",
    "School",
]

_PERIOD_CODE = re.compile(r"(20[0-9]{2})-([12])")  # PMM exists from 2024; 20xx is plenty


class Role(StrEnum):
    TEACHER = "teacher"  # guru
    PRINCIPAL = "principal"  # kepala_sekolah
    SUPERVISOR = "supervisor"  # pengawas_sekolah (only ever an assessor here)


class EmploymentStatus(StrEnum):
    PNS = "PNS"
    PPPK = "PPPK"


class AssessmentStatus(StrEnum):
    NOT_STARTED = "not_started"  # belum
    DRAFT = "draft"  # draf
    FINAL = "final"  # final


@dataclass(frozen=True, slots=True)
class Period:
    """A semester: ``2025-1`` is January-June 2025, ``2025-2`` July-December."""

    code: str
    year: int
    semester: int

    @classmethod
    def parse(cls, code: str) -> Period:
        match = _PERIOD_CODE.fullmatch(code)
        if match is None:
            raise ValueError(f"period {code!r} is not YYYY-1 or YYYY-2 (a year 2000-2099)")
        return cls(code=code, year=int(match[1]), semester=int(match[2]))

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 1 if self.semester == 1 else 7, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.year, 6, 30) if self.semester == 1 else dt.date(self.year, 12, 31)

    @property
    def months(self) -> int:
        return 6

    def __str__(self) -> str:
        return self.code


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

    @property
    def plan_approved(self) -> bool:
        return self.plan_approved_at is not None

    @property
    def assessment_final(self) -> bool:
        return self.assessment.status is AssessmentStatus.FINAL
