"""Contract tests of the sandbox's annual cycle (issue #11 item 7), over loopback HTTP.

The source lists semesters and years with their deadlines and serves varied, valid records
(tmt_jabatan inside a year, a Kepala Dinas as penilai from 2026, PKBM/LKP schools, every
Indonesian offset); the target checks the new period rules, bulan_dinilai, the school listing
and SKPs made by hand.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.sandbox import Sandbox, SandboxWorld, TargetStore, generate_world, running_sandbox
from connectors.sandbox.target_store import SkpRefused
from tests.integration.test_sandbox import (
    V2,
    bearer,
    idem,
    penilaian_body,
    skp_body,
)

ANNUAL = ("2025", "2026")


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_world() -> SandboxWorld:
    """``generate_world()`` with every default: 10 schools of 21 people, four periods."""
    return generate_world()


@pytest.fixture(scope="module")
def default_source(default_world: SandboxWorld) -> Iterator[Sandbox]:
    with running_sandbox(default_world) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def pmm(default_source: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=default_source.pmm_url, timeout=5) as client:
        yield client


@pytest.fixture
def world() -> SandboxWorld:
    """A semester of 2025 and the year 2026, three schools."""
    return generate_world(schools=3, teachers_per_school=4, seed=5, periods=("2025-2", "2026"))


@pytest.fixture
def target(world: SandboxWorld) -> Iterator[Sandbox]:
    with running_sandbox(world) as sandbox:
        yield sandbox


@pytest.fixture
def ek(target: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.ekinerja_url, timeout=5) as client:
        yield client


@pytest.fixture
def wauth(ek: httpx.Client) -> dict[str, str]:
    return bearer(ek, scope="skp.write")


def pair(world: SandboxWorld, kode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A kepala sekolah's record of the period, and the record of one of its guru."""
    records = world.records(kode)
    head = next(r for r in records if r["pegawai"]["jenis_ptk"] == "kepala_sekolah")
    guru = next(
        r
        for r in records
        if r["pegawai"]["jenis_ptk"] == "guru" and r["penilai"]["nip"] == head["pegawai"]["nip"]
    )
    return head, guru


def annual_pair(world: SandboxWorld) -> tuple[dict[str, Any], dict[str, Any]]:
    """A kepala sekolah of 2026 and one of its guru."""
    return pair(world, "2026")


def record_of(world: SandboxWorld, kode: str, nip: str) -> dict[str, Any]:
    return next(r for r in world.records(kode) if r["pegawai"]["nip"] == nip)


def local_date(stamp: str) -> dt.date:
    return dt.datetime.fromisoformat(stamp).date()


def wib_date(stamp: str) -> dt.date:
    return dt.datetime.fromisoformat(stamp).astimezone(dt.timezone(dt.timedelta(hours=7))).date()


def post(ek: httpx.Client, auth: dict[str, str], key: str, body: dict[str, Any]) -> httpx.Response:
    return ek.post("/api/v1/skp", json=body, headers=idem(key, auth))


# -- source: periods ---------------------------------------------------------------------------


def test_periods_are_semesters_and_years_with_their_deadlines(
    pmm: httpx.Client, default_source: Sandbox
) -> None:
    auth = bearer(pmm)
    listed = pmm.get("/api/v1/periode", headers=auth).json()["data"]
    assert listed == [
        {
            "kode": "2024-1",
            "jenis": "semester",
            "tahun": 2024,
            "semester": 1,
            "tanggal_mulai": "2024-01-01",
            "tanggal_selesai": "2024-06-30",
            "batas_penilaian": "2024-06-30",
            "status": "ditutup",
        },
        {
            "kode": "2024-2",
            "jenis": "semester",
            "tahun": 2024,
            "semester": 2,
            "tanggal_mulai": "2024-07-01",
            "tanggal_selesai": "2024-12-31",
            "batas_penilaian": "2024-12-31",
            "status": "ditutup",
        },
        {
            "kode": "2025",
            "jenis": "tahunan",
            "tahun": 2025,
            "semester": None,
            "tanggal_mulai": "2025-01-01",
            "tanggal_selesai": "2025-12-31",
            "batas_penilaian": "2026-01-31",
            "status": "ditutup",
        },
        {
            "kode": "2026",
            "jenis": "tahunan",
            "tahun": 2026,
            "semester": None,
            "tanggal_mulai": "2026-01-01",
            "tanggal_selesai": "2026-12-31",
            "batas_penilaian": "2027-01-31",
            "status": "berjalan",
        },
    ]
    year = pmm.get("/api/v1/kinerja", params={"periode": "2026", "limit": 5}, headers=auth)
    assert year.status_code == 200
    assert {r["periode"] for r in year.json()["data"]} == {"2026"}
    for unlisted in ("2025-1", "2027", "2026-3"):
        answer = pmm.get("/api/v1/kinerja", params={"periode": unlisted}, headers=auth)
        assert answer.status_code == 400, unlisted
    # Years and semesters mix in any order; the newest is the running one.
    mixed = generate_world(schools=1, teachers_per_school=1, periods=("2026", "2024-2", "2025"))
    assert [p["kode"] for p in mixed.periods] == ["2024-2", "2025", "2026"]
    assert [p["status"] for p in mixed.periods] == ["ditutup", "ditutup", "berjalan"]
    for wrong in ("2025-3", "25", "2025-S1"):
        with pytest.raises(ValueError, match="period"):
            generate_world(schools=1, teachers_per_school=1, periods=(wrong,))


# -- source: annual records --------------------------------------------------------------------


def test_annual_records_live_inside_their_year(default_world: SandboxWorld) -> None:
    for kode in ANNUAL:
        tahun = int(kode)
        records = default_world.records(kode)
        assert len(records) >= 210
        for record in records:
            tmt = record["pegawai"].get("tmt_jabatan")
            approved = record["perencanaan"]["disetujui_pada"]
            if approved is not None and (tmt is None or tmt < f"{kode}-01-01"):
                assert local_date(approved).year == tahun
                assert local_date(approved).month in (1, 2), approved
            final = record["penilaian"]["difinalkan_pada"]
            if final is not None:
                assert local_date(final).year == tahun
                assert local_date(final).month in (11, 12), final
            for stage in record["pelaksanaan"]["observasi"]:
                if stage["selesai_pada"] is not None:
                    assert local_date(stage["selesai_pada"]).year == tahun
            assert dt.datetime.fromisoformat(record["diperbarui_pada"]).year == tahun


def test_some_jabatan_begin_inside_a_year(default_world: SandboxWorld, pmm: httpx.Client) -> None:
    for kode in ANNUAL:
        records = default_world.records(kode)
        people = {r["pegawai"]["nip"] for r in records}
        inside: dict[str, dt.date] = {}
        shown: Counter[str] = Counter()
        for record in records:
            pegawai = record["pegawai"]
            if "tmt_jabatan" not in pegawai:
                shown["absent"] += 1
            elif pegawai["tmt_jabatan"] is None:
                shown["null"] += 1
            else:
                tmt = dt.date.fromisoformat(pegawai["tmt_jabatan"])
                if tmt.year == int(kode):
                    inside[pegawai["nip"]] = tmt
                    approved = record["perencanaan"]["disetujui_pada"]
                    assert approved is None or local_date(approved) > tmt
                else:
                    assert tmt.year < int(kode)
                    shown["before"] += 1
        assert 0.05 <= len(inside) / len(people) <= 0.10, (kode, len(inside), len(people))
        days = {tmt.day for tmt in inside.values()}
        assert 1 in days
        assert days - {1}  # mid-month starts too
        assert shown["absent"]
        assert shown["null"]
        assert shown["before"]
    # Semesters carry it too, mostly absent, null or before.
    semester = default_world.records("2024-2")
    assert any("tmt_jabatan" in r["pegawai"] for r in semester)
    inside_semester = [
        r for r in semester if (r["pegawai"].get("tmt_jabatan") or "") >= "2024-07-01"
    ]
    assert len(inside_semester) <= 0.05 * len(semester)
    # Both schema versions carry it as it is (absent stays absent).
    auth = bearer(pmm)
    params = {"periode": "2026", "limit": 1000}
    v1 = pmm.get("/api/v1/kinerja", params=params, headers=auth).json()["data"]
    v2 = pmm.get("/api/v1/kinerja", params=params, headers={**auth, **V2}).json()["data"]
    for one, two in zip(v1, v2, strict=True):
        assert ("tmt_jabatan" in one["pegawai"]) == ("tmt_jabatan" in two["pegawai"])
        assert one["pegawai"].get("tmt_jabatan") == two["pegawai"].get("tmt_jabatan")
    assert any((r["pegawai"].get("tmt_jabatan") or "") >= "2026-01-01" for r in v1)


def _valid_pns_nip(nip: str) -> bool:
    try:
        dt.date(int(nip[:4]), int(nip[4:6]), int(nip[6:8]))
    except ValueError:
        return False
    return bool(re.fullmatch(r"[0-9]{18}", nip)) and 1 <= int(nip[12:14]) <= 12


def test_from_2026_a_kepala_sekolah_is_assessed_by_the_kepala_dinas(
    default_world: SandboxWorld,
) -> None:
    by_period: dict[str, set[tuple[str, str]]] = {}
    for record in default_world.records():
        if record["pegawai"]["jenis_ptk"] == "kepala_sekolah":
            penilai = record["penilai"]
            by_period.setdefault(record["periode"], set()).add((penilai["peran"], penilai["nip"]))
    [(peran, nip)] = by_period["2026"]
    assert peran == "kepala_dinas"
    assert _valid_pns_nip(nip)
    assert nip in default_world.assessor_nips_outside_sync
    for kode in ("2024-1", "2024-2", "2025"):
        assert {p for p, _ in by_period[kode]} == {"pengawas_sekolah"}
        assert {n for _, n in by_period[kode]} <= default_world.assessor_nips_outside_sync
        assert nip not in {n for _, n in by_period[kode]}
    guru_penilai = {
        r["penilai"]["peran"]
        for r in default_world.records("2026")
        if r["pegawai"]["jenis_ptk"] == "guru"
    }
    assert guru_penilai == {"kepala_sekolah"}


def test_schools_have_real_npsn_shapes_and_none_is_a_defect(
    default_world: SandboxWorld, pmm: httpx.Client
) -> None:
    schools = default_world.schools
    npsns = [s["npsn"] for s in schools]
    assert all(re.fullmatch(r"[0-9]{8}|[PK][0-9]{7}", n) for n in npsns)
    assert len(set(npsns)) == len(npsns) == 10
    pkbm = [s for s in schools if s["npsn"].startswith("P")]
    lkp = [s for s in schools if s["npsn"].startswith("K")]
    assert pkbm
    assert lkp
    assert all(re.match(r"(PKBM|SKB) ", s["nama"]) for s in pkbm)
    assert all(s["nama"].startswith("LKP ") for s in lkp)
    first_digits = {n[0] for n in npsns if n[0].isdigit()}
    assert {"0", "6", "7", "8"} <= first_digits
    assert first_digits & set("123459")
    # Their records are served like any other.
    auth = bearer(pmm)
    for school in (pkbm[0], lkp[0]):
        page = pmm.get(
            "/api/v1/kinerja", params={"periode": "2026", "npsn": school["npsn"]}, headers=auth
        ).json()
        assert page["data"]
        assert {r["sekolah"]["npsn"] for r in page["data"]} == {school["npsn"]}
    # Only the provably wrong is a defect.
    kinds = Counter(d.kind for d in default_world.defects)
    assert set(kinds) == {"bad_nip", "wrong_indicator_family", "predicate_mismatch"}
    for defect in default_world.defects:
        if defect.kind == "bad_nip":
            assert len(defect.nip) == 17 or int(defect.nip[12:14]) == 13


def test_valid_data_is_as_varied_as_the_real_one(default_world: SandboxWorld) -> None:
    records = default_world.records()
    defects = {d.source_id for d in default_world.defects}
    names = {r["pegawai"]["nama"] for r in records}
    assert {"Ma'ruf Amin, S.Pd.", "Ni Luh Putu Ayu Wulandari, S.Pd.", "Siti Nur'aini"} <= names
    assert "Ṣāliḥ" in names
    pppk = [
        r["pegawai"]["nip"]
        for r in records
        if r["pegawai"]["status_kepegawaian"] == "PPPK" and r["id"] not in defects
    ]
    assert pppk
    assert all(re.fullmatch(r"[0-9]{18}", nip) and int(nip[12:14]) > 12 for nip in pppk)
    assert "21" in {nip[12:14] for nip in pppk}
    notes = [r["penilaian"]["catatan"] for r in records if r["penilaian"].get("catatan")]
    assert max(len(n) for n in notes) == 2000
    assert all(len(n) <= 2000 for n in notes)
    finals = [
        r["penilaian"]["difinalkan_pada"] for r in records if r["penilaian"]["difinalkan_pada"]
    ]
    approvals = [
        r["perencanaan"]["disetujui_pada"] for r in records if r["perencanaan"]["disetujui_pada"]
    ]
    for stamps in (finals, approvals):
        assert {s[-6:] for s in stamps} == {"+07:00", "+08:00", "+09:00"}
    after_midnight = [s for s in finals if s[-6:] in ("+08:00", "+09:00") and s[11:13] == "00"]
    assert after_midnight
    assert all(local_date(s) != wib_date(s) for s in after_midnight)
    assert all(r["diperbarui_pada"].endswith("+07:00") for r in records)


# -- target: annual SKPs -----------------------------------------------------------------------


def test_target_takes_an_annual_skp_and_its_penilaian(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, world: SandboxWorld
) -> None:
    head, guru = annual_pair(world)
    head_body, guru_body = skp_body(world, head), skp_body(world, guru)
    assert head_body["periode"] == {
        "tahun": 2026,
        "jenis": "tahunan",
        "semester": None,
        "tanggal_mulai": "2026-01-01",
        "tanggal_selesai": "2026-12-31",
    }
    # The guru's penilai has a semester SKP only: that is not the year's.
    old_head = record_of(world, "2025-2", head["pegawai"]["nip"])
    semester = post(ek, wauth, "s", skp_body(world, old_head))
    assert semester.json()["id_skp"] == f"SKP-2025-2-{head['pegawai']['nip']}"
    early = post(ek, wauth, "g", guru_body)
    assert early.status_code == 409
    assert early.json()["kode"] == "PENILAI_BELUM_ADA_SKP"
    # The Kepala Dinas is outside the sync: the kepala sekolah's SKP goes straight in.
    assert head["penilai"]["peran"] == "kepala_dinas"
    created = post(ek, wauth, "h", head_body)
    assert created.status_code == 201
    assert created.json() == {
        "id_skp": f"SKP-2026-{head['pegawai']['nip']}",
        "status": "diterima",
        "versi": 1,
    }
    later = post(ek, wauth, "g", guru_body)
    assert later.status_code == 201
    assert later.json()["id_skp"] == f"SKP-2026-{guru['pegawai']['nip']}"
    twice = post(ek, wauth, "h2", head_body)
    assert twice.status_code == 409
    assert twice.json()["kode"] == "SKP_SUDAH_ADA"
    assert twice.json()["id_skp"] == created.json()["id_skp"]
    store = target.target
    nip = head["pegawai"]["nip"]
    assert store.has_skp(nip, 2026, jenis="tahunan")
    assert store.has_skp(nip, 2026)  # no semester: the year
    assert store.has_skp(nip, 2025, 2)
    assert not store.has_skp(nip, 2026, 1)
    annual = next(s for s in store.skps() if s["id_skp"] == created.json()["id_skp"])
    assert (annual["jenis"], annual["semester"], annual["tahun"]) == ("tahunan", None, 2026)
    url = f"/api/v1/skp/{created.json()['id_skp']}/penilaian"
    body = penilaian_body(head, angka_kredit=3.125, bulan_dinilai=3)
    assessed = ek.post(url, json=body, headers=idem("p", wauth))
    assert assessed.status_code == 201, assessed.text
    assert assessed.json()["id_penilaian"] == f"PNL-2026-{nip}"
    stats = store.stats()
    assert stats["creates"]["skp"] == {
        f"{nip}/2025-2": 1,
        f"{nip}/2026": 1,
        f"{guru['pegawai']['nip']}/2026": 1,
    }
    assert stats["creates"]["penilaian"] == {f"{nip}/2026": 1}
    [stored] = store.penilaian()
    assert stored["body"]["bulan_dinilai"] == 3
    assert stored["body"]["angka_kredit"] == 3.125


def test_a_semester_body_without_jenis_is_a_semester(
    ek: httpx.Client, wauth: dict[str, str], world: SandboxWorld
) -> None:
    head, _ = pair(world, "2025-2")
    body = skp_body(world, head)
    del body["periode"]["jenis"]
    answer = post(ek, wauth, "old", body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["id_skp"] == f"SKP-2025-2-{head['pegawai']['nip']}"


def _set(path: str, value: Any) -> Any:
    def change(body: dict[str, Any]) -> None:
        node = body
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Any:
    def change(body: dict[str, Any]) -> None:
        parent, _, last = path.rpartition(".")
        del body[parent][last]

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_drop("periode.jenis"), "periode.semester"),  # no jenis: a semester, which needs one
        (_set("periode.semester", 1), "periode.semester"),
        (_set("periode.jenis", "bulanan"), "periode.jenis"),
        (_set("periode.tanggal_selesai", "2026-06-30"), "periode.tanggal_selesai"),
        (_set("periode.tanggal_mulai", "2026-01-02"), "periode.tanggal_mulai"),
        (_set("periode.tanggal_mulai", "2026-07-01"), "periode.tanggal_mulai"),
        (_drop("periode.semester"), "periode.semester"),
    ],
)
def test_annual_skp_period_rules(
    ek: httpx.Client, wauth: dict[str, str], world: SandboxWorld, change: Any, field: str
) -> None:
    head, _ = annual_pair(world)
    body = skp_body(world, head)
    change(body)
    answer = post(ek, wauth, "v", body)
    assert answer.status_code == 422
    assert answer.json()["kode"] == "VALIDASI"
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_semester_dates_must_be_the_semesters(
    ek: httpx.Client, wauth: dict[str, str], world: SandboxWorld
) -> None:
    head, _ = pair(world, "2025-2")
    body = skp_body(world, head)
    body["periode"]["tanggal_mulai"] = "2025-01-01"
    answer = post(ek, wauth, "v", body)
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"periode.tanggal_mulai"}


def test_a_put_cannot_turn_a_year_into_a_semester(
    ek: httpx.Client, wauth: dict[str, str], world: SandboxWorld
) -> None:
    head, _ = annual_pair(world)
    body = skp_body(world, head)
    id_skp = post(ek, wauth, "c", body).json()["id_skp"]
    as_semester = {
        **body,
        "periode": {
            "tahun": 2026,
            "jenis": "semester",
            "semester": 1,
            "tanggal_mulai": "2026-01-01",
            "tanggal_selesai": "2026-06-30",
        },
    }
    moved = ek.put(
        f"/api/v1/skp/{id_skp}", json=as_semester, headers={**idem("u", wauth), "If-Match": "1"}
    )
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "periode"
    same = ek.put(
        f"/api/v1/skp/{id_skp}",
        json={**body, "jabatan": "Guru (diubah)"},
        headers={**idem("u2", wauth), "If-Match": "1"},
    )
    assert same.status_code == 200
    assert same.json()["versi"] == 2


@pytest.mark.parametrize(
    ("kode", "changes", "field"),
    [
        ("2026", {"angka_kredit": 3.1255, "bulan_dinilai": 3}, "angka_kredit"),
        ("2026", {"angka_kredit": 12.5}, "bulan_dinilai"),  # required with it on a year
        ("2026", {"angka_kredit": 12.5, "bulan_dinilai": None}, "bulan_dinilai"),
        ("2026", {"angka_kredit": 12.5, "bulan_dinilai": 13}, "bulan_dinilai"),
        ("2026", {"angka_kredit": 12.5, "bulan_dinilai": 0}, "bulan_dinilai"),
        ("2026", {"angka_kredit": 12.5, "bulan_dinilai": "12"}, "bulan_dinilai"),
        ("2026", {"angka_kredit": 12.5, "bulan_dinilai": 6.0}, "bulan_dinilai"),
        ("2025-2", {"angka_kredit": 12.5, "bulan_dinilai": 7}, "bulan_dinilai"),
        ("2025-2", {"angka_kredit": 12.5, "bulan_dinilai": 13}, "bulan_dinilai"),
        ("2025-2", {"angka_kredit": 1.0625}, "angka_kredit"),
    ],
)
def test_penilaian_angka_kredit_and_bulan_dinilai_rules(
    ek: httpx.Client,
    wauth: dict[str, str],
    target: Sandbox,
    world: SandboxWorld,
    kode: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    head, _ = pair(world, kode)
    id_skp = post(ek, wauth, "c", skp_body(world, head)).json()["id_skp"]
    body = penilaian_body(head, tanggal_penilaian=f"{kode[:4]}-12-20", **changes)
    answer = ek.post(f"/api/v1/skp/{id_skp}/penilaian", json=body, headers=idem("p", wauth))
    assert answer.status_code == 422, answer.text
    assert answer.json()["kode"] == "VALIDASI"
    assert [e["field"] for e in answer.json()["errors"]] == [field]
    assert target.target.penilaian() == []


@pytest.mark.parametrize(
    ("kode", "changes"),
    [
        ("2026", {"angka_kredit": 18.75, "bulan_dinilai": 12}),
        ("2026", {"angka_kredit": 3.125, "bulan_dinilai": 3}),
        ("2026", {"angka_kredit": None}),  # no angka kredit: no months needed
        ("2025-2", {}),  # a semester without bulan_dinilai counts 6 (older mappings)
        ("2025-2", {"angka_kredit": 8.333, "bulan_dinilai": 4}),
        ("2025-2", {"angka_kredit": 12.5, "bulan_dinilai": 6}),
    ],
)
def test_penilaian_with_months_accepted(
    ek: httpx.Client,
    wauth: dict[str, str],
    world: SandboxWorld,
    kode: str,
    changes: dict[str, Any],
) -> None:
    head, _ = pair(world, kode)
    id_skp = post(ek, wauth, "c", skp_body(world, head)).json()["id_skp"]
    body = penilaian_body(head, tanggal_penilaian=f"{kode[:4]}-12-20", **changes)
    answer = ek.post(f"/api/v1/skp/{id_skp}/penilaian", json=body, headers=idem("p", wauth))
    assert answer.status_code == 201, answer.text


def test_skp_query_by_jenis(ek: httpx.Client, wauth: dict[str, str], world: SandboxWorld) -> None:
    head, _ = annual_pair(world)
    nip = head["pegawai"]["nip"]
    annual_id = post(ek, wauth, "a", skp_body(world, head)).json()["id_skp"]
    old_head = record_of(world, "2025-2", nip)
    semester_id = post(ek, wauth, "s", skp_body(world, old_head)).json()["id_skp"]

    def ids(**params: Any) -> list[str]:
        answer = ek.get("/api/v1/skp", params={"nip": nip, **params}, headers=wauth)
        assert answer.status_code == 200, answer.text
        return [s["id_skp"] for s in answer.json()["data"]]

    assert ids(tahun=2026, jenis="tahunan") == [annual_id]
    assert ids(tahun=2026) == []  # no jenis: a semester
    assert ids(tahun=2025, semester=2) == [semester_id]
    assert ids(tahun=2025, jenis="semester", semester=2) == [semester_id]
    assert sorted(ids()) == sorted([annual_id, semester_id])
    for bad in (
        {"tahun": 2026, "jenis": "tahunan", "semester": 1},
        {"tahun": 2026, "jenis": "bulanan"},
        {"tahun": 2025, "semester": 3},
        {"tahun": "dua"},
    ):
        assert ek.get("/api/v1/skp", params=bad, headers=wauth).status_code == 400, bad


# -- target: a school's SKPs, and SKPs made by hand --------------------------------------------


def _a_new_nip(world: SandboxWorld) -> str:
    known = {r["pegawai"]["nip"] for r in world.records()}
    nip = "198001012005011001"
    assert nip not in known
    return nip


def test_school_listing_pages_through_every_skp_of_the_period(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, world: SandboxWorld
) -> None:
    records = world.records("2026")
    head, _ = annual_pair(world)
    npsn = head["sekolah"]["npsn"]
    broken = {d.source_id for d in world.defects}
    per_nip = Counter(r["pegawai"]["nip"] for r in records)
    synced = [head] + [
        r
        for r in records
        if r["sekolah"]["npsn"] == npsn
        and r["penilai"]["nip"] == head["pegawai"]["nip"]
        and per_nip[r["pegawai"]["nip"]] == 1
        and r["id"] not in broken
    ]
    assert len(synced) >= 4
    for n, record in enumerate(synced):
        assert post(ek, wauth, f"k{n}", skp_body(world, record)).status_code == 201
    # Elsewhere or in another period: not listed.
    other_head = next(
        r
        for r in records
        if r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
        and r["pegawai"]["nip"] != head["pegawai"]["nip"]
    )
    assert other_head["sekolah"]["npsn"] != npsn
    assert post(ek, wauth, "other", skp_body(world, other_head)).status_code == 201
    old_head = record_of(world, "2025-2", head["pegawai"]["nip"])
    assert old_head["sekolah"]["npsn"] == npsn
    assert post(ek, wauth, "old", skp_body(world, old_head)).status_code == 201
    # A person makes one by hand in e-Kinerja's own pages (no sumber, no idempotency key).
    by_hand = skp_body(world, head)
    by_hand["nip"] = _a_new_nip(world)
    del by_hand["sumber"]
    made = ek.post("/_sandbox/skp", json=by_hand)
    assert made.status_code == 201, made.text
    assert made.json() == {"id_skp": f"SKP-2026-{by_hand['nip']}", "status": "diterima", "versi": 1}

    params = {"npsn": npsn, "tahun": 2026, "jenis": "tahunan", "limit": 2}
    answer = ek.get("/api/v1/skp", params=params, headers=wauth)
    pages = []
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["data"]) <= 2
        pages.append(page)
        if page["next_cursor"] is None:
            break
        answer = ek.get(
            "/api/v1/skp", params={"cursor": page["next_cursor"], "limit": 2}, headers=wauth
        )
    listed = [s for page in pages for s in page["data"]]
    expected = sorted([f"SKP-2026-{r['pegawai']['nip']}" for r in synced] + [made.json()["id_skp"]])
    assert [s["id_skp"] for s in listed] == expected
    assert len(pages) == (len(expected) + 1) // 2
    assert all(s["unit_kerja"]["npsn"] == npsn and s["versi"] == 1 for s in listed)
    assert {s["nip"] for s in listed} == {r["pegawai"]["nip"] for r in synced} | {by_hand["nip"]}
    hand = next(s for s in listed if s["nip"] == by_hand["nip"])
    assert "sumber" not in hand
    # The same filters with the cursor are fine; others are not.
    cursor = pages[0]["next_cursor"]
    same = ek.get("/api/v1/skp", params={**params, "cursor": cursor}, headers=wauth)
    assert same.json()["data"] == pages[1]["data"]
    for other in ({"npsn": other_head["sekolah"]["npsn"]}, {"tahun": 2025}, {"nip": "1" * 18}):
        answer = ek.get("/api/v1/skp", params={"cursor": cursor, **other}, headers=wauth)
        assert answer.status_code == 400, other
    semester_page = ek.get(
        "/api/v1/skp", params={"npsn": npsn, "tahun": 2025, "semester": 2}, headers=wauth
    ).json()
    assert [s["id_skp"] for s in semester_page["data"]] == [f"SKP-2025-2-{head['pegawai']['nip']}"]
    assert semester_page["next_cursor"] is None
    empty = ek.get(
        "/api/v1/skp", params={"npsn": "P0000000", "tahun": 2026, "jenis": "tahunan"}, headers=wauth
    )
    assert empty.json() == {"data": [], "next_cursor": None}
    # Made by hand is not a create of the API.
    stats = target.target.stats()
    assert stats["skp_by_hand"] == 1
    assert stats["skp_created"] == len(synced) + 2
    assert by_hand["nip"] not in {k.split("/")[0] for k in stats["creates"]["skp"]}
    assert [s["by_hand"] for s in target.target.skps() if s["nip"] == by_hand["nip"]] == [True]


@pytest.mark.parametrize(
    "params",
    [
        {"npsn": "20212345"},  # no tahun
        {"npsn": "20212345", "tahun": 2026},  # a semester needs its semester
        {"npsn": "20212345", "tahun": 2026, "jenis": "tahunan", "semester": 1},
        {"npsn": "20212345", "tahun": 2026, "jenis": "tahunan", "limit": 0},
        {"npsn": "20212345", "tahun": 2026, "jenis": "tahunan", "limit": 1001},
        {"npsn": "20212345", "tahun": 2026, "jenis": "tahunan", "limit": "ten"},
        {"npsn": "", "tahun": 2026, "jenis": "tahunan"},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJhIjoxfQ"},  # readable, but not one of ours
    ],
)
def test_school_listing_bad_parameters_are_400(
    ek: httpx.Client, wauth: dict[str, str], params: dict[str, Any]
) -> None:
    answer = ek.get("/api/v1/skp", params=params, headers=wauth)
    assert answer.status_code == 400
    assert answer.json()["kode"] == "PARAMETER_TIDAK_VALID"


def test_skp_made_by_hand_is_checked_and_never_faulted(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, world: SandboxWorld
) -> None:
    head, guru = annual_pair(world)
    # Faults apply to the API only: the admin route still answers.
    target.faults.update({"error_share": 1.0})
    body = skp_body(world, guru)  # its penilai has no SKP yet: a person may do that
    made = ek.post("/_sandbox/skp", json=body)
    assert made.status_code == 201
    assert ek.post("/_sandbox/skp", json=body).json()["kode"] == "SKP_SUDAH_ADA"
    wrong = {**skp_body(world, head), "periode": {**body["periode"], "semester": 1}}
    refused = ek.post("/_sandbox/skp", json=wrong)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "periode.semester"
    assert ek.post("/_sandbox/skp", content=b"{").status_code == 400
    target.faults.update({"error_share": 0.0})
    # The sync's own create then meets the SKP made by hand.
    clash = post(ek, wauth, "g", body)
    assert clash.status_code == 409
    assert clash.json()["kode"] == "SKP_SUDAH_ADA"
    assert clash.json()["id_skp"] == made.json()["id_skp"]
    assert target.target.stats()["skp_created"] == 0


def test_store_makes_an_skp_by_hand_in_process(world: SandboxWorld) -> None:
    store = TargetStore()
    head, _ = annual_pair(world)
    body = skp_body(world, head)
    made = store.create_skp_by_hand(body)
    assert made == {
        "id_skp": f"SKP-2026-{head['pegawai']['nip']}",
        "status": "diterima",
        "versi": 1,
    }
    assert store.has_skp(head["pegawai"]["nip"], 2026, jenis="tahunan")
    with pytest.raises(SkpRefused) as again:
        store.create_skp_by_hand(body)
    assert again.value.status == 409
    with pytest.raises(SkpRefused) as wrong:
        store.create_skp_by_hand({**body, "nip": "123"})
    assert wrong.value.status == 422
    assert wrong.value.body["errors"][0]["field"] == "nip"
    assert store.stats()["skp_by_hand"] == 1
    assert store.stats()["skp_created"] == 0
