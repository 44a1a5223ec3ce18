"""Mapping version 2026.1: what a dinas asked for once kepala sekolah could pick two indicators.

Changes against 2025.1 (everything else is the same):

- one ``rencana_hasil_kerja`` entry per indicator: a kepala sekolah with two indicators (2026
  and later, PMM schema v2) gets two rencana hasil kerja, each with its own indicator, instead of
  one entry holding both;
- an indicator's ``target`` states the training hours (``pengembangan_kompetensi_jp``) when PMM
  reports any, e.g. "...; pengembangan kompetensi 32 JP" (0 or a missing count adds nothing);
- ``catatan`` is trimmed: leading and trailing blanks go, and a note of blanks only is sent as
  null.

The module is self-contained on purpose (it repeats 2025.1's small wire tables instead of
importing them): a released mapping version never changes, and editing one version must not
change what another produces (tests/golden holds what each must produce).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mappings.model import PerformanceRecord, Role
from mappings.rules import Grade, Predicate, Rating, credit_points
from mappings.target import AssessmentPayload, SkpPayload

__all__ = ["VERSION", "assessment_payload", "skp_payload"]

VERSION = "2026.1"

_WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

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
_TARGET_TEXT = "Praktik yang dipilih terlaksana dan membaik pada akhir semester"


def _target(record: PerformanceRecord) -> str:
    hours = record.training_hours
    if hours is None or hours <= 0:
        return _TARGET_TEXT
    return f"{_TARGET_TEXT}; pengembangan kompetensi {hours} JP"


def _note(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


def skp_payload(record: PerformanceRecord) -> dict[str, Any]:
    """The ``POST /api/v1/skp`` (and ``PUT``) body for a record whose plan is approved."""
    period = record.period
    role = record.employee.role
    target = _target(record)
    return SkpPayload.build(
        {
            "nip": record.employee.nip,
            "periode": {
                "tahun": period.year,
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
    return AssessmentPayload.build(
        {
            "rating_hasil_kerja": _RATING[result],
            "rating_perilaku_kerja": _RATING[behaviour],
            "predikat_kinerja": _PREDICATE[predicate],
            # The date as PMM's penilai saw it: the local (WIB) date of finalisation.
            "tanggal_penilaian": assessment.finalised_at.astimezone(_WIB).date(),
            "pejabat_penilai": {"nip": record.assessor.nip},
            "angka_kredit": (
                credit_points(grade, predicate, record.period.months) if grade else None
            ),
            "catatan": _note(assessment.note),
        }
    )
