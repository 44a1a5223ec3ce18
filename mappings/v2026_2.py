"""Mapping version 2026.2: the annual cycle (from 2025), and semesters with the same rules.

Changes against 2026.1 (everything else is the same):

- ``periode`` carries its kind: ``jenis`` ``tahunan`` (``semester`` null, 1 January to 31
  December) or ``semester`` (``semester`` 1 or 2), as the source lists the period;
- angka kredit counts the months of the period from ``tmt_jabatan`` when the person took up
  the jabatan inside it (a start on the 1st counts its own month, a later day counts from the
  next month; docs/domain.md, "Angka kredit"), is rounded half up to 3 decimals (BKN's own
  conversion examples keep three), and goes with ``bulan_dinilai``, the months it counts; a start so
  late that no whole month is left sends neither;
- ``tanggal_penilaian`` is the calendar date of ``difinalkan_pada`` in the offset it was
  written with (a penilai in WITA who finalised at 00:30 on 1 July finalised on 1 July);
- the target text speaks of the end of the year for an annual period.

Self-contained on purpose, like every version: a released mapping version never changes.
"""

from __future__ import annotations

from typing import Any

from mappings.model import PerformanceRecord, PeriodKind, Role
from mappings.rules import Grade, Predicate, Rating, credit_points
from mappings.target import AssessmentPayloadWithMonths, SkpPayloadWithKind

__all__ = ["VERSION", "assessment_payload", "skp_payload"]

VERSION = "2026.2"

_JOB_KIND: dict[Role, str] = {Role.TEACHER: "guru", Role.PRINCIPAL: "kepala_sekolah"}
_RATING: dict[Rating, str] = {
    Rating.ABOVE: "DIATAS_EKSPEKTASI",
    Rating.MEETS: "SESUAI_EKSPEKTASI",
    Rating.BELOW: "DIBAWAH_EKSPEKTASI",
}
_PREDICATE: dict[Predicate, str] = {
    Predicate.VERY_GOOD: "SANGAT_BAIK",
    Predicate.GOOD: "BAIK",
    Predicate.NEEDS_IMPROVEMENT: "BUTUH_PERBAIKAN",
    Predicate.POOR: "KURANG",
    Predicate.VERY_POOR: "SANGAT_KURANG",
}
_PLAN_TEXT = {
    Role.TEACHER: "Meningkatnya kualitas pembelajaran di kelas",
    Role.PRINCIPAL: "Meningkatnya kualitas kepemimpinan pembelajaran di satuan pendidikan",
}
_TARGET_TEXT = {
    PeriodKind.SEMESTER: "Praktik yang dipilih terlaksana dan membaik pada akhir semester",
    PeriodKind.ANNUAL: "Praktik yang dipilih terlaksana dan membaik pada akhir tahun",
}
_CREDIT_PLACES = 3


def _target(record: PerformanceRecord) -> str:
    text = _TARGET_TEXT[record.period.kind]
    hours = record.training_hours
    if hours is None or hours <= 0:
        return text
    return f"{text}; pengembangan kompetensi {hours} JP"


def _note(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


def skp_payload(record: PerformanceRecord) -> dict[str, Any]:
    """The ``POST /api/v1/skp`` (and ``PUT``) body for a record whose plan is approved."""
    period = record.period
    role = record.employee.role
    target = _target(record)
    return SkpPayloadWithKind.build(
        {
            "nip": record.employee.nip,
            "periode": {
                "tahun": period.year,
                "jenis": period.kind.value,
                "semester": period.semester,
                "tanggal_mulai": period.start,
                "tanggal_selesai": period.end,
            },
            "jenis_jabatan": _JOB_KIND[role],
            "jabatan": record.employee.position,
            "unit_kerja": {"npsn": record.school.npsn, "nama": record.school.name},
            "pejabat_penilai": {"nip": record.assessor.nip},
            "rencana_hasil_kerja": [
                {
                    "uraian": _PLAN_TEXT[role],
                    "indikator": [{"kode": i.code, "uraian": i.name, "target": target}],
                }
                for i in record.indicators
            ],
            "sumber": {
                "sistem": "PMM",
                "id": record.source_id,
                "versi_skema": record.schema_version,
            },
        }
    )


def assessment_payload(record: PerformanceRecord) -> dict[str, Any]:
    """The ``POST /api/v1/skp/{id}/penilaian`` body for a record whose penilaian is final.

    Angka kredit goes with it for every jabatan fungsional with a grade (jenjang); a kepala
    sekolah's follows the guru's own grade (docs/domain.md, "Angka kredit").
    """
    assessment = record.assessment
    result, behaviour, predicate = (
        assessment.result_rating,
        assessment.behaviour_rating,
        assessment.predicate,
    )
    if not record.assessment_final:
        raise ValueError(f"record {record.source_id}: penilaian is not final")
    if result is None or behaviour is None or predicate is None or assessment.finalised_at is None:
        raise ValueError(f"record {record.source_id}: penilaian is not complete")
    grade: Grade | None = record.employee.grade
    months = record.period.months_from(record.employee.position_start)
    credit = (
        credit_points(grade, predicate, months, places=_CREDIT_PLACES)
        if grade is not None and months > 0
        else None
    )
    return AssessmentPayloadWithMonths.build(
        {
            "rating_hasil_kerja": _RATING[result],
            "rating_perilaku_kerja": _RATING[behaviour],
            "predikat_kinerja": _PREDICATE[predicate],
            # The calendar date where the penilai finalised it: in the timestamp's own offset.
            "tanggal_penilaian": assessment.finalised_at.date(),
            "pejabat_penilai": {"nip": record.assessor.nip},
            "angka_kredit": credit,
            "bulan_dinilai": months if credit is not None else None,
            "catatan": _note(assessment.note),
        }
    )
