"""A semester, end to end: PMM sandbox -> engine -> e-Kinerja sandbox, over real HTTP,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from connectors.sandbox import generate_world, running_sandbox
from state import ledger
from state.models import (
    DeliveryKind,
    OutboxEntry,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from tests.e2e.helpers import app_for, expected_after_sync

PERIOD = "2025-1"


@pytest.mark.parametrize("schema_version", [1, 2])
def test_semester_reaches_target_exactly_once(state_url: str, schema_version: int) -> None:
    world = generate_world(schools=10, teachers_per_school=20, seed=11, periods=[PERIOD])
    assert len(world.records(PERIOD)) >= 200
    expected = expected_after_sync(world, PERIOD)
    assert expected.defects, "the sandbox must serve some bad records"
    with (
        running_sandbox(world, schema_version=1) as box,
        app_for(box, state_url, source={"schema_version": schema_version}) as app,
    ):
        summary = app.engine.run(PERIOD)
        stats = box.target.stats()

        # Every valid, ready record reached the target exactly once, by the sandbox's count.
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        assert summary.count("skp", "new") == len(expected.skp)
        assert summary.count("assessment", "new") == len(expected.assessment)

        # Every bad record is quarantined with a reason a person can read.
        with Session(app.store.engine) as session:
            quarantined = {
                r.id: r
                for r in session.exec(
                    select(SourceRecord).where(SourceRecord.status == SourceStatus.QUARANTINED)
                )
            }
            held = {
                r.nip
                for r in session.exec(
                    select(SyncRecord).where(SyncRecord.status == RecordStatus.HELD)
                )
            }
        assert set(quarantined) == expected.defects
        for defect in world.defects:
            row = quarantined[defect.source_id]
            assert row.reason is not None
            assert len(row.reason) > 20
            assert (
                row.reason_code
                in {
                    "bad_nip": {"invalid_nip"},
                    "wrong_indicator_family": {"indicator_role_mismatch"},
                    "predicate_mismatch": {"predicate_mismatch"},
                }[defect.kind]
            )
        assert summary.quarantined == len(expected.defects)
        assert held == expected.held

        # The ledger holds one entry per delivery, with the body as sent, and verifies.
        with Session(app.store.engine) as session:
            delivered = [e for e in ledger.query(session) if e.outcome == "delivered"]
            assert ledger.verify(session).ok
        assert len(delivered) == len(expected.skp) + len(expected.assessment)
        sample = next(e for e in delivered if e.kind == "skp")
        assert sample.request_body is not None
        assert json.loads(sample.request_body)["nip"] == sample.nip
        assert sample.http_status == 201
        assert sample.mapping_version == "2025.1"
        assert sample.actor == "cli"

        # A rerun with no source change sends nothing.
        again = app.engine.run(PERIOD)
        assert again.requests_sent == 0
        assert box.target.stats()["requests"] == stats["requests"]
        assert again.count("skp", "unchanged") == len(expected.skp)


def test_changes_go_as_updates_and_new_penilaian(state_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=10, seed=5, periods=[PERIOD])
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        app.engine.run(PERIOD)
        before = box.target.stats()
        expected = expected_after_sync(world, PERIOD)
        delivered_skp = {key.split("/")[0] for key in expected.skp}
        # A guru whose SKP went and whose penilaian is still a draft.
        draft = next(
            r
            for r in world.records(PERIOD)
            if r["pegawai"]["nip"] in delivered_skp
            and r["pegawai"]["jenis_ptk"] == "guru"
            and r["penilaian"]["status"] == "draf"
            and not r["dibatalkan"]
        )

        def change_indicator(record: dict) -> None:
            current = record["perencanaan"]["indikator"][0]["kode"]
            other = "G-01" if current != "G-01" else "G-02"
            record["perencanaan"]["indikator"] = [{"kode": other, "nama": "Indikator lain"}]

        world.update_record(draft["id"], change_indicator)
        summary = app.engine.run(PERIOD)
        after_update = box.target.stats()
        assert after_update["skp_updated"] == before["skp_updated"] + 1
        assert after_update["skp_created"] == before["skp_created"]
        assert summary.count("skp", "updated") == 1
        stored = next(s for s in box.target.skps() if s["nip"] == draft["pegawai"]["nip"])
        assert stored["versi"] == 2

        def finalise(record: dict) -> None:
            record["penilaian"].update(
                status="final",
                hasil={
                    "rating_hasil_kerja": "sesuai_ekspektasi",
                    "rating_perilaku": "diatas_ekspektasi",
                    "predikat": "baik",
                },
                difinalkan_pada="2025-06-25T10:00:00+07:00",
            )

        world.update_record(draft["id"], finalise)
        summary = app.engine.run(PERIOD)
        final = box.target.stats()
        assert final["penilaian_created"] == before["penilaian_created"] + 1
        assert summary.count("assessment", "new") == 1
        key = f"{draft['pegawai']['nip']}/2025-1"
        assert final["creates"]["penilaian"][key] == 1


def test_dry_run_sends_nothing_and_writes_nothing(state_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=10, seed=3, periods=[PERIOD])
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        summary = app.engine.run(PERIOD, dry_run=True)
        assert summary.count("skp", "would_send") > 0
        stats = box.target.stats()
        assert stats["requests"] == 0
        assert stats["skp_created"] == 0
        with Session(app.store.engine) as session:
            for table in (SourceRecord, SyncRecord, OutboxEntry):
                assert session.exec(select(table)).first() is None, table.__name__
        # And the real run afterwards still sends everything.
        real = app.engine.run(PERIOD)
        assert real.count("skp", "new") == summary.count("skp", "would_send")
        assert box.target.stats()["skp_created"] == real.count("skp", "new")


def test_scoped_to_one_school(state_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=5, seed=9, periods=[PERIOD])
    npsn = world.schools[1]["npsn"]
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        app.engine.run(PERIOD, schools=[npsn])
        units = {s["body"]["unit_kerja"]["npsn"] for s in box.target.skps()}
        assert units == {npsn}
        counts = app.store.status_counts(PERIOD)
        assert set(counts) <= {npsn}
        assert counts[npsn][(DeliveryKind.SKP.value, RecordStatus.DELIVERED.value)] > 0


def test_guru_held_until_their_kepala_sekolah_has_an_skp(state_url: str) -> None:
    """PENILAI_BELUM_ADA_SKP: the guru's SKP waits (held) and goes once its penilai's does."""
    world = generate_world(schools=2, teachers_per_school=6, seed=21, periods=[PERIOD])
    school = world.schools[0]["npsn"]
    principal = next(
        r
        for r in world.records(PERIOD)
        if r["sekolah"]["npsn"] == school and r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
    )
    world.update_record(principal["id"], lambda r: r["perencanaan"].update(disetujui_pada=None))
    expected = expected_after_sync(world, PERIOD)
    assert expected.held, "the school's guru must be held"
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "held") == len(expected.held)
        assert box.target.stats()["creates"]["skp"] == expected.skp
        held = [r for r in app.store.failing(PERIOD) if r.status is RecordStatus.HELD]
        assert {r.nip for r in held} == expected.held
        assert all(principal["pegawai"]["nip"] in (r.reason or "") for r in held)

        # The plan of the kepala sekolah is approved: its SKP goes first, then the held ones.
        world.update_record(
            principal["id"],
            lambda r: r["perencanaan"].update(disetujui_pada="2025-02-01T08:00:00+07:00"),
        )
        app.engine.run(PERIOD)
        final = expected_after_sync(world, PERIOD)
        assert not final.held
        assert box.target.stats()["creates"]["skp"] == final.skp
        assert box.target.stats()["creates"]["penilaian"] == final.assessment


def test_record_the_mapping_refuses_is_quarantined_and_the_batch_goes_on(state_url: str) -> None:
    world = generate_world(schools=1, teachers_per_school=8, seed=8, periods=[PERIOD])
    guru = next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru" and not r["dibatalkan"]
    )
    # Validation lets an empty school name through; the SKP payload model does not.
    world.update_record(guru["id"], lambda r: r["sekolah"].update(nama=""))
    with running_sandbox(world) as box, app_for(box, state_url) as app:
        summary = app.engine.run(PERIOD)
        [bad] = app.store.quarantined(PERIOD)
        assert bad.id == guru["id"]
        assert bad.reason_code == "mapping_failed"
        assert "unit_kerja.nama" in (bad.reason or "")
        created = box.target.stats()["creates"]["skp"]
        assert f"{guru['pegawai']['nip']}/2025-1" not in created
        assert len(created) == summary.count("skp", "new") > 0
