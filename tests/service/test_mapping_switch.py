"""A switch of the active mapping version, in-process: the remap sends the SKPs whose payload
changed as updates (``If-Match``), reports the locked ones without a request, keeps the
unchanged ones; a record an operator discarded is not sent by the switch, only a new version
of it from PMM reopens it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox import Faults, generate_world
from mappings.model import PerformanceRecord
from mappings.source import read_record
from mappings.versions import get_mapping
from state.models import DISCARDED, DeliveryKind, OutboxEntry, OutboxState, RecordStatus, SyncRecord
from sync.cli import app as cli
from sync.operations.actions import discard
from sync.operations.mapping_diff import DiffStatus, diff_period
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import InProcessSandbox, app_for, ledger_entries, outbox_of, record_of

SKP, ASSESSMENT = DeliveryKind.SKP, DeliveryKind.ASSESSMENT
Box = Callable[..., InProcessSandbox]


def test_a_switch_sends_changed_skps_as_updates_and_reports_locked_ones(
    sandbox: Box, sqlite_url: str
) -> None:
    period = "2026-1"  # kepala sekolah may pick two indicators from 2026 on
    world = generate_world(schools=4, teachers_per_school=8, seed=1, periods=[period])
    box = sandbox(world)
    # 2025.1 named: a store that synced the semester before 2026.2 was the default.
    with app_for(box, sqlite_url, sync={"mapping_version": "2025.1"}) as first:
        assert first.engine.run(period).mapping_version == "2025.1"
    before = box.target.stats()
    with app_for(box, sqlite_url, sync={"mapping_version": "2026.1"}) as second:
        summary = second.engine.run(period)
        assert summary.mapping_version == "2026.1"
        with Session(second.store.engine) as session:
            rows = {
                (r.nip, r.kind): r
                for r in session.exec(select(SyncRecord).where(SyncRecord.period == period))
            }
            dead = session.exec(
                select(OutboxEntry).where(OutboxEntry.state == OutboxState.DEAD)
            ).all()
        updates = [
            e
            for e in ledger_entries(second, period=period)
            if e.outcome == "delivered" and e.action == "update_skp"
        ]
        updated = {e.nip for e in updates}
        locked = {
            nip
            for (nip, kind), r in rows.items()
            if kind is SKP and r.status is RecordStatus.LOCKED
        }
        assert updated, "some delivered SKPs have no penilaian yet: they take the update"
        assert locked, "some delivered SKPs are locked by their penilaian"
        assert summary.count("skp", "updated") == len(updated)
        assert summary.count("skp", "locked") == len(locked)
        assert summary.count("skp", "failed") == 0
        assert dead == []
        # Updated: delivered by 2026.1, against the versi the sync knew; the target's versi 2.
        versions = {s["nip"]: s for s in box.target.skps()}
        for nip in updated:
            row = rows[(nip, SKP)]
            assert (row.status, row.delivered_mapping_version) == (RecordStatus.DELIVERED, "2026.1")
            assert versions[nip]["versi"] == row.skp_version == 2
            assert rows[(nip, ASSESSMENT)].delivered_hash is None  # no penilaian yet
        assert {e.mapping_version for e in updates} == {"2026.1"}
        # Locked: the penilaian went, so the new payload is reported, not sent.
        for nip in locked:
            row = rows[(nip, SKP)]
            assert row.delivered_mapping_version == "2025.1"
            assert "by hand" in (row.reason or "")
            assert versions[nip]["locked"]  # e-Kinerja holds its penilaian
        # Every SKP is now planned by 2026.1, changed or not.
        assert {
            r.mapping_version for (_n, k), r in rows.items() if k is SKP and r.payload_hash
        } == {"2026.1"}
        after = box.target.stats()
        assert after["skp_updated"] - before["skp_updated"] == len(updated)
        assert after["skp_created"] == before["skp_created"]
        assert after["penilaian_created"] == before["penilaian_created"]
        # Locked ones are reported, not retried: a next run sends nothing.
        assert second.engine.run(period).requests_sent == 0
        assert box.target.stats()["requests"] == after["requests"]


def test_a_discarded_record_is_not_sent_by_a_switch_until_pmm_changes_it(
    sandbox: Box, sqlite_url: str
) -> None:
    period = "2025-1"
    world = generate_world(schools=2, teachers_per_school=6, seed=21, periods=[period])
    expected = expected_after_sync(world, period)
    guru = next(
        r
        for r in world.records(period)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{period}" in expected.assessment
    )
    nip = guru["pegawai"]["nip"]
    faults = Faults(unknown_nips={nip})
    box = sandbox(world, faults=faults)

    def sent() -> int:
        return int(box.target.stats()["creates"]["skp"].get(f"{nip}/{period}", 0))

    with app_for(box, sqlite_url) as app:
        app.engine.run(period)
        assert record_of(app, period, nip, SKP).status is RecordStatus.FAILED
        discard(app.store, f"{period}/{nip}/skp", user_name="ani", why="pensiun sebelum periode")
    faults.update({"unknown_nips": []})  # BKN would accept it now

    with app_for(box, sqlite_url, sync={"mapping_version": "2026.1"}) as switched:
        switched.engine.run(period)
        assert sent() == 0
        row = record_of(switched, period, nip, SKP)
        assert (row.status, row.reason_code) == (RecordStatus.CANCELLED, DISCARDED)
        assert "discarded by ani" in (row.reason or "")
        discards = [e for e in ledger_entries(switched, nip=nip) if e.action == "discard"]
        assert [e.actor for e in discards] == ["operator:ani"]

        # Only a new version of the record from PMM reopens it.
        world.update_record(guru["id"], lambda r: r["pegawai"].update(nama="Nama Dikoreksi"))
        switched.engine.run(period)
        assert sent() == 1
        assert record_of(switched, period, nip, SKP).status is RecordStatus.DELIVERED


def test_a_failed_record_waits_for_a_replay_whatever_the_mapping(
    sandbox: Box, sqlite_url: str, tmp_path: Path
) -> None:
    """Issue 23 item 8: a switch re-sent 20 refused SKPs, refused again, without a replay."""
    period = "2026-1"
    world = generate_world(schools=4, teachers_per_school=8, seed=1, periods=[period])
    old, new = get_mapping("2025.1"), get_mapping("2026.1")
    penilai = {r["penilai"]["nip"] for r in world.records(period)}
    guru = next(
        raw
        for raw in world.records(period)
        if isinstance(record := read_record(raw), PerformanceRecord)
        and raw["pegawai"]["jenis_ptk"] == "guru"
        and raw["pegawai"]["nip"] not in penilai
        and not raw["dibatalkan"]
        and record.plan_approved
        and record.assessment_final  # its penilaian waits behind the refused SKP
        and old.skp(record) != new.skp(record)  # the switch changes what it would send
    )
    nip = guru["pegawai"]["nip"]
    faults = Faults(unknown_nips={nip})
    box = sandbox(world, faults=faults)

    def created() -> int:
        return int(box.target.stats()["creates"]["skp"].get(f"{nip}/{period}", 0))

    with app_for(box, sqlite_url, sync={"mapping_version": "2025.1"}) as first:
        first.engine.run(period)
        assert record_of(first, period, nip, SKP).status is RecordStatus.FAILED
    faults.update({"unknown_nips": []})  # BKN would take it now: still the operator's call

    with app_for(box, sqlite_url, sync={"mapping_version": "2026.1"}) as switched:
        diff = diff_period(switched.store, period, new)
        mine = next(r for r in diff.records if r.nip == nip and r.kind is SKP)
        assert mine.status is DiffStatus.WAITS_FOR_REPLAY
        assert "waits for a replay" in (mine.note or "")
        config = tmp_path / "config.toml"
        config.write_text(f'[state]\nurl = "{sqlite_url}"\n', encoding="utf-8")
        shown = CliRunner().invoke(
            cli, ["--config", str(config), "mappings", "diff", "-p", period, "--to", "2026.1"]
        )
        assert shown.exit_code == 0, shown.output
        assert "failed: waits for a replay" in " ".join(shown.stdout.split())

        switched.engine.run(period)
        planned = outbox_of(switched, period, nip, ASSESSMENT)
        switched.engine.run(period)  # and no new request for its penilaian run after run
        assert outbox_of(switched, period, nip, ASSESSMENT) == planned
        assert [e.state for e in outbox_of(switched, period, nip, SKP)] == [OutboxState.DEAD]
        assert record_of(switched, period, nip, SKP).status is RecordStatus.FAILED
        assert created() == 0

        # The replay sends it, made by the mapping now active.
        row = record_of(switched, period, nip, SKP)
        (outcome,) = switched.engine.replay([row], actor="operator:ani")
        assert outcome.after is RecordStatus.DELIVERED
        sent = outbox_of(switched, period, nip, SKP)[-1]
        assert (sent.state, sent.mapping_version) == (OutboxState.DONE, "2026.1")
        assert created() == 1
        # Its penilaian follows it, made by the new version too.
        assessment = outbox_of(switched, period, nip, ASSESSMENT)[-1]
        assert (assessment.state, assessment.mapping_version) == (OutboxState.DONE, "2026.1")
