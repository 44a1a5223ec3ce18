"""Today's cycle, end to end (issue 11): the year 2026 and the semester 2024-2 synced side by
side into one state store, over real HTTP against the sandbox, on SQLite and PostgreSQL;
every valid record of every real NPSN form once by the sandbox's count, a rerun sends nothing;
a store of the previous release, holding semester data, upgraded and then syncing a year;
reconcile's drift; a period the source does not list."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox import SandboxWorld, generate_world, running_sandbox
from mappings.model import Period
from state import ledger
from state.models import SourceRecord, SourceStatus
from state.schema import head_revision
from sync.cli import app as cli
from sync.operations.reconcile import reconcile_period
from tests.e2e.helpers import Expected, app_for, expected_after_sync

YEAR, SEMESTER = "2026", "2024-2"
runner = CliRunner()
# angka kredit: koefisien tahunan x percentage of the predikat, in wire names
# (docs/domain.md, "Angka kredit").
_COEFFICIENT = {"Guru Ahli Pertama": "12.5", "Guru Ahli Muda": "25", "Guru Ahli Madya": "37.5"}
_PERCENT = {"SANGAT_BAIK": 150, "BAIK": 100, "BUTUH_PERBAIKAN": 75, "KURANG": 50}


def _world() -> SandboxWorld:
    return generate_world(schools=8, teachers_per_school=12, seed=31)


def _defects_of(world: SandboxWorld, period: str) -> set[str]:
    ids = {r["id"] for r in world.records(period)}
    return {d.source_id for d in world.defects if d.source_id in ids}


def _quarantined(app_store_engine: Any, period: str) -> set[str]:
    with Session(app_store_engine) as session:
        return {
            r.id
            for r in session.exec(
                select(SourceRecord).where(
                    SourceRecord.period == period, SourceRecord.status == SourceStatus.QUARANTINED
                )
            )
        }


def _created(stats: dict[str, Any], period: str, kind: str) -> dict[str, int]:
    return {k: n for k, n in stats["creates"][kind].items() if k.endswith(f"/{period}")}


def _months(tmt: str | None, period: Period) -> int:
    return period.months_from(dt.date.fromisoformat(tmt) if tmt else None)


def _check_exactly_once(stats: dict[str, Any], period: str, expected: Expected) -> None:
    assert _created(stats, period, "skp") == expected.skp
    assert _created(stats, period, "penilaian") == expected.assessment


def test_a_year_and_a_semester_side_by_side_exactly_once(state_url: str) -> None:
    world = _world()
    year, semester = expected_after_sync(world, YEAR), expected_after_sync(world, SEMESTER)
    schools = {r["sekolah"]["npsn"] for r in world.records(YEAR)}
    assert {s[0] for s in schools} & {"P", "K"}, "the sandbox serves PKBM/LKP NPSNs"
    assert any(s[0] in "078" for s in schools), "and NPSNs with any first digit"
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        first = app.engine.run(YEAR)
        assert (first.kind, first.mapping_version) == ("tahunan", "2026.2")
        _check_exactly_once(box.target.stats(), YEAR, year)
        # No valid record of any school was held back: only the labelled defects.
        assert _quarantined(app.store.engine, YEAR) == _defects_of(world, YEAR)

        # The semester of 2024 in the same store: a store that has delivered nothing for it
        # sends it with 2026.2 too (issue 23), and keeps that version for it.
        second = app.engine.run(SEMESTER)
        assert (second.kind, second.mapping_version) == ("semester", "2026.2")
        assert app.store.periods.mapping(SEMESTER) == "2026.2"
        stats = box.target.stats()
        _check_exactly_once(stats, SEMESTER, semester)
        _check_exactly_once(stats, YEAR, year)
        assert _quarantined(app.store.engine, SEMESTER) == _defects_of(world, SEMESTER)

        # What e-Kinerja holds for the year: jenis, no semester, the year's dates.
        skps = {(s["nip"], s["jenis"]): s for s in box.target.skps()}
        annual = [s for (_nip, jenis), s in skps.items() if jenis == "tahunan"]
        assert len(annual) == len(year.skp)
        for skp in annual:
            periode = skp["body"]["periode"]
            assert periode == {
                "tahun": 2026,
                "jenis": "tahunan",
                "semester": None,
                "tanggal_mulai": "2026-01-01",
                "tanggal_selesai": "2026-12-31",
            }

        # Every penilaian of the year carries bulan_dinilai from tmt_jabatan, and the
        # angka kredit those months give, to 3 decimals.
        records = {r["pegawai"]["nip"]: r for r in world.records(YEAR) if not r["dibatalkan"]}
        by_skp = {p["id_skp"]: p["body"] for p in box.target.penilaian()}
        partial = 0
        for skp in annual:
            body = by_skp.get(skp["id_skp"])
            if body is None or "angka_kredit" not in body:
                continue
            source = records[skp["nip"]]
            months = _months(source["pegawai"].get("tmt_jabatan"), Period.parse(YEAR))
            assert body["bulan_dinilai"] == months
            partial += months < 12
            coefficient = _COEFFICIENT.get(skp["body"]["jabatan"])
            if coefficient and body["predikat_kinerja"] in _PERCENT:
                exact = (
                    Decimal(coefficient) * _PERCENT[body["predikat_kinerja"]] / 100 * months / 12
                )
                assert abs(Decimal(str(body["angka_kredit"])) - exact) < Decimal("0.0005")
        assert partial, "some teachers took up their jabatan inside the year"

        # Kepala sekolah assessed by the Kepala Dinas went, without waiting for any SKP.
        heads = [r for r in world.records(YEAR) if r["penilai"]["peran"] == "kepala_dinas"]
        assert heads
        for head in heads:
            if f"{head['pegawai']['nip']}/{YEAR}" in year.skp:
                assert (head["pegawai"]["nip"], "tahunan") in skps

        # The ledger says which mapping made what, and verifies.
        with Session(app.store.engine) as session:
            made = {(e.period, e.mapping_version) for e in ledger.query(session) if e.period}
            assert ledger.verify(session).ok
        assert {v for p, v in made if p == YEAR} == {"2026.2"}
        assert {v for p, v in made if p == SEMESTER} == {"2026.2"}

        # Reruns of both send nothing.
        requests = stats["requests"]
        assert app.engine.run(YEAR).requests_sent == 0
        assert app.engine.run(SEMESTER).requests_sent == 0
        assert box.target.stats()["requests"] == requests


def test_a_store_of_the_last_release_holding_semesters_upgrades_and_syncs_a_year(
    state_url: str,
) -> None:
    from sqlalchemy import create_engine

    from state import schema

    world = _world()
    semester = expected_after_sync(world, SEMESTER)
    with running_sandbox(world) as box:
        with app_for(box, state_url) as app:
            app.engine.run(SEMESTER)
        # Back to the last release's schema (0004: no period listing, no console sessions),
        # its semester data kept: a dinas's store as it was before this release.
        engine = create_engine(state_url)
        try:
            schema.downgrade(engine, "0004")
            assert schema.current_revision(engine) == "0004"
        finally:
            engine.dispose()
        result = runner.invoke(
            cli,
            ["db", "upgrade"],
            env={"EKINERJA_SYNC_STATE__URL": state_url},
        )
        assert result.exit_code == 0, result.output
        engine = create_engine(state_url)
        try:
            assert schema.current_revision(engine) == head_revision()
        finally:
            engine.dispose()
        with app_for(box, state_url) as app:
            assert app.engine.run(SEMESTER).requests_sent == 0  # its history is intact
            app.engine.run(YEAR)
        stats = box.target.stats()
        _check_exactly_once(stats, SEMESTER, semester)
        _check_exactly_once(stats, YEAR, expected_after_sync(world, YEAR))


def test_reconcile_reports_the_skps_made_outside_the_sync_per_school(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=3, teachers_per_school=5, seed=32)
    with running_sandbox(world) as box:
        with app_for(box, state_url) as app:
            app.engine.run(YEAR)
            clean = reconcile_period(app, YEAR)
            assert clean.counts()["untracked"] == 0
            assert clean.schools_listed == 3
        # Somebody makes an SKP by hand in e-Kinerja for a teacher PMM does not have.
        school = min((r["sekolah"] for r in world.records(YEAR)), key=lambda s: s["npsn"])
        head = next(r for r in world.records(YEAR) if r["sekolah"]["npsn"] == school["npsn"])[
            "penilai"
        ]
        body = {
            "nip": "199205052019032001",
            "periode": {
                "tahun": 2026,
                "jenis": "tahunan",
                "semester": None,
                "tanggal_mulai": "2026-01-01",
                "tanggal_selesai": "2026-12-31",
            },
            "jenis_jabatan": "guru",
            "jabatan": "Guru Ahli Pertama",
            "unit_kerja": {"npsn": school["npsn"], "nama": school["nama"]},
            "pejabat_penilai": {"nip": head["nip"]},
            "rencana_hasil_kerja": [
                {
                    "uraian": "Dibuat manual",
                    "indikator": [{"kode": "G-01", "uraian": "x", "target": "y"}],
                }
            ],
        }
        made = httpx.post(f"{box.ekinerja_url}/_sandbox/skp", json=body, timeout=5)
        assert made.status_code == 201, made.text
        config = tmp_path / "config.toml"
        config.write_text(
            f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\n',
            encoding="utf-8",
        )
        found = runner.invoke(cli, ["-c", str(config), "reconcile", "--period", YEAR, "--json"])
        assert found.exit_code == 1, found.output
        report = json.loads(found.stdout)
        assert report["counts"]["untracked"] == 1
        assert report["untracked_by_school"] == {school["npsn"]: 1}
        (drift,) = [d for d in report["discrepancies"] if d["problem"] == "untracked"]
        assert (drift["nip"], drift["skp_id"]) == ("199205052019032001", made.json()["id_skp"])
        table = runner.invoke(cli, ["-c", str(config), "reconcile", "--period", YEAR])
        assert "never sent by the sync" in table.stdout
        assert school["npsn"] in table.stdout


def test_a_period_the_source_does_not_list_names_those_it_does(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=3, seed=33)
    with running_sandbox(world) as box:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\n',
            encoding="utf-8",
        )
        result = runner.invoke(
            cli, ["-c", str(config), "run", "--create-store", "--period", "2023"]
        )
        assert result.exit_code == 2, result.output
        assert "does not list period 2023; it lists: 2024-1, 2024-2, 2025, 2026" in result.output
        assert box.target.stats()["requests"] == 0
        # Without --period: the running year (2025's batas_penilaian passed in January 2026).
        ran = runner.invoke(cli, ["-c", str(config), "run", "--json"])
        assert ran.exit_code == 0, ran.output
        assert json.loads(ran.stdout)["period"] == YEAR
