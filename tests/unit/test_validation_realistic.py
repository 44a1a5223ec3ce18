"""Validation quarantines only what is provably wrong (docs/domain.md, "Validation in general").

A property test over realistic valid records (NPSNs of every real form, PPPK numbers, names
with apostrophes and non-ASCII letters, long notes, every Indonesian offset, tmt_jabatan in
and before the period, Kepala Dinas penilai): none is ever quarantined, and each goes out
through the mapping version of its period's kind. Labelled bad ones always are.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.model import PerformanceRecord, Role
from mappings.source import Rejection, read_record
from mappings.versions import get_mapping
from sync.pipeline.plan import plan_record
from tests.unit.test_source import MATRIX  # docs/domain.md, "Predikat matrix", in wire values

OFFSETS = [dt.timezone(dt.timedelta(hours=h)) for h in (7, 8, 9)]  # WIB, WITA, WIT
NAMES = [
    "Ma'ruf Amin, S.Pd.",
    "Siti Nur'aini",
    "Ni Luh Putu Ayu Wulandari, S.Pd.",
    "I Gusti Ngurah Rai",
    "Dra. Hj. Ṣāliḥah, M.Pd.",
    "O'Neil Sembiring",
    "Yohanes Ndruru",
]
digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@st.composite
def npsns(draw: st.DrawFn) -> str:
    form = draw(st.sampled_from(["digits", "P", "K"]))
    seven = draw(st.text(alphabet="0123456789", min_size=7, max_size=7))
    return (draw(digits) if form == "digits" else form) + seven


@st.composite
def nips(draw: st.DrawFn, status: str, until: dt.date) -> str:
    """A NIP as BKN issues them: a PNS appointed (TMT CPNS) from the month of the 18th
    birthday on, up to the period's last month; a PPPK from 2019 (the first intake)."""
    birth = draw(st.dates(dt.date(1960, 1, 1), dt.date(2002, 12, 31)))
    if status == "PNS":
        earliest = max(birth.year * 12 + birth.month - 1 + 18 * 12, 1985 * 12)
        month = draw(st.integers(earliest, until.year * 12 + until.month - 1))
        middle = f"{month // 12}{month % 12 + 1:02d}"
    else:  # NI PPPK: appointment year + a 2-digit code that is not a month
        middle = f"{draw(st.integers(2019, until.year))}{draw(st.integers(0, 99)):02d}"
    sex = draw(st.sampled_from("12"))
    sequence = draw(st.integers(1, 999))
    return f"{birth:%Y%m%d}{middle}{sex}{sequence:03d}"


def _stamp(draw: st.DrawFn, day: dt.date) -> str:
    offset = draw(st.sampled_from(OFFSETS))
    moment = dt.datetime.combine(day, dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 59))))
    return moment.replace(tzinfo=offset).isoformat()


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    periode = draw(st.sampled_from(["2024-1", "2024-2", "2025", "2026"]))
    year = int(periode[:4])
    first, last = (
        (dt.date(year, 1, 1), dt.date(year, 12, 31))
        if "-" not in periode
        else (
            (dt.date(year, 1, 1), dt.date(year, 6, 30))
            if periode.endswith("1")
            else (dt.date(year, 7, 1), dt.date(year, 12, 31))
        )
    )
    role = draw(st.sampled_from(["guru", "kepala_sekolah"]))
    status = draw(st.sampled_from(["PNS", "PPPK"]))
    nip = draw(nips(status, last))
    assessor = draw(nips("PNS", last).filter(lambda n: n != nip))
    if role == "guru":
        assessor_role = "kepala_sekolah"
        codes = [f"G-0{draw(st.integers(1, 8))}"]
    else:
        assessor_role = "kepala_dinas" if year >= 2026 else "pengawas_sekolah"
        count = draw(st.integers(1, 2)) if year >= 2026 else 1
        codes = draw(
            st.lists(
                st.sampled_from([f"K-0{n}" for n in range(1, 9)]),
                min_size=count,
                max_size=count,
                unique=True,
            )
        )
    cell = draw(st.sampled_from(sorted(MATRIX)))
    final = draw(st.booleans())
    tmt = draw(
        st.one_of(
            st.none(),
            st.dates(dt.date(2000, 1, 1), first),
            st.dates(first, last),
        )
    )
    pegawai: dict[str, Any] = {
        "nip": nip,
        "nuptk": draw(  # empty in many Dapodik exports
            st.one_of(
                st.none(), st.just(""), st.text(alphabet="0123456789", min_size=16, max_size=16)
            )
        ),
        "nama": draw(st.sampled_from(NAMES)),
        "jenis_ptk": role,
        "status_kepegawaian": status,
        "jabatan": "Guru Ahli Muda",
        "jenjang_jabatan": draw(
            st.sampled_from([None, "ahli_pertama", "ahli_muda", "ahli_madya", "ahli_utama"])
        ),
    }
    if draw(st.booleans()):  # absent and null mean the same
        pegawai["tmt_jabatan"] = tmt.isoformat() if tmt else None
    finalised = _stamp(draw, draw(st.dates(first, last))) if final else None
    return {
        "id": f"rec-{draw(st.uuids())}",
        "versi_skema": 2,
        "periode": periode,
        "pegawai": pegawai,
        "sekolah": {"npsn": draw(npsns()), "nama": draw(st.sampled_from(NAMES))},
        "penilai": {"nip": assessor, "nama": draw(st.sampled_from(NAMES)), "peran": assessor_role},
        "perencanaan": {
            "indikator": [{"kode": c, "nama": "Indikator"} for c in codes],
            "disetujui_pada": _stamp(draw, first),
        },
        "pelaksanaan": {"observasi": [], "pengembangan_kompetensi_jp": draw(st.integers(0, 200))},
        "penilaian": {
            "status": "final" if final else draw(st.sampled_from(["belum", "draf"])),
            "hasil": {
                "rating_hasil_kerja": cell[0] if final else None,
                "rating_perilaku": cell[1] if final else None,
                "predikat": MATRIX[cell] if final else None,
            },
            "difinalkan_pada": finalised,
            "catatan": draw(st.one_of(st.none(), st.text(min_size=0, max_size=2000))),
        },
        "dibatalkan": False,
        "diperbarui_pada": _stamp(draw, last),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records())
def test_realistic_valid_records_are_never_quarantined_and_go_out(raw: dict[str, Any]) -> None:
    record = read_record(raw)
    assert isinstance(record, PerformanceRecord), record
    assert record.school.npsn == raw["sekolah"]["npsn"]
    mapping = get_mapping("2026.2" if record.period.kind.value == "tahunan" else "2025.1")
    skp, assessment = plan_record(record, None, None, mapping)
    assert skp.send is not None
    assert json.loads(skp.send.body_json)["unit_kerja"]["npsn"] == raw["sekolah"]["npsn"]
    if record.assessment_final:
        assert assessment.send is not None
        body = json.loads(assessment.send.body_json)
        if mapping.name == "2026.2":
            stamp = dt.datetime.fromisoformat(raw["penilaian"]["difinalkan_pada"])
            assert body["tanggal_penilaian"] == stamp.date().isoformat()
            if "angka_kredit" in body:
                assert 1 <= body["bulan_dinilai"] <= 12
                assert round(body["angka_kredit"], 3) == body["angka_kredit"]
    if raw["penilai"]["peran"] == "kepala_dinas":
        assert record.assessor.role is Role.HEAD_OF_OFFICE


BAD = [
    (("pegawai", "nip"), "19850315201001200", "invalid_nip"),  # 17 digits
    (("pegawai", "nip"), "198503152010132003", "invalid_nip"),  # PNS with TMT month 13
    (("pegawai", "nip"), "198502302010012003", "invalid_nip"),  # 30 February
    (("sekolah", "npsn"), "2021234", "invalid_npsn"),  # 7 characters
    (("sekolah", "npsn"), "p1234567", "invalid_npsn"),  # lower case
    (("penilaian", "hasil", "predikat"), "sangat_baik", "predicate_mismatch"),
    (("perencanaan", "indikator"), [{"kode": "K-01", "nama": "x"}], "indicator_role_mismatch"),
    (("penilai",), None, "no_assessor"),
    # Cross-field checks (issue 23): born 15 May 1990 and a CPNS at 16; a CPNS from 2030;
    # born in 2031; one indicator twice; finalised in the December before every period.
    (("pegawai", "nip"), "199005152007032001", "tmt_cpns_under_age"),
    (("pegawai", "nip"), "199005152030012001", "tmt_cpns_after_period"),
    (("pegawai", "nip"), "203102042050012001", "birth_date_in_future"),
    (("perencanaan", "indikator"), [{"kode": "G-04", "nama": "x"}] * 2, "duplicate_indicator"),
    (("penilaian", "difinalkan_pada"), "2023-12-20T10:00:00+07:00", "finalised_before_period"),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records(), st.sampled_from(BAD))
def test_labelled_bad_records_are_always_quarantined(
    raw: dict[str, Any], bad: tuple[tuple[str, ...], object, str]
) -> None:
    path, value, code = bad
    raw["pegawai"]["status_kepegawaian"] = "PNS"
    raw["pegawai"]["nip"] = "198503152010012003"  # a valid PNS NIP: one fault at a time
    raw["penilai"]["nip"] = "197002101995031001"
    raw["pegawai"]["jenis_ptk"] = "guru"
    raw["penilai"]["peran"] = "kepala_sekolah"
    raw["perencanaan"]["indikator"] = [{"kode": "G-01", "nama": "x"}]
    raw["penilaian"]["status"] = "final"
    raw["penilaian"]["difinalkan_pada"] = raw["diperbarui_pada"]
    raw["penilaian"]["hasil"] = {
        "rating_hasil_kerja": "dibawah_ekspektasi",
        "rating_perilaku": "dibawah_ekspektasi",
        "predikat": "sangat_kurang",
    }
    node: Any = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    outcome = read_record(raw)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == code, outcome.reason


def test_a_record_without_penilai_names_the_dinas_as_the_one_who_acts() -> None:
    raw = {
        "id": "no-penilai",
        "versi_skema": 2,
        "periode": "2026",
        "pegawai": {"nip": "198503152010012003", "jenis_ptk": "guru"},
        "sekolah": {"npsn": "P1234567", "nama": "PKBM Harapan"},
        "penilai": {"nip": None, "nama": None, "peran": "kepala_sekolah"},
    }
    outcome = read_record(raw)
    assert isinstance(outcome, Rejection)
    assert outcome.code == "no_assessor"
    assert "dinas" in outcome.reason
    assert "Plt kepala sekolah" in outcome.reason
    assert "P1234567" in outcome.reason
