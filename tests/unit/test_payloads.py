"""mappings.v2025_1: SKP and penilaian bodies as docs/apis.md, "Target: SKP" and
"Target: penilaian" describe them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from mappings import v2025_1
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
from mappings.rules import Grade, Predicate, Rating
from mappings.source import read_record

WIB = dt.timezone(dt.timedelta(hours=7))
NIP = "198503152010012003"
ASSESSOR_NIP = "197002101995031001"
NPSN = "2021234B"


def raw_record(versi: int, **penilaian: Any) -> dict[str, Any]:
    """A PMM Kinerja record (docs/apis.md, "Source: performance records") of the given
    schema version."""
    hasil = {
        "rating_hasil_kerja": "dibawah_ekspektasi",
        "rating_perilaku": "diatas_ekspektasi",
        "predikat": "butuh_perbaikan",
    }
    state = {"status": "final", "difinalkan_pada": "2025-12-18T14:30:00+07:00", **penilaian}
    role_key = "peran" if versi == 1 else "jenis_ptk"
    indikator = {"kode": "G-03", "nama": "Penerapan Disiplin Positif"}
    return {
        "id": f"rec-v{versi}",
        "versi_skema": versi,
        "periode": "2025-2",
        "pegawai": {
            "nip": NIP,
            "nuptk": None,
            "nama": "Siti Aminah, S.Pd.",
            role_key: "guru",
            "status_kepegawaian": "PNS",
            "jabatan": "Guru Ahli Madya",
            "jenjang_jabatan": "ahli_madya",
        },
        "sekolah": {"npsn": NPSN, "nama": "SMPN 2 Contoh"},
        "penilai": {"nip": ASSESSOR_NIP, "nama": "Budi", "peran": "kepala_sekolah"},
        "perencanaan": {
            "indikator": indikator if versi == 1 else [indikator],
            "disetujui_pada": "2025-07-20T09:00:00+07:00",
        },
        "penilaian": {**state, **hasil}
        if versi == 1
        else {**state, "hasil": hasil, "catatan": "Tingkatkan refleksi."},
        "dibatalkan": False,
        "diperbarui_pada": "2025-12-20T10:00:00+07:00",
    }


def read(raw: dict[str, Any]) -> PerformanceRecord:
    record = read_record(raw)
    assert isinstance(record, PerformanceRecord), record
    return record


def make_record(
    *,
    period: str = "2025-1",
    role: Role = Role.TEACHER,
    grade: Grade | None = Grade.JUNIOR,
    status: AssessmentStatus = AssessmentStatus.FINAL,
    ratings: tuple[Rating | None, Rating | None] = (Rating.MEETS, Rating.MEETS),
    predicate: Predicate | None = Predicate.GOOD,
    finalised_at: dt.datetime | None = dt.datetime(2025, 6, 25, 9, tzinfo=WIB),
    note: str | None = None,
    indicators: tuple[Indicator, ...] = (Indicator("G-01", "Keteraturan Suasana Kelas"),),
) -> PerformanceRecord:
    return PerformanceRecord(
        source_id="src-1",
        schema_version=2,
        period=Period.parse(period),
        employee=Employee(
            nip=NIP,
            nuptk=None,
            name="Siti",
            role=role,
            employment_status=EmploymentStatus.PNS,
            position="Guru Ahli Muda",
            grade=grade,
        ),
        school=School(npsn=NPSN, name="SMPN 2 Contoh"),
        assessor=Assessor(nip=ASSESSOR_NIP, name="Budi", role=Role.PRINCIPAL),
        indicators=indicators,
        plan_approved_at=dt.datetime(2025, 1, 20, 9, tzinfo=WIB),
        training_hours=32,
        assessment=Assessment(
            status=status,
            result_rating=ratings[0],
            behaviour_rating=ratings[1],
            predicate=predicate,
            finalised_at=finalised_at,
            note=note,
        ),
        cancelled=False,
        updated_at=dt.datetime(2025, 6, 26, 9, tzinfo=WIB),
    )


# --- SKP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("versi", [1, 2])
def test_skp_payload_of_a_source_record(versi: int) -> None:
    body = v2025_1.skp_payload(read(raw_record(versi)))
    assert body["nip"] == NIP
    # Semester 2 is July-December (docs/domain.md, "The performance cycle"); the target wants
    # exactly the semester's dates.
    assert body["periode"] == {
        "tahun": 2025,
        "semester": 2,
        "tanggal_mulai": "2025-07-01",
        "tanggal_selesai": "2025-12-31",
    }
    assert body["jenis_jabatan"] == "guru"
    assert body["jabatan"] == "Guru Ahli Madya"
    assert body["unit_kerja"] == {"npsn": NPSN, "nama": "SMPN 2 Contoh"}
    assert body["pejabat_penilai"] == {"nip": ASSESSOR_NIP}
    [rencana] = body["rencana_hasil_kerja"]
    assert rencana["uraian"]
    [indikator] = rencana["indikator"]
    assert indikator["kode"] == "G-03"
    assert indikator["uraian"] == "Penerapan Disiplin Positif"
    assert indikator["target"]
    assert body["sumber"] == {"sistem": "PMM", "id": f"rec-v{versi}", "versi_skema": versi}
    json.dumps(body)  # a JSON body, nothing exotic in it


def test_skp_payload_of_v1_and_v2_differ_only_in_the_source() -> None:
    one = v2025_1.skp_payload(read(raw_record(1)))
    two = v2025_1.skp_payload(read(raw_record(2)))
    assert one.pop("sumber") != two.pop("sumber")
    assert one == two


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2025-1", "2025-01-01", "2025-06-30"),
        ("2025-2", "2025-07-01", "2025-12-31"),
        ("2028-1", "2028-01-01", "2028-06-30"),  # a leap year changes nothing
        ("2026-2", "2026-07-01", "2026-12-31"),
    ],
)
def test_skp_period_dates_are_exactly_the_semester(period: str, start: str, end: str) -> None:
    periode = v2025_1.skp_payload(make_record(period=period))["periode"]
    assert (periode["tanggal_mulai"], periode["tanggal_selesai"]) == (start, end)
    assert periode["tahun"] == int(period[:4])
    assert periode["semester"] == int(period[-1])


def test_skp_payload_of_a_kepala_sekolah_with_two_indicators() -> None:
    indicators = (Indicator("K-01", "Visi-Misi"), Indicator("K-06", "Siklus Penguatan"))
    body = v2025_1.skp_payload(
        make_record(period="2026-1", role=Role.PRINCIPAL, indicators=indicators)
    )
    assert body["jenis_jabatan"] == "kepala_sekolah"
    [rencana] = body["rencana_hasil_kerja"]
    assert [(i["kode"], i["uraian"]) for i in rencana["indikator"]] == [
        ("K-01", "Visi-Misi"),
        ("K-06", "Siklus Penguatan"),
    ]


def test_skp_plan_text_differs_for_guru_and_kepala_sekolah() -> None:
    guru = v2025_1.skp_payload(make_record())["rencana_hasil_kerja"][0]["uraian"]
    kepala = v2025_1.skp_payload(make_record(role=Role.PRINCIPAL))["rencana_hasil_kerja"][0]
    assert guru != kepala["uraian"]


def test_skp_payload_does_not_carry_the_penilaian() -> None:
    body = v2025_1.skp_payload(make_record())
    text = json.dumps(body)
    for wire in ("predikat", "rating", "angka_kredit", "BAIK"):
        assert wire not in text
    # So a penilaian change alone does not change the SKP.
    other = make_record(ratings=(Rating.ABOVE, Rating.ABOVE), predicate=Predicate.VERY_GOOD)
    assert v2025_1.skp_payload(other) == body


# --- penilaian -------------------------------------------------------------------------------

WIRE_RATING = {
    Rating.ABOVE: "DIATAS_EKSPEKTASI",
    Rating.MEETS: "SESUAI_EKSPEKTASI",
    Rating.BELOW: "DIBAWAH_EKSPEKTASI",
}
WIRE_PREDICATE = {
    Predicate.VERY_GOOD: "SANGAT_BAIK",
    Predicate.GOOD: "BAIK",
    Predicate.NEEDS_IMPROVEMENT: "BUTUH_PERBAIKAN",
    Predicate.POOR: "KURANG",
    Predicate.VERY_POOR: "SANGAT_KURANG",
}
KOEFISIEN = {Grade.FIRST: "12.5", Grade.JUNIOR: "25", Grade.MIDDLE: "37.5", Grade.MAIN: "50"}
PERCENT = {
    Predicate.VERY_GOOD: 150,
    Predicate.GOOD: 100,
    Predicate.NEEDS_IMPROVEMENT: 75,
    Predicate.POOR: 50,
    Predicate.VERY_POOR: 25,
}
# docs/domain.md, "Predikat matrix": one (hasil, perilaku) pair for each predikat.
RATINGS_FOR = {
    Predicate.VERY_GOOD: (Rating.ABOVE, Rating.ABOVE),
    Predicate.GOOD: (Rating.MEETS, Rating.MEETS),
    Predicate.NEEDS_IMPROVEMENT: (Rating.BELOW, Rating.MEETS),
    Predicate.POOR: (Rating.ABOVE, Rating.BELOW),
    Predicate.VERY_POOR: (Rating.BELOW, Rating.BELOW),
}


def semester_credit(grade: Grade, predicate: Predicate) -> float:
    raw = Decimal(KOEFISIEN[grade]) * PERCENT[predicate] / 100 * 6 / 12
    return float(raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("versi", [1, 2])
def test_penilaian_payload_of_a_source_record(versi: int) -> None:
    body = v2025_1.assessment_payload(read(raw_record(versi)))
    assert body["rating_hasil_kerja"] == "DIBAWAH_EKSPEKTASI"
    assert body["rating_perilaku_kerja"] == "DIATAS_EKSPEKTASI"
    assert body["predikat_kinerja"] == "BUTUH_PERBAIKAN"
    assert body["tanggal_penilaian"] == "2025-12-18"
    assert body["pejabat_penilai"] == {"nip": ASSESSOR_NIP}
    # Ahli Madya with BUTUH_PERBAIKAN: 37.5 x 75% x 6/12 = 14.0625 -> 14.06
    # (docs/domain.md, "Angka kredit").
    assert body["angka_kredit"] == 14.06
    assert body["catatan"] == (None if versi == 1 else "Tingkatkan refleksi.")
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize("predicate", list(Predicate))
@pytest.mark.parametrize("grade", list(Grade))
def test_penilaian_wire_enums_and_credit_points(grade: Grade, predicate: Predicate) -> None:
    record = make_record(grade=grade, ratings=RATINGS_FOR[predicate], predicate=predicate)
    body = v2025_1.assessment_payload(record)
    result, behaviour = RATINGS_FOR[predicate]
    assert body["rating_hasil_kerja"] == WIRE_RATING[result]
    assert body["rating_perilaku_kerja"] == WIRE_RATING[behaviour]
    assert body["predikat_kinerja"] == WIRE_PREDICATE[predicate]
    assert body["predikat_kinerja"].isupper()
    assert body["angka_kredit"] == semester_credit(grade, predicate)
    # At most 2 decimals on the wire.
    assert Decimal(json.dumps(body["angka_kredit"])).as_tuple().exponent >= -2


def test_angka_kredit_28_125_is_sent_as_28_13() -> None:
    record = make_record(
        grade=Grade.MIDDLE, ratings=RATINGS_FOR[Predicate.VERY_GOOD], predicate=Predicate.VERY_GOOD
    )
    assert json.dumps(v2025_1.assessment_payload(record)["angka_kredit"]) == "28.13"


def test_kepala_sekolah_angka_kredit_follows_the_own_grade() -> None:
    record = make_record(role=Role.PRINCIPAL, grade=Grade.JUNIOR)
    assert v2025_1.assessment_payload(record)["angka_kredit"] == 12.5


def test_no_angka_kredit_without_a_grade() -> None:
    body = v2025_1.assessment_payload(make_record(grade=None))
    assert "angka_kredit" not in body
    assert body["predikat_kinerja"] == "BAIK"


def test_tanggal_penilaian_is_the_date_pmm_gave() -> None:
    # PMM stamps WIB (+07:00): 23:30 on 30 June is 30 June for the penilai, not 1 July.
    late = dt.datetime(2025, 6, 30, 23, 30, tzinfo=WIB)
    body = v2025_1.assessment_payload(make_record(finalised_at=late))
    assert body["tanggal_penilaian"] == "2025-06-30"
    dt.date.fromisoformat(body["tanggal_penilaian"])


def test_catatan_is_carried_or_null() -> None:
    assert v2025_1.assessment_payload(make_record(note="Bagus."))["catatan"] == "Bagus."
    body = v2025_1.assessment_payload(make_record(note=None))
    assert "catatan" in body
    assert body["catatan"] is None


@pytest.mark.parametrize(
    "change",
    [
        {"status": AssessmentStatus.DRAFT, "finalised_at": None},
        {"status": AssessmentStatus.NOT_STARTED, "ratings": (None, None), "predicate": None},
        {"ratings": (None, Rating.MEETS)},
        {"ratings": (Rating.MEETS, None)},
        {"predicate": None},
        {"finalised_at": None},
    ],
)
def test_assessment_payload_of_an_unfinished_record_raises(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="src-1"):
        v2025_1.assessment_payload(make_record(**change))


@pytest.mark.parametrize("status", [AssessmentStatus.DRAFT, AssessmentStatus.NOT_STARTED])
def test_assessment_payload_of_a_complete_but_unfinal_record_raises(
    status: AssessmentStatus,
) -> None:
    # Draft data is never sent as a penilaian (docs/design.md, "When something is sent"),
    # even when every value is filled in.
    with pytest.raises(ValueError, match="src-1"):
        v2025_1.assessment_payload(make_record(status=status))


def test_payloads_do_not_depend_on_the_source_bookkeeping() -> None:
    record = make_record()
    later = dataclasses.replace(record, updated_at=dt.datetime(2025, 6, 29, tzinfo=WIB))
    assert v2025_1.skp_payload(later) == v2025_1.skp_payload(record)
    assert v2025_1.assessment_payload(later) == v2025_1.assessment_payload(record)
