"""Reading PMM ``Kinerja`` records (schema versions 1 and 2) into ``PerformanceRecord``.

The wire models below keep the contract's Indonesian names; nothing outside ``mappings`` and
``connectors`` sees them. ``read_record`` never raises on bad data: it returns a ``Rejection``
with a reason a person can act on, so the batch goes on (docs/design.md, invariant 1; what is
refused: docs/operators/periods.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mappings._errors import describe
from mappings.identifiers import (
    check_birth_date,
    check_nip,
    check_npsn,
    check_nuptk,
    check_tmt_cpns_age,
    check_tmt_cpns_period,
)
from mappings.model import (
    Assessment,
    AssessmentStatus,
    Assessor,
    Employee,
    EmploymentStatus,
    Indicator,
    PerformanceRecord,
    Period,
    Role,
    School,
)
from mappings.rules import Grade, Predicate, Rating, expected_predicate

__all__ = ["SUPPORTED_SCHEMA_VERSIONS", "Rejection", "read_record"]

SUPPORTED_SCHEMA_VERSIONS = (1, 2)

_ROLE = {"guru": Role.TEACHER, "kepala_sekolah": Role.PRINCIPAL}
_ASSESSOR_ROLE = {
    "kepala_sekolah": Role.PRINCIPAL,
    "pengawas_sekolah": Role.SUPERVISOR,
    "kepala_dinas": Role.HEAD_OF_OFFICE,
}
_GRADE = {
    "ahli_pertama": Grade.FIRST,
    "ahli_muda": Grade.JUNIOR,
    "ahli_madya": Grade.MIDDLE,
    "ahli_utama": Grade.MAIN,
}
_RATING = {
    "diatas_ekspektasi": Rating.ABOVE,
    "sesuai_ekspektasi": Rating.MEETS,
    "dibawah_ekspektasi": Rating.BELOW,
}
_PREDICATE = {
    "sangat_baik": Predicate.VERY_GOOD,
    "baik": Predicate.GOOD,
    "butuh_perbaikan": Predicate.NEEDS_IMPROVEMENT,
    "kurang": Predicate.POOR,
    "sangat_kurang": Predicate.VERY_POOR,
}
_STATUS = {
    "belum": AssessmentStatus.NOT_STARTED,
    "draf": AssessmentStatus.DRAFT,
    "final": AssessmentStatus.FINAL,
}
# Reasons name values as PMM shows them to the people who must fix them.
_WIRE: dict[Rating | Predicate, str] = {
    **{v: k for k, v in _RATING.items()},
    **{v: k for k, v in _PREDICATE.items()},
}
# What to do about a record that breaks PMM's own contract (sync/advice.py says the same).
_REPORT_TO_PMM = "; PMM broke its contract: report it to the PMM helpdesk with the source id"
# Who fixes a NIP whose own dates cannot be: it is Dapodik's copy of BKN's number.
_NIP_AGAINST_SIASN = (
    "the school's operator checks the NIP in Dapodik / Verval PTK against BKN's register "
    "(SIASN) and corrects it in Dapodik (it reaches PMM)"
)
_CATALOGUE = frozenset(f"{family}-0{n}" for family in "GK" for n in range(1, 9))
_INDICATOR_PREFIX = {Role.TEACHER: "G-", Role.PRINCIPAL: "K-"}

RatingWire = Literal["diatas_ekspektasi", "sesuai_ekspektasi", "dibawah_ekspektasi"]
PredicateWire = Literal["sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """A source record that cannot be sent as it is, and why (for the quarantine)."""

    source_id: str
    period: str | None
    nip: str | None
    npsn: str | None
    code: str
    reason: str


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Indikator(_Wire):
    kode: str
    nama: str


class _Sekolah(_Wire):
    npsn: str
    nama: str


class _Penilai(_Wire):
    nip: str
    nama: str
    peran: Literal["kepala_sekolah", "pengawas_sekolah", "kepala_dinas"]


class _Observasi(_Wire):
    tahap: str
    selesai_pada: dt.datetime | None = None


class _Pelaksanaan(_Wire):
    observasi: list[_Observasi] = Field(default_factory=list)
    pengembangan_kompetensi_jp: int | None = None


class _PegawaiBase(_Wire):
    nip: str
    # Any value: NUPTK is never sent, so even one of the wrong type is a note, not a refusal.
    nuptk: Any = None
    nama: str
    status_kepegawaian: Literal["PNS", "PPPK"]
    jabatan: str
    jenjang_jabatan: Literal["ahli_pertama", "ahli_muda", "ahli_madya", "ahli_utama"] | None = None
    tmt_jabatan: dt.date | None = None  # optional in both versions; absent and null alike


class _PegawaiV1(_PegawaiBase):
    peran: Literal["guru", "kepala_sekolah"]


class _PegawaiV2(_PegawaiBase):
    jenis_ptk: Literal["guru", "kepala_sekolah"]


class _PerencanaanV1(_Wire):
    indikator: _Indikator
    disetujui_pada: dt.datetime | None = None


class _PerencanaanV2(_Wire):
    indikator: list[_Indikator] = Field(min_length=1, max_length=2)
    disetujui_pada: dt.datetime | None = None


class _Hasil(_Wire):
    rating_hasil_kerja: RatingWire | None = None
    rating_perilaku: RatingWire | None = None
    predikat: PredicateWire | None = None


class _PenilaianV1(_Hasil):
    status: Literal["belum", "draf", "final"]
    difinalkan_pada: dt.datetime | None = None


class _PenilaianV2(_Wire):
    status: Literal["belum", "draf", "final"]
    hasil: _Hasil = Field(default_factory=_Hasil)
    difinalkan_pada: dt.datetime | None = None
    catatan: str | None = Field(default=None, max_length=2000)


class _KinerjaBase(_Wire):
    id: str = Field(min_length=1)
    periode: str
    sekolah: _Sekolah
    penilai: _Penilai
    pelaksanaan: _Pelaksanaan = Field(default_factory=_Pelaksanaan)
    dibatalkan: bool = False
    diperbarui_pada: dt.datetime


class _KinerjaV1(_KinerjaBase):
    versi_skema: Literal[1]
    pegawai: _PegawaiV1
    perencanaan: _PerencanaanV1
    penilaian: _PenilaianV1


class _KinerjaV2(_KinerjaBase):
    versi_skema: Literal[2]
    pegawai: _PegawaiV2
    perencanaan: _PerencanaanV2
    penilaian: _PenilaianV2


def _get(raw: Mapping[str, Any], *path: str) -> str | None:
    """A best-effort string at ``path`` in an unvalidated record (for naming a rejection)."""
    node: Any = raw
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def _to_record(wire: _KinerjaV1 | _KinerjaV2) -> PerformanceRecord:
    if isinstance(wire, _KinerjaV1):
        role_wire = wire.pegawai.peran
        indicators = [wire.perencanaan.indikator]
        hasil: _Hasil = wire.penilaian
        note = None
    else:
        role_wire = wire.pegawai.jenis_ptk
        indicators = list(wire.perencanaan.indikator)
        hasil = wire.penilaian.hasil
        note = wire.penilaian.catatan
    pegawai = wire.pegawai
    period = Period.parse(wire.periode)
    # The domain values are plain frozen dataclasses: what the wire model validated is not
    # validated again (a record is validated once, issue 28).
    return PerformanceRecord(
        source_id=wire.id,
        schema_version=wire.versi_skema,
        period=period,
        employee=Employee(
            nip=pegawai.nip,
            # Empty, as Dapodik exports often have it, is absent.
            nuptk=pegawai.nuptk if isinstance(pegawai.nuptk, str) and pegawai.nuptk else None,
            name=pegawai.nama,
            role=_ROLE[role_wire],
            employment_status=EmploymentStatus(pegawai.status_kepegawaian),
            position=pegawai.jabatan,
            grade=_GRADE[pegawai.jenjang_jabatan] if pegawai.jenjang_jabatan else None,
            position_start=pegawai.tmt_jabatan,
        ),
        school=School(npsn=wire.sekolah.npsn, name=wire.sekolah.nama),
        assessor=Assessor(
            nip=wire.penilai.nip, name=wire.penilai.nama, role=_ASSESSOR_ROLE[wire.penilai.peran]
        ),
        indicators=tuple(Indicator(code=i.kode, name=i.nama) for i in indicators),
        plan_approved_at=wire.perencanaan.disetujui_pada,
        training_hours=wire.pelaksanaan.pengembangan_kompetensi_jp,
        assessment=Assessment(
            status=_STATUS[wire.penilaian.status],
            result_rating=_RATING[hasil.rating_hasil_kerja] if hasil.rating_hasil_kerja else None,
            behaviour_rating=_RATING[hasil.rating_perilaku] if hasil.rating_perilaku else None,
            predicate=_PREDICATE[hasil.predikat] if hasil.predikat else None,
            finalised_at=wire.penilaian.difinalkan_pada,
            note=note,
        ),
        cancelled=wire.dibatalkan,
        updated_at=wire.diperbarui_pada,
        notes=_notes(wire, period),
    )


def _notes(wire: _KinerjaV1 | _KinerjaV2, period: Period) -> tuple[str, ...]:
    """What is odd in the record but not provably wrong: it is sent, and the school is told
    (docs/domain.md, "Validation in general": a bad NUPTK is a note for the school; a
    tmt_jabatan after the period is reported on the record rather than its angka kredit
    dropped silently)."""
    notes = []
    if (reason := check_nuptk(wire.pegawai.nuptk)) is not None:
        notes.append(
            f"{reason}: the school corrects it in Dapodik (NUPTK is never sent to e-Kinerja, "
            "so the record is sent)"
        )
    start, end = wire.pegawai.tmt_jabatan, period.end
    if start is not None and start > end:
        credit = (
            ", so no month of it counts for angka kredit (mapping 2026.2 sends none)"
            if wire.pegawai.jenjang_jabatan
            else ""
        )
        notes.append(
            f"tmt_jabatan {start.isoformat()} is after the period ended ({end.isoformat()})"
            f"{credit}: the school checks tmt_jabatan in Dapodik"
        )
    return tuple(notes)


def _problems(record: PerformanceRecord) -> tuple[str, str] | None:
    """The first domain rule the record breaks, as (code, reason), or None."""
    employee = record.employee
    if (reason := check_nip(employee.nip, employee.employment_status.value)) is not None:
        return "invalid_nip", f"{reason}: correct the NIP in Dapodik/PMM"
    # The NIP's own dates against each other, the period and the day PMM wrote the record:
    # only what cannot be (docs/domain.md, "Cross-checks that are provably wrong").
    written_on = record.updated_at.date()
    if (reason := check_birth_date(employee.nip, written_on)) is not None:
        return "birth_date_in_future", f"{reason}: {_NIP_AGAINST_SIASN}"
    if employee.employment_status is EmploymentStatus.PNS:
        if (reason := check_tmt_cpns_age(employee.nip)) is not None:
            return "tmt_cpns_under_age", f"{reason}: {_NIP_AGAINST_SIASN}"
        if (reason := check_tmt_cpns_period(employee.nip, record.period.end)) is not None:
            return "tmt_cpns_after_period", (
                f"{reason}: {_NIP_AGAINST_SIASN}; if the NIP is right, PMM holds the record "
                "under a period before the appointment: report it to the PMM helpdesk"
            )
    if (reason := check_npsn(record.school.npsn)) is not None:
        return "invalid_npsn", f"{reason}: correct the school's NPSN in PMM"
    if (reason := check_nip(record.assessor.nip, "PPPK")) is not None or (
        reason := check_birth_date(record.assessor.nip, written_on)
    ) is not None:
        # The assessor's status is not in the record, so only the PPPK-compatible shape is checked.
        return "invalid_assessor_nip", f"assessor {reason}: correct the penilai in PMM"
    if record.assessor.nip == employee.nip:
        return "self_assessment", f"NIP {employee.nip} is its own penilai: set the penilai in PMM"
    prefix = _INDICATOR_PREFIX[employee.role]
    role_wire = "guru" if employee.role is Role.TEACHER else "kepala sekolah"
    for indicator in record.indicators:
        if indicator.code not in _CATALOGUE:
            return (
                "unknown_indicator",
                f"indicator {indicator.code!r} is not in the catalogue (G-01..G-08, K-01..K-08):"
                " the plan in PMM must pick one from it",
            )
        if not indicator.code.startswith(prefix):
            return (
                "indicator_role_mismatch",
                f"indicator {indicator.code} is not a {role_wire} indicator "
                f"({prefix}01..{prefix}08): the plan in PMM must pick one from the right catalogue",
            )
    codes = [indicator.code for indicator in record.indicators]
    if twice := sorted({code for code in codes if codes.count(code) > 1}):
        return (
            "duplicate_indicator",
            f"indicator {twice[0]} is picked twice in one plan: the {role_wire} corrects the "
            "perencanaan in PMM (keep it once, or pick another one) and the penilai approves it",
        )
    if employee.role is Role.TEACHER and len(record.indicators) != 1:
        return (
            "indicator_count",
            f"a guru picks exactly one indicator; PMM sent {len(record.indicators)}: "
            "correct the perencanaan in PMM",
        )
    if len(record.indicators) == 2 and record.period.year < 2026:
        return (
            "indicator_count",
            f"two indicators are allowed only from 2026 on, not in {record.period}: "
            "correct the perencanaan in PMM to keep one",
        )
    assessment = record.assessment
    ratings = (assessment.result_rating, assessment.behaviour_rating)
    if assessment.predicate is not None and ratings[0] is not None and ratings[1] is not None:
        expected = expected_predicate(ratings[0], ratings[1])
        if assessment.predicate is not expected:
            return (
                "predicate_mismatch",
                f"predikat {_WIRE[assessment.predicate]} does not follow the matrix: "
                f"rating_hasil_kerja {_WIRE[ratings[0]]} and rating_perilaku "
                f"{_WIRE[ratings[1]]} give {_WIRE[expected]}; the penilai must correct the "
                "penilaian in PMM",
            )
    if record.assessment_final:
        missing = [
            name
            for name, value in (
                ("rating_hasil_kerja", ratings[0]),
                ("rating_perilaku", ratings[1]),
                ("predikat", assessment.predicate),
                ("difinalkan_pada", assessment.finalised_at),
            )
            if value is None
        ]
        if missing:
            return (
                "final_incomplete",
                f"final penilaian lacks {', '.join(missing)}: the penilai must complete it in PMM",
            )
        finalised = assessment.finalised_at
        # Its calendar date in the offset it was written with (docs/domain.md, "Dates").
        if finalised is not None and finalised.date() < record.period.start:
            return (
                "finalised_before_period",
                f"the penilaian of {record.period} was finalised on {finalised.date()}, before "
                f"the period began ({record.period.start}): PMM holds it under the wrong period "
                "or with a wrong date, which no one at the school can change: report it to the "
                "PMM helpdesk with the source id",
            )
    return None


def _no_assessor(raw: Mapping[str, Any]) -> str | None:
    """Why a record without a penilai cannot go, naming who can act: not the school (a guru
    cannot assess themself, and a school without a kepala sekolah cannot appoint one) but
    the dinas, who assigns a Plt kepala sekolah, or the penilai of a kepala sekolah."""
    penilai = raw.get("penilai")
    if isinstance(penilai, Mapping) and penilai.get("nip") not in (None, ""):
        return None
    pegawai = raw.get("pegawai")
    role = None
    if isinstance(pegawai, Mapping):
        role = pegawai.get("jenis_ptk", pegawai.get("peran"))
    school = _get(raw, "sekolah", "npsn") or "?"
    if role == "kepala_sekolah":
        who = (
            "the dinas sets the kepala sekolah's penilai (the Kepala Dinas from 2026, a pengawas "
            "sekolah before) in PMM"
        )
    else:
        who = (
            f"the school {school} has no kepala sekolah to assess its guru: the dinas assigns a "
            "Plt kepala sekolah in Dapodik/PMM"
        )
    return f"no penilai is assigned in PMM, and the school cannot fix this itself: {who}"


def read_record(raw: object) -> PerformanceRecord | Rejection:
    """Validate one raw ``Kinerja`` record and read it, or say why it cannot be sent."""
    if not isinstance(raw, Mapping):
        return Rejection(
            "?", None, None, None, "malformed", "record is not a JSON object" + _REPORT_TO_PMM
        )
    source_id = _get(raw, "id") or "?"
    period, nip, npsn = (
        _get(raw, "periode"),
        _get(raw, "pegawai", "nip"),
        _get(raw, "sekolah", "npsn"),
    )

    def reject(code: str, reason: str) -> Rejection:
        return Rejection(source_id, period, nip, npsn, code, reason)

    version = raw.get("versi_skema")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        return reject(
            "unknown_schema_version",
            f"versi_skema {version!r} is not one this service reads "
            f"({', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}): upgrade ekinerja-sync",
        )
    if (reason := _no_assessor(raw)) is not None:
        return reject("no_assessor", reason)
    model = _KinerjaV1 if version == 1 else _KinerjaV2
    try:
        wire = model.model_validate(raw)
        record = _to_record(wire)
    except ValidationError as exc:
        return reject(
            "malformed",
            f"record does not follow schema v{version}: {describe(exc)}{_REPORT_TO_PMM}",
        )
    except ValueError as exc:  # e.g. a period code that is not YYYY-S
        return reject("malformed", f"{exc}{_REPORT_TO_PMM}")
    for stamp in (record.updated_at, record.plan_approved_at, record.assessment.finalised_at):
        if stamp is not None and stamp.tzinfo is None:
            return reject(
                "malformed", f"timestamp {stamp.isoformat()} has no UTC offset{_REPORT_TO_PMM}"
            )
    problem = _problems(record)
    if problem is not None:
        return reject(*problem)
    return record
