"""Mapping version 2025.1: the first mapping of PMM records onto e-Kinerja payloads.

Pure functions from ``PerformanceRecord`` to the target's JSON bodies (wire names). A new
version is a new module beside this one; a sent payload always records which version made it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mappings.model import PerformanceRecord, Role
from mappings.rules import Grade, Predicate, Rating, credit_points
from mappings.target import AssessmentPayload, SkpPayload

__all__ = ["VERSION", "assessment_payload", "skp_payload"]

VERSION = "2025.1"

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


def skp_payload(record: PerformanceRecord) -> dict[str, Any]:
    """The ``POST /api/v1/skp`` (and ``PUT``) body for a record whose plan is approved."""
    period = record.period
    role = record.employee.role
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
                    "indikator": [
                        {"kode": i.code, "uraian": i.name, "target": _TARGET_TEXT}
                        for i in record.indicators
                    ],
                }
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
            "catatan": assessment.note,
        }
    )
