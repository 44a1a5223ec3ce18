"""A mapping-version switch, end to end (issue 6): sync with 2025.1, `mappings diff --to 2026.1`
(nothing sent, nothing written), switch the active version, run: the changed SKPs arrive as
updates, the locked ones are reported; on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox import generate_world, running_sandbox
from mappings.model import Period
from state import ledger
from state.models import DeliveryKind, OutboxEntry, OutboxState, RecordStatus, SyncRecord
from sync.cli import app as cli
from tests.e2e.helpers import app_for

PERIOD = "2026-1"  # kepala sekolah may pick two indicators from 2026 on
runner = CliRunner()


def _cli(config: Path, *args: str) -> Any:
    result = runner.invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _state(state_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every deliverable and outbox row, to prove a command wrote nothing."""
    from sqlmodel import create_engine

    engine = create_engine(state_url)
    try:
        with Session(engine) as session:
            records = sorted(
                (r.nip, r.kind.value, r.status.value, r.payload_hash, r.delivered_hash)
                for r in session.exec(select(SyncRecord))
            )
            outbox = sorted(
                (e.id, e.state.value, e.attempts) for e in session.exec(select(OutboxEntry))
            )
    finally:
        engine.dispose()
    return records, outbox


def test_switch_from_2025_1_to_2026_1(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=4, teachers_per_school=8, seed=1, periods=[PERIOD])
    with running_sandbox(world) as box:
        # 2025.1 named, as a store that synced the semester before 2026.2 was the default.
        with app_for(box, state_url, sync={"mapping_version": "2025.1"}) as first:
            assert first.engine.mappings.for_period(Period.parse(PERIOD)).name == "2025.1"
            first.engine.run(PERIOD)
        before = box.target.stats()
        assert before["skp_created"] > 0

        # 1. What would 2026.1 change? Read-only: the target sees no request, the store no write.
        config = tmp_path / "config.toml"
        config.write_text(
            f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\n'
            '[sync]\nmapping_version = "2025.1"\n',
            encoding="utf-8",
        )
        listed = _cli(config, "mappings", "list", "--json")
        assert [(m["name"], m["active_for"], m["period_kinds"]) for m in listed] == [
            ("2025.1", ["semester"], ["semester"]),
            ("2026.1", [], ["semester"]),
            ("2026.2", ["tahunan"], ["semester", "tahunan"]),
        ]
        stored = _state(state_url)
        diff = _cli(config, "mappings", "diff", "--period", PERIOD, "--to", "2026.1", "--json")
        table = _cli(config, "mappings", "diff", "--period", PERIOD, "--to", "2026.1")
        assert box.target.stats() == before
        assert _state(state_url) == stored
        assert diff["active"] == "2025.1"
        assert diff["version"] == "2026.1"

        skp = [r for r in diff["records"] if r["kind"] == "skp"]
        changed = {r["nip"]: r for r in skp if r["status"] == "changed"}
        locked = {r["nip"]: r for r in skp if r["status"] == "locked"}
        assert changed, "some delivered SKPs have no penilaian yet: they take the update"
        assert locked, "some delivered SKPs are locked by their penilaian"
        assert all(
            r["delivered_version"] == "2025.1" for r in (*changed.values(), *locked.values())
        )
        # A kepala sekolah with two indicators gets a second rencana hasil kerja.
        two = {
            r["pegawai"]["nip"]
            for r in world.records(PERIOD)
            if len(r["perencanaan"]["indikator"]) == 2
        }
        assert two & set(changed)
        for nip in two & set(changed):
            assert any(
                c["path"] == "rencana_hasil_kerja[1]" and c["change"] == "added"
                for c in changed[nip]["changes"]
            )
        # Every change names its field, with the value delivered and the one that would go.
        for record in (*changed.values(), *locked.values()):
            assert record["changes"]
            for change in record["changes"]:
                assert change["path"].startswith("rencana_hasil_kerja[")
        # The catatan of the sandbox has no blanks around it: no penilaian changes.
        assert not [r for r in diff["records"] if r["kind"] == "assessment" and r["changes"]]
        some = next(iter(changed))
        assert some in table
        # One school: exactly that school's part of the whole.
        school = changed[some]["npsn"]
        one = _cli(
            config, "mappings", "diff", "-p", PERIOD, "--to", "2026.1", "--npsn", school, "--json"
        )
        assert one["records"] == [r for r in diff["records"] if r["npsn"] == school]
        assert "would be updated" in table

        # 2. Switch the active version and run: the changed SKPs go as updates.
        with app_for(box, state_url, sync={"mapping_version": "2026.1"}) as second:
            summary = second.engine.run(PERIOD)
            with Session(second.store.engine) as session:
                rows = {
                    r.nip: r
                    for r in session.exec(
                        select(SyncRecord).where(SyncRecord.kind == DeliveryKind.SKP)
                    )
                }
                dead = session.exec(
                    select(OutboxEntry).where(OutboxEntry.state == OutboxState.DEAD)
                ).all()
                updates = [
                    e
                    for e in ledger.query(session)
                    if e.outcome == "delivered" and e.action == "update_skp"
                ]
            after = box.target.stats()
            assert after["skp_updated"] - before["skp_updated"] == len(changed)
            assert after["skp_created"] == before["skp_created"]
            assert after["penilaian_created"] == before["penilaian_created"]
            assert summary.count("skp", "updated") == len(changed)
            assert summary.count("skp", "locked") == len(locked)
            assert summary.count("skp", "failed") == 0
            assert dead == []

            for nip in changed:
                assert rows[nip].status is RecordStatus.DELIVERED
                assert rows[nip].delivered_mapping_version == "2026.1"
            for nip in locked:
                assert rows[nip].status is RecordStatus.LOCKED, rows[nip].reason
                assert rows[nip].delivered_mapping_version == "2025.1"
                assert "by hand" in (rows[nip].reason or "")
            # The ledger says which mapping version made each update.
            assert sorted(e.nip for e in updates) == sorted(changed)
            assert {e.mapping_version for e in updates} == {"2026.1"}
            # The target holds the new bodies: two rencana hasil kerja for two indicators.
            held = {s["nip"]: s for s in box.target.skps()}
            for nip in two & set(changed):
                assert len(held[nip]["body"]["rencana_hasil_kerja"]) == 2

            # 3. Locked ones are reported, not retried: a next run sends nothing.
            again = second.engine.run(PERIOD)
            assert again.requests_sent == 0
            assert box.target.stats()["requests"] == after["requests"]

        # 4. Against the active version now, nothing is left to change but the locked ones.
        config.write_text(
            config.read_text(encoding="utf-8").replace('"2025.1"', '"2026.1"'),
            encoding="utf-8",
        )
        now = _cli(config, "mappings", "diff", "--period", PERIOD, "--to", "2026.1", "--json")
        statuses = {(r["nip"], r["status"]) for r in now["records"] if r["kind"] == "skp"}
        assert not [s for s in statuses if s[1] == "changed"]
        assert {nip for nip, status in statuses if status == "locked"} == set(locked)
