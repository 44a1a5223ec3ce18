"""mappings.source.read_record: PMM Kinerja v1/v2 into the core model (docs/apis.md,
"Source: performance records" and "Source: schema versions")."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.model import AssessmentStatus, EmploymentStatus, PerformanceRecord, Period, Role
from mappings.rules import Grade, Predicate, Rating
from mappings.source import Rejection, read_record

WIB = dt.timezone(dt.timedelta(hours=7))
NIP = "198503152010012003"
ASSESSOR_NIP = "197002101995031001"
NI_PPPK = "199001012022151001"  # code 15 where a PNS NIP has its TMT month
NPSN = "20212345"
SOURCE_ID = "6f0c1a2b-0000-4000-8000-000000000001"

# docs/domain.md, "Predikat matrix", in the contract's wire values: (hasil, perilaku) -> predikat.
MATRIX = {
    ("diatas_ekspektasi", "dibawah_ekspektasi"): "kurang",
    ("diatas_ekspektasi", "sesuai_ekspektasi"): "baik",
    ("diatas_ekspektasi", "diatas_ekspektasi"): "sangat_baik",
    ("sesuai_ekspektasi", "dibawah_ekspektasi"): "kurang",
    ("sesuai_ekspektasi", "sesuai_ekspektasi"): "baik",
    ("sesuai_ekspektasi", "diatas_ekspektasi"): "baik",
    ("dibawah_ekspektasi", "dibawah_ekspektasi"): "sangat_kurang",
    ("dibawah_ekspektasi", "sesuai_ekspektasi"): "butuh_perbaikan",
    ("dibawah_ekspektasi", "diatas_ekspektasi"): "butuh_perbaikan",
}
PREDIKATS = ("sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang")
PREDICATE_NAMES = {  # the code's name and docs/domain.md's name of each predikat
    "sangat_baik": (Predicate.VERY_GOOD.name, "SANGAT_BAIK"),
    "baik": (Predicate.GOOD.name, "BAIK"),
    "butuh_perbaikan": (Predicate.NEEDS_IMPROVEMENT.name, "BUTUH_PERBAIKAN"),
    "kurang": (Predicate.POOR.name, "KURANG"),
    "sangat_kurang": (Predicate.VERY_POOR.name, "SANGAT_KURANG"),
}


def _pegawai(role: str, role_key: str, status: str, nip: str) -> dict[str, Any]:
    return {
        "nip": nip,
        "nuptk": "1234567890123456",
        "nama": "Siti Aminah, S.Pd.",
        role_key: role,
        "status_kepegawaian": status,
        "jabatan": "Guru Ahli Muda",
        "jenjang_jabatan": "ahli_muda",
    }


def _stamps(periode: str) -> dict[str, str]:
    """Realistic moments of a period's cycle: the plan approved on the 20th of its first
    month, the observation on the 1st of its second, the penilaian finalised on the 18th of
    its last month and the record written on the 20th (2025-1: January, February, June)."""
    period = Period.parse(periode)
    first, last = period.start, period.end
    return {
        "approved": f"{first:%Y-%m}-20T09:00:00+07:00",
        "observed": f"{first.year}-{first.month + 1:02d}-01T08:00:00+07:00",
        "finalised": f"{last:%Y-%m}-18T14:30:00+07:00",
        "written": f"{last:%Y-%m}-20T10:00:00+07:00",
    }


# Finalised on the 18th of the period's last month (``_stamps``), unless a test says otherwise.
IN_PERIOD = "in the period"


def _common(periode: str, role: str) -> dict[str, Any]:
    stamps = _stamps(periode)
    return {
        "id": SOURCE_ID,
        "periode": periode,
        "sekolah": {"npsn": NPSN, "nama": "SDN 1 Contoh"},
        "penilai": {
            "nip": ASSESSOR_NIP,
            "nama": "Budi Santoso, M.Pd.",
            "peran": "kepala_sekolah" if role == "guru" else "pengawas_sekolah",
        },
        "pelaksanaan": {
            "observasi": [
                {"tahap": "persiapan", "selesai_pada": stamps["observed"]},
                {"tahap": "observasi", "selesai_pada": None},
            ],
            "pengembangan_kompetensi_jp": 32,
        },
        "dibatalkan": False,
        "diperbarui_pada": stamps["written"],
    }


def v1_record(
    *,
    periode: str = "2025-1",
    role: str = "guru",
    status: str = "final",
    hasil: str | None = "diatas_ekspektasi",
    perilaku: str | None = "sesuai_ekspektasi",
    predikat: str | None = "baik",
    difinalkan_pada: str | None = IN_PERIOD,
    indikator: str = "G-03",
    status_kepegawaian: str = "PNS",
    nip: str = NIP,
) -> dict[str, Any]:
    return {
        **_common(periode, role),
        "versi_skema": 1,
        "pegawai": _pegawai(role, "peran", status_kepegawaian, nip),
        "perencanaan": {
            "indikator": {"kode": indikator, "nama": "Penerapan Disiplin Positif"},
            "disetujui_pada": _stamps(periode)["approved"],
        },
        "penilaian": {
            "status": status,
            "rating_hasil_kerja": hasil,
            "rating_perilaku": perilaku,
            "predikat": predikat,
            "difinalkan_pada": _finalised(periode, difinalkan_pada),
        },
    }


def v2_record(
    *,
    periode: str = "2025-1",
    role: str = "guru",
    status: str = "final",
    hasil: str | None = "diatas_ekspektasi",
    perilaku: str | None = "sesuai_ekspektasi",
    predikat: str | None = "baik",
    difinalkan_pada: str | None = IN_PERIOD,
    indikator: tuple[str, ...] = ("G-03",),
    catatan: str | None = None,
    status_kepegawaian: str = "PNS",
    nip: str = NIP,
) -> dict[str, Any]:
    return {
        **_common(periode, role),
        "versi_skema": 2,
        "pegawai": _pegawai(role, "jenis_ptk", status_kepegawaian, nip),
        "perencanaan": {
            "indikator": [{"kode": k, "nama": "Penerapan Disiplin Positif"} for k in indikator],
            "disetujui_pada": _stamps(periode)["approved"],
        },
        "penilaian": {
            "status": status,
            "hasil": {
                "rating_hasil_kerja": hasil,
                "rating_perilaku": perilaku,
                "predikat": predikat,
            },
            "difinalkan_pada": _finalised(periode, difinalkan_pada),
            "catatan": catatan,
        },
    }


def _finalised(periode: str, given: str | None) -> str | None:
    return _stamps(periode)["finalised"] if given == IN_PERIOD else given


BUILDERS = pytest.mark.parametrize("build", [v1_record, v2_record], ids=["v1", "v2"])


def accepted(raw: object) -> PerformanceRecord:
    result = read_record(raw)
    assert isinstance(result, PerformanceRecord), result
    return result


def rejected(raw: object, code: str) -> Rejection:
    result = read_record(raw)
    assert isinstance(result, Rejection), result
    assert result.code == code, result.reason
    assert result.reason
    return result


def without(raw: dict[str, Any], *path: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    node = raw
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return raw


def with_value(raw: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


# --- valid records ---------------------------------------------------------------------------


def test_v1_and_v2_read_into_the_same_record() -> None:
    one = accepted(v1_record())
    two = accepted(v2_record())
    assert one.schema_version == 1
    assert two.schema_version == 2
    for field in dataclasses.fields(PerformanceRecord):
        if field.name != "schema_version":
            assert getattr(one, field.name) == getattr(two, field.name), field.name


@BUILDERS
def test_valid_record_fields(build: Any) -> None:
    record = accepted(build())
    assert record.source_id == SOURCE_ID
    assert (record.period.code, record.period.year, record.period.semester) == ("2025-1", 2025, 1)
    assert record.employee.nip == NIP
    assert record.employee.nuptk == "1234567890123456"
    assert record.employee.role is Role.TEACHER
    assert record.employee.employment_status is EmploymentStatus.PNS
    assert record.employee.position == "Guru Ahli Muda"
    assert record.employee.grade is Grade.JUNIOR
    assert (record.school.npsn, record.school.name) == (NPSN, "SDN 1 Contoh")
    assert record.assessor.nip == ASSESSOR_NIP
    assert record.assessor.role is Role.PRINCIPAL
    assert [(i.code, i.name) for i in record.indicators] == [("G-03", "Penerapan Disiplin Positif")]
    assert record.plan_approved
    assert record.plan_approved_at == dt.datetime(2025, 1, 20, 9, tzinfo=WIB)
    assert record.training_hours == 32
    assert record.assessment.status is AssessmentStatus.FINAL
    assert record.assessment_final
    assert record.assessment.result_rating is Rating.ABOVE
    assert record.assessment.behaviour_rating is Rating.MEETS
    assert record.assessment.predicate is Predicate.GOOD
    assert record.assessment.finalised_at == dt.datetime(2025, 6, 18, 14, 30, tzinfo=WIB)
    assert record.cancelled is False
    assert record.updated_at == dt.datetime(2025, 6, 20, 10, tzinfo=WIB)
    assert record.updated_at.utcoffset() == dt.timedelta(hours=7)


def test_v2_catatan_becomes_the_note() -> None:
    assert accepted(v2_record(catatan="Pertahankan.")).assessment.note == "Pertahankan."
    assert accepted(v1_record()).assessment.note is None


def test_v2_catatan_longer_than_2000_characters_is_malformed() -> None:
    assert accepted(v2_record(catatan="x" * 2000)).assessment.note == "x" * 2000
    rejection = rejected(v2_record(catatan="x" * 2001), "malformed")
    assert "catatan" in rejection.reason


@BUILDERS
def test_kepala_sekolah_record(build: Any) -> None:
    indikator = "K-05" if build is v1_record else ("K-05",)
    record = accepted(build(role="kepala_sekolah", indikator=indikator))
    assert record.employee.role is Role.PRINCIPAL
    assert record.assessor.role is Role.SUPERVISOR


@BUILDERS
def test_pppk_ni_is_accepted_with_status_pppk(build: Any) -> None:
    record = accepted(build(nip=NI_PPPK, status_kepegawaian="PPPK"))
    assert record.employee.employment_status is EmploymentStatus.PPPK
    rejection = rejected(build(nip=NI_PPPK, status_kepegawaian="PNS"), "invalid_nip")
    assert NI_PPPK in rejection.reason


@BUILDERS
def test_cancelled_flag_is_read(build: Any) -> None:
    assert accepted(with_value(build(), ("dibatalkan",), True)).cancelled is True


@BUILDERS
def test_unapproved_plan_is_read(build: Any) -> None:
    record = accepted(with_value(build(), ("perencanaan", "disetujui_pada"), None))
    assert record.plan_approved_at is None
    assert not record.plan_approved


# --- indicators ------------------------------------------------------------------------------


def test_v2_kepala_sekolah_with_two_indicators_in_2026() -> None:
    record = accepted(
        v2_record(periode="2026-1", role="kepala_sekolah", indikator=("K-01", "K-06"))
    )
    assert [i.code for i in record.indicators] == ["K-01", "K-06"]


@pytest.mark.parametrize("periode", ["2025-1", "2025-2"])
def test_v2_kepala_sekolah_with_two_indicators_before_2026_is_rejected(periode: str) -> None:
    raw = v2_record(periode=periode, role="kepala_sekolah", indikator=("K-01", "K-06"))
    rejection = rejected(raw, "indicator_count")
    assert "2026" in rejection.reason


def test_v2_guru_with_two_indicators_is_rejected_even_in_2026() -> None:
    rejected(v2_record(periode="2026-1", indikator=("G-01", "G-02")), "indicator_count")


@pytest.mark.parametrize("indikator", [(), ("K-01", "K-02", "K-03")])
def test_v2_zero_or_three_indicators_is_malformed(indikator: tuple[str, ...]) -> None:
    raw = v2_record(periode="2026-1", role="kepala_sekolah", indikator=indikator)
    rejection = rejected(raw, "malformed")
    assert "indikator" in rejection.reason


@BUILDERS
def test_guru_with_kepala_sekolah_indicator_is_rejected(build: Any) -> None:
    indikator = "K-02" if build is v1_record else ("K-02",)
    rejection = rejected(build(indikator=indikator), "indicator_role_mismatch")
    assert "K-02" in rejection.reason


@BUILDERS
def test_kepala_sekolah_with_guru_indicator_is_rejected(build: Any) -> None:
    indikator = "G-02" if build is v1_record else ("G-02",)
    rejected(build(role="kepala_sekolah", indikator=indikator), "indicator_role_mismatch")


def test_v2_kepala_sekolah_with_one_guru_indicator_among_two_is_rejected() -> None:
    raw = v2_record(periode="2026-1", role="kepala_sekolah", indikator=("K-01", "G-01"))
    rejection = rejected(raw, "indicator_role_mismatch")
    assert "G-01" in rejection.reason


# --- penilaian -------------------------------------------------------------------------------


@BUILDERS
@pytest.mark.parametrize(("hasil", "perilaku"), sorted(MATRIX))
@pytest.mark.parametrize("predikat", PREDIKATS)
def test_predikat_must_follow_the_matrix(
    build: Any, hasil: str, perilaku: str, predikat: str
) -> None:
    raw = build(hasil=hasil, perilaku=perilaku, predikat=predikat)
    expected = MATRIX[(hasil, perilaku)]
    if predikat == expected:
        assert accepted(raw).assessment.predicate.name == PREDICATE_NAMES[predikat][0]
        return
    reason = rejected(raw, "predicate_mismatch").reason
    # The reason names, as PMM shows them, the predikat sent and the one the ratings give.
    assert f"predikat {predikat} " in reason, reason
    assert reason.split(" give ")[1].startswith(f"{expected};"), reason


@BUILDERS
def test_draf_with_a_wrong_predikat_is_rejected_too(build: Any) -> None:
    raw = build(status="draf", predikat="sangat_baik", difinalkan_pada=None)
    rejected(raw, "predicate_mismatch")


@BUILDERS
@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("rating_hasil_kerja", {"hasil": None}),
        ("rating_perilaku", {"perilaku": None}),
        ("predikat", {"predikat": None}),
        ("difinalkan_pada", {"difinalkan_pada": None}),
    ],
)
def test_final_penilaian_missing_a_value_is_rejected(
    build: Any, field: str, overrides: dict[str, Any]
) -> None:
    rejection = rejected(build(**overrides), "final_incomplete")
    assert field in rejection.reason


@BUILDERS
def test_final_penilaian_missing_everything_names_every_field(build: Any) -> None:
    raw = build(hasil=None, perilaku=None, predikat=None, difinalkan_pada=None)
    reason = rejected(raw, "final_incomplete").reason
    for field in ("rating_hasil_kerja", "rating_perilaku", "predikat", "difinalkan_pada"):
        assert field in reason


@BUILDERS
@pytest.mark.parametrize("status", ["draf", "belum"])
def test_unfinished_penilaian_with_nulls_is_accepted(build: Any, status: str) -> None:
    raw = build(status=status, hasil=None, perilaku=None, predikat=None, difinalkan_pada=None)
    record = accepted(raw)
    assert not record.assessment_final
    assert record.assessment.status is (
        AssessmentStatus.DRAFT if status == "draf" else AssessmentStatus.NOT_STARTED
    )
    assert record.assessment.predicate is None
    assert record.assessment.result_rating is None


@BUILDERS
def test_draf_with_partial_ratings_is_accepted(build: Any) -> None:
    raw = build(status="draf", perilaku=None, predikat=None, difinalkan_pada=None)
    assert accepted(raw).assessment.result_rating is Rating.ABOVE


def test_v2_penilaian_without_hasil_is_read_as_not_rated() -> None:
    raw = without(v2_record(status="draf", difinalkan_pada=None), "penilaian", "hasil")
    assert accepted(raw).assessment.predicate is None


# --- schema versions -------------------------------------------------------------------------


@pytest.mark.parametrize("versi", [3, 0, -1, "2", "1", None, True, False, [1], {"v": 1}])
def test_unknown_schema_version_is_rejected_not_raised(versi: object) -> None:
    raw = with_value(v2_record(), ("versi_skema",), versi)
    rejection = rejected(raw, "unknown_schema_version")
    assert rejection.source_id == SOURCE_ID
    assert (rejection.period, rejection.nip, rejection.npsn) == ("2025-1", NIP, NPSN)


def test_missing_schema_version_is_an_unknown_version() -> None:
    rejected(without(v1_record(), "versi_skema"), "unknown_schema_version")


def test_v2_body_declared_as_v1_is_malformed() -> None:
    raw = with_value(v2_record(), ("versi_skema",), 1)
    rejection = rejected(raw, "malformed")
    assert "v1" in rejection.reason


# --- malformed records -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (v1_record, ("id",)),
        (v1_record, ("periode",)),
        (v1_record, ("pegawai",)),
        (v1_record, ("pegawai", "nip")),
        (v1_record, ("pegawai", "peran")),
        (v1_record, ("pegawai", "status_kepegawaian")),
        (v1_record, ("sekolah", "npsn")),
        (v1_record, ("perencanaan", "indikator")),
        (v1_record, ("penilaian", "status")),
        (v1_record, ("diperbarui_pada",)),
        (v2_record, ("pegawai", "jenis_ptk")),
        (v2_record, ("perencanaan", "indikator")),
        (v2_record, ("penilaian",)),
        (v2_record, ("sekolah",)),
    ],
)
def test_missing_field_is_malformed_and_named(build: Any, path: tuple[str, ...]) -> None:
    rejection = rejected(without(build(), *path), "malformed")
    assert ".".join(path) in rejection.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("pegawai", "peran"), "pengawas_sekolah"),
        (("pegawai", "status_kepegawaian"), "HONORER"),
        (("pegawai", "jenjang_jabatan"), "ahli_super"),
        (("penilaian", "rating_hasil_kerja"), "luar_biasa"),
        (("penilaian", "predikat"), "BAIK"),
        (("penilaian", "status"), "selesai"),
        (("penilai", "peran"), "guru"),
        (("pelaksanaan", "pengembangan_kompetensi_jp"), "banyak"),
        (("diperbarui_pada",), "kemarin"),
        (("periode",), "2025-3"),
        (("periode",), "25"),
        (("periode",), "2025-1-1"),
    ],
)
def test_bad_value_is_malformed_and_named(path: tuple[str, ...], value: object) -> None:
    rejection = rejected(with_value(v1_record(), path, value), "malformed")
    assert path[-1] in rejection.reason or str(value) in rejection.reason


@pytest.mark.parametrize("raw", [None, [], [v1_record()], "record", 42, 1.5, True])
def test_non_object_is_malformed(raw: object) -> None:
    rejection = rejected(raw, "malformed")
    assert rejection.source_id == "?"
    assert (rejection.period, rejection.nip, rejection.npsn) == (None, None, None)


def test_empty_id_is_malformed() -> None:
    rejected(with_value(v1_record(), ("id",), ""), "malformed")


@BUILDERS
@pytest.mark.parametrize(
    "path",
    [
        ("diperbarui_pada",),
        ("perencanaan", "disetujui_pada"),
        ("penilaian", "difinalkan_pada"),
    ],
)
def test_naive_timestamp_is_rejected(build: Any, path: tuple[str, ...]) -> None:
    rejection = rejected(with_value(build(), path, "2025-06-18T14:30:00"), "malformed")
    assert "2025-06-18T14:30:00" in rejection.reason
    assert "offset" in rejection.reason


@BUILDERS
def test_utc_timestamp_is_accepted(build: Any) -> None:
    record = accepted(with_value(build(), ("diperbarui_pada",), "2025-06-20T03:00:00Z"))
    assert record.updated_at == dt.datetime(2025, 6, 20, 10, tzinfo=WIB)


# --- identifiers and rejections keep what they can ------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (("pegawai", "nip"), "198502302010012003", "invalid_nip"),
        (("sekolah", "npsn"), "7021234", "invalid_npsn"),
        (("sekolah", "npsn"), "2021234a", "invalid_npsn"),
        (("penilai", "nip"), "19700210199503100", "invalid_assessor_nip"),
        (("penilai", "nip"), NIP, "self_assessment"),
    ],
)
def test_identifier_problems_are_rejected(path: tuple[str, ...], value: str, code: str) -> None:
    rejection = rejected(with_value(v2_record(), path, value), code)
    assert value in rejection.reason


def test_nuptk_may_be_null() -> None:
    assert accepted(with_value(v1_record(), ("pegawai", "nuptk"), None)).employee.nuptk is None


# --- NUPTK and tmt_jabatan: notes, never refusals (issue 23) ---------------------------------


@BUILDERS
def test_an_empty_nuptk_as_dapodik_exports_it_is_absent(build: Any) -> None:
    record = accepted(with_value(build(), ("pegawai", "nuptk"), ""))
    assert record.employee.nuptk is None
    assert record.notes == ()


@pytest.mark.parametrize("nuptk", ["123456789012345", "1234-5678-9012-3456", 1234567890123456])
def test_a_malformed_nuptk_is_a_note_for_the_school_and_the_record_goes_on(nuptk: object) -> None:
    # 15 digits (a digit lost in Dapodik), typed with dashes, or sent as a JSON number.
    record = accepted(with_value(v2_record(), ("pegawai", "nuptk"), nuptk))
    (note,) = record.notes
    assert str(nuptk) in note
    assert "16 digits" in note
    assert "Dapodik" in note
    assert "never sent" in note


def test_a_tmt_jabatan_after_the_period_is_a_note_on_the_record() -> None:
    # Promoted to Guru Ahli Muda on 1 August 2025: after the semester 2025-1 ended.
    raw = with_value(v2_record(), ("pegawai", "tmt_jabatan"), "2025-08-01")
    record = accepted(raw)
    (note,) = record.notes
    assert "tmt_jabatan 2025-08-01 is after the period ended (2025-06-30)" in note
    assert "angka kredit" in note
    assert "Dapodik" in note
    # Without a jenjang no angka kredit is at stake: the note does not speak of it.
    plain = accepted(with_value(raw, ("pegawai", "jenjang_jabatan"), None))
    assert "angka kredit" not in plain.notes[0]


@pytest.mark.parametrize("tmt", ["2025-06-30", "2025-01-01", "2019-03-01", None])
def test_a_tmt_jabatan_up_to_the_last_day_of_the_period_is_no_note(tmt: str | None) -> None:
    assert accepted(with_value(v2_record(), ("pegawai", "tmt_jabatan"), tmt)).notes == ()


# --- the NIP's own dates, indicators, the finalisation date: provably wrong (issue 23) ---


@pytest.mark.parametrize(
    ("nip", "code", "mentions"),
    [
        # Born 15 May 1990, TMT CPNS March 2007: 16 years old.
        ("199005152007032001", "tmt_cpns_under_age", "TMT CPNS 2007-03"),
        # TMT CPNS January 2026, but the record is of the semester 2025-1.
        ("199005152026012001", "tmt_cpns_after_period", "TMT CPNS 2026-01"),
        # Born 4 February 2031: after PMM wrote the record (June 2025).
        ("203102042050012001", "birth_date_in_future", "2031-02-04"),
    ],
)
def test_a_pns_nip_whose_own_dates_cannot_be_is_quarantined(
    nip: str, code: str, mentions: str
) -> None:
    rejection = rejected(v2_record(nip=nip), code)
    assert mentions in rejection.reason
    assert "SIASN" in rejection.reason  # who fixes it: the school's operator, in Dapodik


@pytest.mark.parametrize(
    "nip",
    [
        "198503152003032001",  # TMT CPNS in the month of the 18th birthday: possible
        "198503152025062001",  # TMT CPNS in the period's last month (June 2025)
        "200002292018022001",  # born on a leap day, appointed in the February 18 years on
    ],
)
def test_the_edges_of_the_nip_date_checks_are_accepted(nip: str) -> None:
    assert accepted(v2_record(nip=nip)).employee.nip == nip


def test_a_pppk_ni_has_no_tmt_cpns_to_check() -> None:
    # Appointment year 2026 and code 15 in a PPPK number: not a TMT CPNS, never compared.
    ni = "199001012026151001"
    assert accepted(v2_record(nip=ni, status_kepegawaian="PPPK")).employee.nip == ni


def test_a_pppk_born_in_the_future_is_quarantined_too() -> None:
    rejection = rejected(
        v2_record(nip="203001012022151001", status_kepegawaian="PPPK"), "birth_date_in_future"
    )
    assert "2030-01-01" in rejection.reason


def test_a_penilai_born_in_the_future_is_the_penilai_to_correct() -> None:
    raw = with_value(v2_record(), ("penilai", "nip"), "203001011995031001")
    assert "correct the penilai" in rejected(raw, "invalid_assessor_nip").reason


def test_the_same_indicator_twice_is_quarantined() -> None:
    raw = v2_record(periode="2026", role="kepala_sekolah", indikator=("K-05", "K-05"))
    rejection = rejected(raw, "duplicate_indicator")
    assert "K-05 is picked twice" in rejection.reason
    assert "perencanaan in PMM" in rejection.reason


def test_a_penilaian_finalised_before_its_period_began_is_quarantined() -> None:
    raw = v2_record(periode="2025-1", difinalkan_pada="2024-12-20T10:00:00+07:00")
    rejection = rejected(raw, "finalised_before_period")
    assert "finalised on 2024-12-20, before the period began (2025-01-01)" in rejection.reason
    assert "PMM helpdesk" in rejection.reason


def test_a_penilaian_finalised_on_the_first_day_in_wita_is_in_the_period() -> None:
    # 00:30 WITA on 1 July is 23:30 WIB on 30 June: the date is the one it was written in.
    raw = v2_record(periode="2024-2", difinalkan_pada="2024-07-01T00:30:00+08:00")
    assert accepted(raw).assessment.finalised_at == dt.datetime(
        2024, 7, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )


def test_a_draft_with_an_early_finalisation_stamp_is_not_judged_by_it() -> None:
    raw = v2_record(status="draf", difinalkan_pada="2024-12-20T10:00:00+07:00")
    assert accepted(raw).assessment.status is AssessmentStatus.DRAFT


def test_rejection_keeps_the_readable_identity() -> None:
    raw = v2_record(predikat="sangat_baik")
    rejection = rejected(raw, "predicate_mismatch")
    assert (rejection.source_id, rejection.period, rejection.nip, rejection.npsn) == (
        SOURCE_ID,
        "2025-1",
        NIP,
        NPSN,
    )


def test_malformed_rejection_keeps_what_is_readable() -> None:
    raw = with_value(v1_record(), ("penilaian", "status"), 7)
    rejection = rejected(raw, "malformed")
    assert (rejection.source_id, rejection.period, rejection.nip, rejection.npsn) == (
        SOURCE_ID,
        "2025-1",
        NIP,
        NPSN,
    )


def test_rejection_of_a_record_without_identity_uses_placeholders() -> None:
    raw = with_value(v1_record(), ("id",), 12)
    raw = with_value(raw, ("pegawai",), "not an object")
    raw = without(raw, "sekolah")
    rejection = rejected(raw, "malformed")
    assert rejection.source_id == "?"
    assert rejection.nip is None
    assert rejection.npsn is None
    assert rejection.period == "2025-1"


# --- read_record never raises ----------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["2025-1", "2026-1", NIP, NPSN, "2025-06-20T10:00:00+07:00", "G-01"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def check_outcome(result: object) -> None:
    assert isinstance(result, PerformanceRecord | Rejection)
    if isinstance(result, Rejection):
        assert isinstance(result.reason, str)
        assert result.reason.strip()
        assert result.code


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_random_json_never_raises(value: object) -> None:
    check_outcome(read_record(value))


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    build = draw(st.sampled_from([v1_record, v2_record]))
    raw = build(
        periode=draw(st.sampled_from(["2024-1", "2024-2", "2025", "2026"])),
        status=draw(st.sampled_from(["belum", "draf", "final"])),
    )
    for _ in range(draw(st.integers(1, 3))):
        node: Any = raw
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            descend = isinstance(child, dict | list) and child and draw(st.booleans())
            if descend:
                node = child
                continue
            if draw(st.booleans()):
                del node[key]
            else:
                node[key] = draw(JSON)
            break
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_records())
def test_mutated_record_never_raises(raw: dict[str, Any]) -> None:
    check_outcome(read_record(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_records())
def test_mutated_record_goes_through_mapping_or_is_refused_with_a_reason(
    raw: dict[str, Any],
) -> None:
    """Validation, then mapping, as the engine runs them: a record either yields payloads or
    is refused with a reason (quarantine); nothing else ever escapes."""
    from mappings.target import MappingError
    from mappings.versions import MAPPING_VERSIONS
    from sync.pipeline.plan import plan_record

    outcome = read_record(raw)
    if isinstance(outcome, Rejection):
        assert outcome.reason
        return
    for mapping in MAPPING_VERSIONS.values():
        if not mapping.maps(outcome.period.kind):
            continue  # the settings never pick it for this kind (MappingChoice refuses it)
        try:
            skp, assessment = plan_record(outcome, None, None, mapping)
        except MappingError as exc:
            refusal = str(exc)
        else:
            refusal = None
        if refusal is not None:
            assert "breaks the contract" in refusal
            continue
        if outcome.plan_approved:
            assert skp.send is not None
            assert json.loads(skp.send.body_json)["nip"] == outcome.employee.nip
        if outcome.assessment_final and outcome.plan_approved:
            assert assessment.send is not None
