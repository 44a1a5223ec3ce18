"""Contract tests of the sandbox servers, over real loopback HTTP with a plain httpx.Client.

They pin the sandbox to docs/apis.md (the source's and the target's sections), so the
project's end-to-end tests can trust it to prove exactly-once delivery.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from connectors.sandbox import (
    Faults,
    Sandbox,
    SandboxWorld,
    generate_world,
    running_sandbox,
)
from connectors.sandbox import pmm_app as pmm_module
from connectors.sandbox.catalogue import PREDICATE_MATRIX

V2 = {"Accept": "application/json; versi=2"}
FORM = {
    "grant_type": "client_credentials",
    "client_id": "sandbox",
    "client_secret": "sandbox-secret",
}


# -- helpers -----------------------------------------------------------------------------------


def bearer(client: httpx.Client, scope: str | None = None) -> dict[str, str]:
    form = dict(FORM)
    if scope is not None:
        form["scope"] = scope
    answer = client.post("/oauth/token", data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def walk(
    client: httpx.Client, params: dict[str, Any], headers: dict[str, str]
) -> list[dict[str, Any]]:
    """Every page of /api/v1/kinerja, following next_cursor."""
    out: list[dict[str, Any]] = []
    answer = client.get("/api/v1/kinerja", params=params, headers=headers)
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        out.extend(page["data"])
        if page["next_cursor"] is None:
            return out
        answer = client.get(
            "/api/v1/kinerja", params={"cursor": page["next_cursor"]}, headers=headers
        )


def key(record: dict[str, Any]) -> tuple[str, str]:
    return dt.datetime.fromisoformat(record["diperbarui_pada"]).isoformat(), record["id"]


def period_of(world: SandboxWorld, kode: str) -> dict[str, Any]:
    return next(p for p in world.periods if p["kode"] == kode)


def skp_body(world: SandboxWorld, record: dict[str, Any]) -> dict[str, Any]:
    """A valid SKP for a v2 source record."""
    period = period_of(world, record["periode"])
    return {
        "nip": record["pegawai"]["nip"],
        "periode": {
            k: period[k] for k in ("tahun", "jenis", "semester", "tanggal_mulai", "tanggal_selesai")
        },
        "jenis_jabatan": record["pegawai"]["jenis_ptk"],
        "jabatan": record["pegawai"]["jabatan"],
        "unit_kerja": dict(record["sekolah"]),
        "pejabat_penilai": {"nip": record["penilai"]["nip"]},
        "rencana_hasil_kerja": [
            {
                "uraian": "Meningkatkan kualitas pembelajaran",
                "indikator": [
                    {"kode": i["kode"], "uraian": i["nama"], "target": "Meningkat"}
                    for i in record["perencanaan"]["indikator"]
                ],
            }
        ],
        "sumber": {"sistem": "PMM", "id": record["id"], "versi_skema": 2},
    }


def penilaian_body(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "rating_hasil_kerja": "SESUAI_EKSPEKTASI",
        "rating_perilaku_kerja": "DIATAS_EKSPEKTASI",
        "predikat_kinerja": "BAIK",
        "tanggal_penilaian": f"{record['periode'][:4]}-06-25",
        "pejabat_penilai": {"nip": record["penilai"]["nip"]},
        "angka_kredit": 12.5,
        "catatan": None,
    }
    body.update(changes)
    return body


def idem(value: str, headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Idempotency-Key": value}


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_world() -> SandboxWorld:
    return generate_world(schools=6, teachers_per_school=20, seed=7, periods=("2025-2", "2026-1"))


@pytest.fixture(scope="module")
def source(big_world: SandboxWorld) -> Iterator[Sandbox]:
    """A read-only source (tests that change records start their own)."""
    with running_sandbox(big_world) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def pmm(source: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=source.pmm_url, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def auth(pmm: httpx.Client) -> dict[str, str]:
    return bearer(pmm)


@pytest.fixture
def small_world() -> SandboxWorld:
    return generate_world(schools=2, teachers_per_school=3, seed=3, periods=("2025-1",))


@pytest.fixture
def target(small_world: SandboxWorld) -> Iterator[Sandbox]:
    with running_sandbox(small_world) as sandbox:
        yield sandbox


@pytest.fixture
def ek(target: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.ekinerja_url, timeout=5) as client:
        yield client


@pytest.fixture
def wauth(ek: httpx.Client) -> dict[str, str]:
    return bearer(ek, scope="skp.write")


def head_and_guru(world: SandboxWorld) -> tuple[dict[str, Any], dict[str, Any]]:
    head = next(r for r in world.records() if r["pegawai"]["jenis_ptk"] == "kepala_sekolah")
    guru = next(
        r
        for r in world.records()
        if r["pegawai"]["jenis_ptk"] == "guru" and r["penilai"]["nip"] == head["pegawai"]["nip"]
    )
    return head, guru


# -- the synthetic world -----------------------------------------------------------------------


def _valid_date(text: str) -> bool:
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def test_world_is_deterministic_for_a_seed() -> None:
    one = generate_world(schools=3, teachers_per_school=5, seed=11)
    two = generate_world(schools=3, teachers_per_school=5, seed=11)
    other = generate_world(schools=3, teachers_per_school=5, seed=12)
    assert one.records() == two.records()
    assert one.schools == two.schools
    assert [r["id"] for r in one.records()] != [r["id"] for r in other.records()]


def test_world_identifiers_are_valid_and_unique(big_world: SandboxWorld) -> None:
    broken = {d.source_id for d in big_world.defects if d.kind == "bad_nip"}
    pppk_codes_over_12 = 0
    for record in big_world.records():
        nip = record["pegawai"]["nip"]
        if record["id"] in broken:
            continue
        assert re.fullmatch(r"[0-9]{18}", nip)
        assert _valid_date(nip[:8])
        assert nip[14] in "12"
        assert nip[15:] != "000"
        if record["pegawai"]["status_kepegawaian"] == "PNS":
            assert 1 <= int(nip[12:14]) <= 12
        else:
            pppk_codes_over_12 += int(nip[12:14]) > 12
        nuptk = record["pegawai"]["nuptk"]
        assert nuptk is None or re.fullmatch(r"[0-9]{16}", nuptk)
    assert pppk_codes_over_12 > 0
    # One person, one NIP: per period a NIP appears once, or twice for a rotation.
    for period in ("2025-2", "2026-1"):
        per_nip = Counter(r["pegawai"]["nip"] for r in big_world.records(period))
        rotated = [nip for nip, n in per_nip.items() if n == 2]
        assert rotated
        assert max(per_nip.values()) == 2
        for nip in rotated:
            older, newer = sorted(
                (r for r in big_world.records(period) if r["pegawai"]["nip"] == nip), key=key
            )
            assert older["sekolah"]["npsn"] != newer["sekolah"]["npsn"]
            assert key(older) < key(newer)
    for school in big_world.schools:
        assert re.fullmatch(r"[0-9]{8}|[PK][0-9]{7}", school["npsn"])
    assert len({s["npsn"] for s in big_world.schools}) == len(big_world.schools)
    assert big_world.assessor_nips_outside_sync
    heads = [r for r in big_world.records() if r["pegawai"]["jenis_ptk"] == "kepala_sekolah"]
    assert {r["penilai"]["nip"] for r in heads} <= big_world.assessor_nips_outside_sync
    assert {r["penilai"]["peran"] for r in heads if r["periode"] < "2026"} == {"pengawas_sekolah"}
    assert {r["penilai"]["peran"] for r in heads if r["periode"] >= "2026"} == {"kepala_dinas"}


def test_world_defects_are_listed_and_real(big_world: SandboxWorld) -> None:
    kinds = Counter(d.kind for d in big_world.defects)
    assert set(kinds) == {"bad_nip", "wrong_indicator_family", "predicate_mismatch"}
    cancelled = {r["id"] for r in big_world.records() if r["dibatalkan"]}
    for defect in big_world.defects:
        record = big_world.record(defect.source_id)
        assert record["pegawai"]["jenis_ptk"] == "guru"
        assert defect.source_id not in cancelled
        assert record["pegawai"]["nip"] == defect.nip
        assert record["sekolah"]["npsn"] == defect.npsn
        same_person = [
            r
            for r in big_world.records(record["periode"])
            if r["pegawai"]["nip"] == record["pegawai"]["nip"]
        ]
        assert len(same_person) == 1  # never on a rotated teacher
        if defect.kind == "bad_nip":
            nip = defect.nip
            assert len(nip) != 18 or not 1 <= int(nip[12:14]) <= 12
        elif defect.kind == "wrong_indicator_family":
            assert record["perencanaan"]["indikator"][0]["kode"].startswith("K-")
        else:
            hasil = record["penilaian"]["hasil"]
            cell = (hasil["rating_hasil_kerja"], hasil["rating_perilaku"])
            assert record["penilaian"]["status"] == "final"
            assert hasil["predikat"] != PREDICATE_MATRIX[cell]


def test_world_penilaian_cover_the_matrix_and_the_statuses(big_world: SandboxWorld) -> None:
    broken = {d.source_id for d in big_world.defects}
    records = big_world.records()
    statuses = Counter(r["penilaian"]["status"] for r in records)
    assert statuses["final"] > statuses["draf"] > 0
    assert statuses["belum"] > 0
    cells = set()
    for record in records:
        penilaian = record["penilaian"]
        hasil = penilaian["hasil"]
        if penilaian["status"] == "final":
            assert penilaian["difinalkan_pada"] is not None
            if record["id"] not in broken:
                cell = (hasil["rating_hasil_kerja"], hasil["rating_perilaku"])
                assert hasil["predikat"] == PREDICATE_MATRIX[cell]
                cells.add(cell)
        else:
            assert penilaian["difinalkan_pada"] is None
            assert hasil["predikat"] is None
        if penilaian["status"] == "belum":
            assert hasil == {"rating_hasil_kerja": None, "rating_perilaku": None, "predikat": None}
        assert record["diperbarui_pada"].endswith("+07:00")
    assert cells == set(PREDICATE_MATRIX)
    assert any("catatan" in r["penilaian"] for r in records)
    assert any(r["dibatalkan"] for r in records)
    assert any(r["perencanaan"]["disetujui_pada"] is None for r in records)
    two = [r for r in records if len(r["perencanaan"]["indikator"]) == 2]
    assert two
    assert all(
        r["periode"] == "2026-1" and r["pegawai"]["jenis_ptk"] == "kepala_sekolah" for r in two
    )
    instants = Counter(r["diperbarui_pada"] for r in records)
    assert max(instants.values()) > 3  # many records share one instant


def test_update_record_moves_past_every_timestamp() -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5)
    target = next(r for r in world.records() if r["penilaian"]["status"] != "final")
    latest = max(key(r) for r in world.records())

    def finalise(record: dict[str, Any]) -> None:
        record["penilaian"]["status"] = "final"
        record["penilaian"]["hasil"] = {
            "rating_hasil_kerja": "sesuai_ekspektasi",
            "rating_perilaku": "sesuai_ekspektasi",
            "predikat": "baik",
        }

    updated = world.update_record(target["id"], finalise)
    assert key(updated) > latest
    assert updated["penilaian"]["difinalkan_pada"] == updated["diperbarui_pada"]
    assert world.records()[-1]["id"] == target["id"]
    v1 = world.as_version(updated, 1)
    assert v1["penilaian"]["predikat"] == "baik"
    assert "hasil" not in v1["penilaian"]
    assert world.as_version(v1, 2) == {k: v for k, v in updated.items()} | {
        "penilaian": {k: v for k, v in updated["penilaian"].items() if k != "catatan"}
    }


# -- source: auth, periods, schools ------------------------------------------------------------


def test_source_token_and_bearer_rules(pmm: httpx.Client, auth: dict[str, str]) -> None:
    wrong = pmm.post("/oauth/token", data={**FORM, "client_secret": "nope"})
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client"}
    assert pmm.post("/oauth/token", data={**FORM, "grant_type": "password"}).status_code == 400
    assert pmm.get("/api/v1/periode").status_code == 401
    assert pmm.get("/api/v1/periode", headers={"Authorization": "Bearer x"}).status_code == 401
    answer = pmm.get("/api/v1/periode", headers=auth)
    assert answer.status_code == 200
    assert [p["kode"] for p in answer.json()["data"]] == ["2025-2", "2026-1"]
    assert answer.json()["data"][0] == {
        "kode": "2025-2",
        "jenis": "semester",
        "tahun": 2025,
        "semester": 2,
        "tanggal_mulai": "2025-07-01",
        "tanggal_selesai": "2025-12-31",
        "batas_penilaian": "2025-12-31",
        "status": "ditutup",
    }


def test_source_schools_page_and_filter(
    pmm: httpx.Client, auth: dict[str, str], big_world: SandboxWorld
) -> None:
    seen: list[str] = []
    answer = pmm.get("/api/v1/sekolah", params={"limit": 4}, headers=auth)
    while True:
        page = answer.json()
        assert len(page["data"]) <= 4
        seen.extend(s["npsn"] for s in page["data"])
        if page["next_cursor"] is None:
            break
        answer = pmm.get("/api/v1/sekolah", params={"cursor": page["next_cursor"]}, headers=auth)
    assert seen == sorted(s["npsn"] for s in big_world.schools)
    wilayah = big_world.schools[0]["kode_wilayah"]
    filtered = pmm.get("/api/v1/sekolah", params={"kode_wilayah": wilayah}, headers=auth).json()
    assert filtered["data"]
    assert {s["kode_wilayah"] for s in filtered["data"]} == {wilayah}
    assert pmm.get("/api/v1/sekolah", params={"limit": 0}, headers=auth).status_code == 400


# -- source: kinerja ---------------------------------------------------------------------------


def test_kinerja_walk_serves_every_record_once_in_order(
    pmm: httpx.Client, auth: dict[str, str], big_world: SandboxWorld
) -> None:
    got = walk(pmm, {"periode": "2025-2", "limit": 7}, auth)
    expected = big_world.records("2025-2")
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert [key(r) for r in got] == sorted(key(r) for r in got)
    assert all(r["versi_skema"] == 1 for r in got)
    default = pmm.get("/api/v1/kinerja", params={"periode": "2025-2"}, headers=auth).json()
    assert len(default["data"]) == 100
    assert default["next_cursor"] is not None
    whole = pmm.get("/api/v1/kinerja", params={"periode": "2025-2", "limit": 1000}, headers=auth)
    assert len(whole.json()["data"]) == len(expected)
    assert whole.json()["next_cursor"] is None


def test_kinerja_v1_and_v2_shapes(
    pmm: httpx.Client, auth: dict[str, str], big_world: SandboxWorld
) -> None:
    params: dict[str, str | int] = {"periode": "2026-1", "limit": 1000}
    v1 = pmm.get("/api/v1/kinerja", params=params, headers=auth).json()["data"]
    v2 = pmm.get("/api/v1/kinerja", params=params, headers={**auth, **V2}).json()["data"]
    assert [r["id"] for r in v1] == [r["id"] for r in v2]
    one, two = v1[0], v2[0]
    assert one["versi_skema"] == 1
    assert two["versi_skema"] == 2
    assert one["pegawai"]["peran"] == two["pegawai"]["jenis_ptk"]
    assert "jenis_ptk" not in one["pegawai"]
    assert "peran" not in two["pegawai"]
    assert isinstance(one["perencanaan"]["indikator"], dict)
    assert isinstance(two["perencanaan"]["indikator"], list)
    assert set(one["penilaian"]) == {
        "status",
        "rating_hasil_kerja",
        "rating_perilaku",
        "predikat",
        "difinalkan_pada",
    }
    assert set(two["penilaian"]) - {"catatan"} == {"status", "hasil", "difinalkan_pada"}
    assert not any("catatan" in r["penilaian"] for r in v1)
    assert any("catatan" in r["penilaian"] for r in v2)
    pairs = [(a, b) for a, b in zip(v1, v2, strict=True) if len(b["perencanaan"]["indikator"]) == 2]
    assert pairs
    assert all(a["perencanaan"]["indikator"] == b["perencanaan"]["indikator"][0] for a, b in pairs)
    assert v2 == big_world.records("2026-1")
    bad = pmm.get(
        "/api/v1/kinerja", params=params, headers={**auth, "Accept": "application/json; versi=3"}
    )
    assert bad.status_code == 406


def test_v2_only_deployment_ignores_accept() -> None:
    world = generate_world(schools=1, teachers_per_school=2, seed=2, periods=("2025-1",))
    with (
        running_sandbox(world, schema_version=2) as sandbox,
        httpx.Client(base_url=sandbox.pmm_url) as client,
    ):
        data = client.get("/api/v1/kinerja", params={"periode": "2025-1"}, headers=bearer(client))
        assert {r["versi_skema"] for r in data.json()["data"]} == {2}
    v2_world = generate_world(
        schools=1, teachers_per_school=2, seed=2, periods=("2025-1",), schema_version=2
    )
    with (
        running_sandbox(v2_world) as sandbox,
        httpx.Client(base_url=sandbox.pmm_url) as client,
    ):
        data = client.get("/api/v1/kinerja", params={"periode": "2025-1"}, headers=bearer(client))
        assert {r["versi_skema"] for r in data.json()["data"]} == {2}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"periode": "2031-1"},
        {"periode": "2025-2", "limit": 0},
        {"periode": "2025-2", "limit": 1001},
        {"periode": "2025-2", "limit": "ten"},
        {"periode": "2025-2", "diperbarui_sejak": "2025-09-01T10:00:00"},
        {"periode": "2025-2", "diperbarui_sejak": "yesterday"},
        {"cursor": "not-a-cursor"},
    ],
)
def test_kinerja_bad_parameters_are_400(
    pmm: httpx.Client, auth: dict[str, str], params: dict[str, Any]
) -> None:
    answer = pmm.get("/api/v1/kinerja", params=params, headers=auth)
    assert answer.status_code == 400
    assert set(answer.json()) == {"error", "detail"}


def test_kinerja_since_is_inclusive_and_needs_an_encoded_offset(
    pmm: httpx.Client, auth: dict[str, str], big_world: SandboxWorld
) -> None:
    records = big_world.records("2025-2")
    instant, count = Counter(r["diperbarui_pada"] for r in records).most_common(1)[0]
    assert count >= 2
    since = dt.datetime.fromisoformat(instant)
    expected = [
        r["id"] for r in records if dt.datetime.fromisoformat(r["diperbarui_pada"]) >= since
    ]
    got = walk(pmm, {"periode": "2025-2", "diperbarui_sejak": instant, "limit": 5}, auth)
    assert [r["id"] for r in got] == expected
    # The same instant in UTC selects the same records.
    utc = since.astimezone(dt.UTC).isoformat()
    assert [r["id"] for r in walk(pmm, {"periode": "2025-2", "diperbarui_sejak": utc}, auth)] == (
        expected
    )
    # An unencoded '+' arrives as a space: the offset is lost, so the server refuses it.
    raw = pmm.get(f"/api/v1/kinerja?periode=2025-2&diperbarui_sejak={instant}", headers=auth)
    assert raw.status_code == 400


def test_kinerja_npsn_filter(
    pmm: httpx.Client, auth: dict[str, str], big_world: SandboxWorld
) -> None:
    npsn = big_world.schools[1]["npsn"]
    got = walk(pmm, {"periode": "2025-2", "npsn": npsn, "limit": 6}, auth)
    expected = [r["id"] for r in big_world.records("2025-2") if r["sekolah"]["npsn"] == npsn]
    assert [r["id"] for r in got] == expected
    assert len(expected) >= 21
    empty = pmm.get(
        "/api/v1/kinerja", params={"periode": "2025-2", "npsn": "99999999"}, headers=auth
    )
    assert empty.status_code == 200
    assert empty.json() == {"data": [], "next_cursor": None}


def test_kinerja_cursor_rules(
    pmm: httpx.Client,
    auth: dict[str, str],
    big_world: SandboxWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    npsn = big_world.schools[0]["npsn"]
    first = pmm.get(
        "/api/v1/kinerja", params={"periode": "2025-2", "npsn": npsn, "limit": 5}, headers=auth
    ).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    same = pmm.get(
        "/api/v1/kinerja",
        params={"periode": "2025-2", "npsn": npsn, "cursor": cursor, "limit": 5},
        headers=auth,
    )
    alone = pmm.get("/api/v1/kinerja", params={"cursor": cursor, "limit": 5}, headers=auth)
    assert same.status_code == alone.status_code == 200
    assert same.json()["data"] == alone.json()["data"]
    assert {r["sekolah"]["npsn"] for r in alone.json()["data"]} == {npsn}
    assert not {r["id"] for r in alone.json()["data"]} & {r["id"] for r in first["data"]}
    for other in (
        {"periode": "2026-1"},
        {"npsn": big_world.schools[1]["npsn"]},
        {"diperbarui_sejak": "2025-07-01T00:00:00+07:00"},
    ):
        changed = pmm.get("/api/v1/kinerja", params={"cursor": cursor, **other}, headers=auth)
        assert changed.status_code == 400, other
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert pmm.get("/api/v1/kinerja", params={"cursor": tampered}, headers=auth).status_code == 400
    schools_cursor = pmm.get("/api/v1/sekolah", params={"limit": 1}, headers=auth).json()
    wrong_kind = pmm.get(
        "/api/v1/kinerja", params={"cursor": schools_cursor["next_cursor"]}, headers=auth
    )
    assert wrong_kind.status_code == 400
    later = time.time() + 24 * 3600 + 60
    monkeypatch.setattr(pmm_module, "_wall_clock", lambda: later)
    expired = pmm.get("/api/v1/kinerja", params={"cursor": cursor}, headers=auth)
    assert expired.status_code == 400
    assert expired.json()["error"] == "expired_cursor"


def test_record_changed_during_a_walk_is_served_again_later() -> None:
    world = generate_world(schools=2, teachers_per_school=10, seed=4, periods=("2025-1",))
    with (
        running_sandbox(world) as sandbox,
        httpx.Client(base_url=sandbox.pmm_url) as client,
    ):
        headers = {**bearer(client), **V2}
        page = client.get(
            "/api/v1/kinerja", params={"periode": "2025-1", "limit": 5}, headers=headers
        ).json()
        changed = page["data"][0]
        patch = client.patch(
            f"/_sandbox/kinerja/{changed['id']}",
            json={"pelaksanaan.pengembangan_kompetensi_jp": 99},
        )
        assert patch.status_code == 200
        rest: list[dict[str, Any]] = []
        cursor = page["next_cursor"]
        while cursor is not None:
            answer = client.get("/api/v1/kinerja", params={"cursor": cursor}, headers=headers)
            rest.extend(answer.json()["data"])
            cursor = answer.json()["next_cursor"]
        assert rest[-1]["id"] == changed["id"]
        assert rest[-1]["pelaksanaan"]["pengembangan_kompetensi_jp"] == 99
        assert key(rest[-1]) > key(changed)
        ids = [r["id"] for r in page["data"]] + [r["id"] for r in rest]
        assert len(ids) == len(world.records()) + 1


def test_source_admin_endpoints(big_world: SandboxWorld) -> None:
    world = generate_world(schools=4, teachers_per_school=24, seed=9)
    with (
        running_sandbox(world) as sandbox,
        httpx.Client(base_url=sandbox.pmm_url) as client,
    ):
        defects = client.get("/_sandbox/defects").json()["data"]
        assert defects == [
            {
                "source_id": d.source_id,
                "nip": d.nip,
                "npsn": d.npsn,
                "kind": d.kind,
                "description": d.description,
            }
            for d in world.defects
        ]
        record = world.records()[0]
        answer = client.patch(
            f"/_sandbox/kinerja/{record['id']}",
            json={"penilaian.status": "draf", "perencanaan.indikator.0.kode": "G-05"},
        )
        assert answer.status_code == 200
        stored = world.record(record["id"])
        assert stored["penilaian"]["status"] == "draf"
        assert stored["perencanaan"]["indikator"][0]["kode"] == "G-05"
        assert (
            client.patch(f"/_sandbox/kinerja/{record['id']}", json={"id": "x"}).status_code == 400
        )
        assert client.patch("/_sandbox/kinerja/nope", json={}).status_code == 404
        assert client.put("/_sandbox/faults", json={"no_such_fault": 1}).status_code == 400
        assert (
            client.put("/_sandbox/faults", json={"error_share": 0.5}).json()["error_share"] == 0.5
        )
        assert sandbox.source_faults.error_share == 0.5


# -- target: auth and idempotency --------------------------------------------------------------


def test_target_token_scope(ek: httpx.Client, small_world: SandboxWorld) -> None:
    head, _ = head_and_guru(small_world)
    read_only = bearer(ek)
    answer = ek.post("/api/v1/skp", json=skp_body(small_world, head), headers=idem("k", read_only))
    assert answer.status_code == 403
    assert answer.json()["error"] == "insufficient_scope"
    assert ek.post("/oauth/token", data={**FORM, "scope": "admin"}).status_code == 400
    assert ek.post("/oauth/token", data={**FORM, "client_secret": "x"}).status_code == 401
    assert ek.get("/api/v1/skp", headers=read_only).status_code == 200


def test_idempotency_replay_reuse_and_conflict(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    nip = head["pegawai"]["nip"]
    first = ek.post("/api/v1/skp", json=body, headers=idem("key-1", wauth))
    assert first.status_code == 201
    assert first.json() == {"id_skp": f"SKP-2025-1-{nip}", "status": "diterima", "versi": 1}
    # Same content, other key order and spacing: the first answer again, nothing changed.
    shuffled = json.dumps(dict(reversed(list(body.items()))), indent=2)
    again = ek.post(
        "/api/v1/skp",
        content=shuffled,
        headers={**idem("key-1", wauth), "Content-Type": "application/json"},
    )
    assert again.status_code == 201
    assert again.json() == first.json()
    reused = ek.post(
        "/api/v1/skp", json={**body, "jabatan": "Guru (diubah)"}, headers=idem("key-1", wauth)
    )
    assert reused.status_code == 422
    assert reused.json()["kode"] == "IDEMPOTENCY_KEY_REUSED"
    second = ek.post("/api/v1/skp", json=body, headers=idem("key-2", wauth))
    assert second.status_code == 409
    assert second.json()["kode"] == "SKP_SUDAH_ADA"
    assert second.json()["id_skp"] == f"SKP-2025-1-{nip}"
    assert second.json()["versi"] == 1
    assert ek.post("/api/v1/skp", json=body, headers=wauth).status_code == 400
    assert ek.post("/api/v1/skp", json=body, headers=idem("x" * 129, wauth)).status_code == 400
    assert ek.post("/api/v1/skp", json=body, headers=idem("y" * 128, wauth)).status_code == 409
    stats = target.target.stats()
    assert stats["skp_created"] == 1
    assert stats["replayed"] == 1
    assert stats["creates"]["skp"] == {f"{nip}/2025-1": 1}
    assert stats["rejected"] == 5
    assert stats["requests"] == 7
    served = ek.get("/_sandbox/stats").json()
    assert served.pop("rate_window")["arrivals"] == 8  # the token request and the seven
    assert served == stats


def test_an_answer_is_timed_before_the_client_has_it(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    """``answer_s`` counts an answer as it starts, so whoever reads the counters after an
    answer arrived finds it in them (it was counted after the answer, and read too early)."""
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    seen = target.target.stats()["answer_s"]
    for i in range(30):
        ek.post("/api/v1/skp", json=body, headers=idem(f"key-{i}", wauth))
        now = target.target.stats()["answer_s"]
        assert now > seen
        seen = now


def test_concurrent_requests_with_one_key_create_once(
    target: Sandbox, wauth: dict[str, str], small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)

    def send(_: int) -> tuple[int, Any]:
        with httpx.Client(base_url=target.ekinerja_url, timeout=5) as client:
            answer = client.post("/api/v1/skp", json=body, headers=idem("same", wauth))
            return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {status for status, _ in answers} == {201}
    assert len({json.dumps(out) for _, out in answers}) == 1
    stats = target.target.stats()
    assert stats["skp_created"] == 1
    assert stats["replayed"] == 7


def test_penilai_needs_an_skp_first_and_errors_are_not_replayed(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, guru = head_and_guru(small_world)
    early = ek.post("/api/v1/skp", json=skp_body(small_world, guru), headers=idem("g", wauth))
    assert early.status_code == 409
    assert early.json()["kode"] == "PENILAI_BELUM_ADA_SKP"
    # The kepala sekolah's penilai is a pengawas outside the sync: accepted straight away.
    assert head["penilai"]["nip"] in small_world.assessor_nips_outside_sync
    assert (
        ek.post(
            "/api/v1/skp", json=skp_body(small_world, head), headers=idem("h", wauth)
        ).status_code
        == 201
    )
    later = ek.post("/api/v1/skp", json=skp_body(small_world, guru), headers=idem("g", wauth))
    assert later.status_code == 201
    assert target.target.stats()["replayed"] == 0
    listed = ek.get(
        "/api/v1/skp",
        params={"nip": guru["pegawai"]["nip"], "tahun": 2025, "semester": 1},
        headers=wauth,
    ).json()["data"]
    assert [s["id_skp"] for s in listed] == [later.json()["id_skp"]]
    assert listed[0]["versi"] == 1
    assert listed[0]["sumber"]["id"] == guru["id"]
    assert ek.get("/api/v1/skp", params={"nip": "1" * 18}, headers=wauth).json() == {"data": []}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["periode"].update(tanggal_selesai="2025-06-29"), "periode.tanggal_selesai"),
        (lambda b: b["periode"].update(tanggal_mulai="2025-02-01"), "periode.tanggal_mulai"),
        (lambda b: b.update(nip=b["nip"][:17]), "nip"),
        (lambda b: b.update(jenis_jabatan="pengawas"), "jenis_jabatan"),
        (lambda b: b.pop("sumber"), "sumber"),
        (lambda b: b.update(extra=1), "extra"),
        (lambda b: b["unit_kerja"].update(npsn="2021234x"), "unit_kerja.npsn"),
        (lambda b: b.update(rencana_hasil_kerja=[]), "rencana_hasil_kerja"),
        (lambda b: b["periode"].update(semester=3), "periode.semester"),
    ],
)
def test_skp_validation(
    ek: httpx.Client,
    wauth: dict[str, str],
    small_world: SandboxWorld,
    change: Any,
    field: str,
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    change(body)
    answer = ek.post("/api/v1/skp", json=body, headers=idem("v", wauth))
    assert answer.status_code == 422
    assert answer.json()["kode"] == "VALIDASI"
    assert field in {e["field"] for e in answer.json()["errors"]}


def test_skp_for_a_period_not_open_is_refused(
    ek: httpx.Client, wauth: dict[str, str], small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    body["periode"] = {
        "tahun": 2030,
        "semester": 2,
        "tanggal_mulai": "2030-07-01",
        "tanggal_selesai": "2030-12-31",
    }
    answer = ek.post("/api/v1/skp", json=body, headers=idem("p", wauth))
    assert answer.status_code == 422
    assert answer.json()["kode"] == "PERIODE_TIDAK_ADA"


def test_skp_put_needs_if_match_and_the_current_versi(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    id_skp = ek.post("/api/v1/skp", json=body, headers=idem("c", wauth)).json()["id_skp"]
    changed = {**body, "jabatan": "Guru Ahli Utama"}
    url = f"/api/v1/skp/{id_skp}"
    assert ek.put(url, json=changed, headers=idem("u0", wauth)).status_code == 428
    stale = ek.put(url, json=changed, headers={**idem("u1", wauth), "If-Match": "7"})
    assert stale.status_code == 412
    assert stale.json()["versi"] == 1
    ok = ek.put(url, json=changed, headers={**idem("u2", wauth), "If-Match": "1"})
    assert ok.status_code == 200
    assert ok.json() == {
        "id_skp": id_skp,
        "status": "diterima",
        "versi": 2,
    }
    assert ok.headers["ETag"] == '"2"'
    # The replay answers the first 200 although versi 1 is stale now.
    replay = ek.put(url, json=changed, headers={**idem("u2", wauth), "If-Match": "1"})
    assert replay.status_code == 200
    assert replay.json()["versi"] == 2
    other_nip = {**changed, "nip": "1" * 18}
    moved = ek.put(url, json=other_nip, headers={**idem("u3", wauth), "If-Match": "2"})
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "nip"
    other_period = {
        **changed,
        "periode": {
            **changed["periode"],
            "semester": 2,
            "tanggal_mulai": "2025-07-01",
            "tanggal_selesai": "2025-12-31",
        },
    }
    moved = ek.put(url, json=other_period, headers={**idem("u4", wauth), "If-Match": "2"})
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "periode"
    missing = ek.put(
        "/api/v1/skp/SKP-2025-1-000", json=changed, headers={**idem("u5", wauth), "If-Match": "1"}
    )
    assert missing.status_code == 404
    stats = target.target.stats()
    assert stats["skp_updated"] == 1
    assert stats["skp_created"] == 1
    [skp] = target.target.skps()
    assert skp["versi"] == 2
    assert skp["body"]["jabatan"] == "Guru Ahli Utama"
    assert not skp["locked"]


def test_penilaian_rules_and_lock(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    id_skp = ek.post("/api/v1/skp", json=body, headers=idem("c", wauth)).json()["id_skp"]
    url = f"/api/v1/skp/{id_skp}/penilaian"
    unknown = ek.post(
        "/api/v1/skp/SKP-2025-1-1/penilaian", json=penilaian_body(head), headers=idem("p0", wauth)
    )
    assert unknown.status_code == 404
    mismatch = ek.post(
        url, json=penilaian_body(head, predikat_kinerja="SANGAT_BAIK"), headers=idem("p1", wauth)
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["kode"] == "PREDIKAT_TIDAK_SESUAI"
    misconduct = penilaian_body(
        head,
        rating_hasil_kerja="DIATAS_EKSPEKTASI",
        rating_perilaku_kerja="DIBAWAH_EKSPEKTASI",
        predikat_kinerja="BAIK",
    )
    assert (
        ek.post(url, json=misconduct, headers=idem("p2", wauth)).json()["kode"]
        == "PREDIKAT_TIDAK_SESUAI"
    )
    other_penilai = penilaian_body(head, pejabat_penilai={"nip": "1" * 18})
    wrong = ek.post(url, json=other_penilai, headers=idem("p3", wauth))
    assert wrong.status_code == 422
    assert wrong.json()["kode"] == "VALIDASI"
    assert wrong.json()["errors"][0]["field"] == "pejabat_penilai.nip"
    for credit in ("12.5055", '"12.5"', "-1", "true"):
        raw = json.dumps(penilaian_body(head, angka_kredit=0)).replace(
            '"angka_kredit": 0', f'"angka_kredit": {credit}'
        )
        answer = ek.post(
            url,
            content=raw,
            headers={**idem(f"a{credit}", wauth), "Content-Type": "application/json"},
        )
        assert answer.status_code == 422, credit
        assert answer.json()["errors"][0]["field"] == "angka_kredit"
    assert (
        ek.post(
            url, json=penilaian_body(head, catatan="x" * 2001), headers=idem("p4", wauth)
        ).status_code
        == 422
    )
    assert target.target.penilaian() == []
    raw = json.dumps(penilaian_body(head)).replace('"angka_kredit": 12.5', '"angka_kredit": 14.060')
    created = ek.post(
        url, content=raw, headers={**idem("p5", wauth), "Content-Type": "application/json"}
    )
    assert created.status_code == 201
    assert created.json() == {"id_penilaian": created.json()["id_penilaian"], "status": "final"}
    again = ek.post(url, json=penilaian_body(head, catatan="lagi"), headers=idem("p6", wauth))
    assert again.status_code == 409
    assert again.json()["kode"] == "PENILAIAN_SUDAH_ADA"
    locked = ek.put(
        f"/api/v1/skp/{id_skp}",
        json={**body, "jabatan": "Guru Ahli Utama"},
        headers={**idem("u", wauth), "If-Match": "1"},
    )
    assert locked.status_code == 409
    assert locked.json()["kode"] == "SKP_TERKUNCI"
    stats = target.target.stats()
    assert stats["penilaian_created"] == 1
    assert stats["skp_updated"] == 0
    assert stats["creates"]["penilaian"] == {f"{head['pegawai']['nip']}/2025-1": 1}
    [stored] = target.target.penilaian()
    assert stored["id_skp"] == id_skp
    assert stored["body"]["angka_kredit"] == 14.06
    assert target.target.skps()[0]["locked"] is True
    assert ek.get(f"/api/v1/skp/{id_skp}", headers=wauth).json()["terkunci"] is True


def test_token_expiry_gives_401_then_a_new_token_works() -> None:
    world = generate_world(schools=1, teachers_per_school=1, seed=1)
    with (
        running_sandbox(world, token_ttl_s=1) as sandbox,
        httpx.Client(base_url=sandbox.ekinerja_url) as ek,
        httpx.Client(base_url=sandbox.pmm_url) as pmm,
    ):
        target_auth, source_auth = bearer(ek, "skp.write"), bearer(pmm)
        token = ek.post("/oauth/token", data={**FORM, "scope": "skp.write"}).json()
        assert token["expires_in"] == 1
        assert ek.get("/api/v1/skp", headers=target_auth).status_code == 200
        time.sleep(1.1)
        assert ek.get("/api/v1/skp", headers=target_auth).status_code == 401
        assert pmm.get("/api/v1/periode", headers=source_auth).status_code == 401
        assert ek.get("/api/v1/skp", headers=bearer(ek, "skp.write")).status_code == 200
        fresh = bearer(pmm)
        assert pmm.post("/_sandbox/tokens/revoke").json()["revoked"] >= 1
        assert pmm.get("/api/v1/periode", headers=fresh).status_code == 401


# -- faults ------------------------------------------------------------------------------------


def test_faults_are_repeatable_for_a_seed() -> None:
    one, two = Faults(seed=3), Faults(seed=3)
    assert [one.draw(0.5) for _ in range(50)] == [two.draw(0.5) for _ in range(50)]
    assert [one.error_status() for _ in range(20)] == [two.error_status() for _ in range(20)]
    assert {one.error_status() for _ in range(200)} == {500, 502, 503, 504}
    one.update({"seed": 3, "unknown_nips": ["1"], "maintenance_s": 0})
    assert one.unknown_nips == {"1"}
    assert one.maintenance_until is None
    with pytest.raises(ValueError, match="unknown fault"):
        one.update({"nope": 1})
    assert dataclasses.asdict(one)["unknown_nips"] == {"1"}
    assert one.as_dict()["unknown_nips"] == ["1"]


def test_rate_limit_and_error_faults(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    target.faults.update({"rate_limit_share": 1.0, "retry_after_s": 2})
    limited = ek.get("/api/v1/skp", headers=wauth)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    target.faults.update({"retry_after_http_date": True})
    dated = ek.get("/api/v1/skp", headers=wauth).headers["Retry-After"]
    moment = email.utils.parsedate_to_datetime(dated)
    assert 0 <= (moment - dt.datetime.now(dt.UTC)).total_seconds() <= 3
    # The token endpoint and the admin endpoints are never faulted.
    assert ek.post("/oauth/token", data={**FORM, "scope": "skp.write"}).status_code == 200
    assert ek.get("/_sandbox/stats").status_code == 200
    target.faults.update({"rate_limit_share": 0, "error_share": 1.0})
    statuses = {
        ek.post(
            "/api/v1/skp", json=skp_body(small_world, head), headers=idem(f"e{i}", wauth)
        ).status_code
        for i in range(12)
    }
    assert statuses <= {500, 502, 503, 504}
    assert len(statuses) > 1
    assert target.target.skps() == []
    faults = target.target.stats()["faults"]
    assert faults == {"rate_limited": 2, "error": 12}


def test_slow_and_latency_faults(ek: httpx.Client, wauth: dict[str, str], target: Sandbox) -> None:
    start = time.monotonic()
    assert ek.get("/api/v1/skp", headers=wauth).status_code == 200
    quick = time.monotonic() - start
    target.faults.update({"slow_share": 1.0, "slow_s": 0.3, "latency_s": 0.1})
    start = time.monotonic()
    assert ek.get("/api/v1/skp", headers=wauth).status_code == 200
    assert time.monotonic() - start >= 0.4 > quick


def test_dropped_connection_after_store_then_replay(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    target.faults.update({"drop_after_store_share": 1.0})
    with pytest.raises(httpx.RemoteProtocolError):
        ek.post("/api/v1/skp", json=body, headers=idem("drop-1", wauth))
    assert [s["nip"] for s in target.target.skps()] == [head["pegawai"]["nip"]]
    target.faults.update({"drop_after_store_share": 0.0})
    replay = ek.post("/api/v1/skp", json=body, headers=idem("drop-1", wauth))
    assert replay.status_code == 201
    assert replay.json()["versi"] == 1
    stats = target.target.stats()
    assert stats["skp_created"] == 1
    assert stats["replayed"] == 1
    assert stats["creates"]["skp"] == {f"{head['pegawai']['nip']}/2025-1": 1}
    assert stats["faults"] == {"dropped": 1}


def test_source_get_can_be_dropped(small_world: SandboxWorld) -> None:
    with (
        running_sandbox(small_world, source_faults=Faults(drop_after_store_share=1.0)) as sandbox,
        httpx.Client(base_url=sandbox.pmm_url) as pmm,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            pmm.get("/api/v1/periode", headers=bearer(pmm))
        sandbox.source_faults.update({"drop_after_store_share": 0})
        assert pmm.get("/api/v1/periode", headers=bearer(pmm)).status_code == 200


def test_maintenance_window(ek: httpx.Client, wauth: dict[str, str]) -> None:
    assert ek.put("/_sandbox/faults", json={"maintenance_s": 1.5}).status_code == 200
    answer = ek.get("/api/v1/skp", headers=wauth)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.json()["kode"] == "PEMELIHARAAN"
    assert ek.post("/oauth/token", data={**FORM, "scope": "skp.write"}).status_code == 200
    assert 0 < ek.get("/_sandbox/faults").json()["maintenance_s_left"] <= 1.5
    ek.put("/_sandbox/faults", json={"maintenance_s": 0})
    assert ek.get("/api/v1/skp", headers=wauth).status_code == 200


def test_unknown_nip_and_inactive_school(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox, small_world: SandboxWorld
) -> None:
    head, _ = head_and_guru(small_world)
    body = skp_body(small_world, head)
    target.faults.update({"unknown_nips": [body["nip"]]})
    answer = ek.post("/api/v1/skp", json=body, headers=idem("n", wauth))
    assert answer.status_code == 422
    assert answer.json()["kode"] == "NIP_TIDAK_DITEMUKAN"
    target.faults.update({"unknown_nips": [], "inactive_npsns": [body["unit_kerja"]["npsn"]]})
    answer = ek.post("/api/v1/skp", json=body, headers=idem("n", wauth))
    assert answer.status_code == 422
    assert answer.json()["kode"] == "UNOR_TIDAK_AKTIF"
    target.faults.update({"inactive_npsns": []})
    assert ek.post("/api/v1/skp", json=body, headers=idem("n", wauth)).status_code == 201


def test_rate_limit_per_second_sliding_window(
    ek: httpx.Client, wauth: dict[str, str], target: Sandbox
) -> None:
    target.faults.update({"rate_limit_per_s": 2})
    before = target.rate_window.stats()
    statuses = [ek.get("/api/v1/skp", headers=wauth) for _ in range(8)]
    assert statuses[0].status_code == 200  # the token request just before takes room too
    limited = [a for a in statuses if a.status_code == 429]
    assert len(limited) >= 4
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    after = target.rate_window.stats()
    assert after["refused"] - before["refused"] == len(limited)
    assert after["worst_window"] >= len(limited) + 1  # every arrival counts, refused or not
    # Not before the window has moved past the two let through.
    time.sleep(1.05)
    assert ek.get("/api/v1/skp", headers=wauth).status_code == 200
    assert ek.get("/_sandbox/stats").json()["rate_window"]["refused"] == after["refused"]
