"""The operator's loop (issue 3): find a failure, read why, fix, replay; and the quarantine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from connectors.sandbox import Faults, SandboxWorld, generate_world, running_sandbox
from sync.cli import app
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"
runner = CliRunner()


def _config(path: Path, state_url: str, pmm: str, target: str) -> list[str]:
    path.write_text(
        f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{pmm}"\n'
        f'[target]\nbase_url = "{target}"\nrate_limit_per_s = 0\n',
        encoding="utf-8",
    )
    return ["--config", str(path)]


def _cli(config: list[str], *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*config, *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _a_guru_that_goes(world: SandboxWorld) -> dict[str, Any]:
    expected = expected_after_sync(world, PERIOD)
    return next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/2025-1" in expected.assessment
    )


def test_find_read_fix_in_pmm_replay(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=12, periods=[PERIOD])
    guru = _a_guru_that_goes(world)
    wrong = guru["pegawai"]["nip"]
    faults = Faults(unknown_nips={wrong})  # BKN does not know the NIP PMM has
    with running_sandbox(world, faults=faults) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD, code=1)

        # Find it.
        failures = _cli(config, "failures", "list", "--period", PERIOD, "--json")
        assert [f["id"] for f in failures] == [f"{PERIOD}/{wrong}/skp"]
        assert failures[0]["reason_code"] == "NIP_TIDAK_DITEMUKAN"
        by_reason = _cli(config, "failures", "list", "--reason", "nip_tidak_ditemukan", "--json")
        assert by_reason == failures

        # Read why: the request as sent and what e-Kinerja answered.
        shown = _cli(config, "failures", "show", failures[0]["id"], "--json")
        assert shown["requests"][-1]["body"]["nip"] == wrong
        assert "NIP_TIDAK_DITEMUKAN" in shown["requests"][-1]["last_answer"]
        assert [a["outcome"] for a in shown["attempts"]] == ["rejected"]  # from the ledger
        assert "NIP_TIDAK_DITEMUKAN" in shown["attempts"][0]["answer"]
        assert "NIP_TIDAK_DITEMUKAN" in _cli(config, "failures", "list")

        # Fix it in PMM (the right NIP), then replay.
        right = wrong[:15] + "999"
        world.update_record(guru["id"], lambda r: r["pegawai"].update(nip=right))
        dry = _cli(config, "replay", failures[0]["id"], "--dry-run", "--json")
        assert dry[0]["after"] is None
        assert box.target.stats()["creates"]["skp"].get(f"{right}/2025-1") is None
        replayed = _cli(config, "replay", failures[0]["id"], "--json")
        assert replayed[0]["before"] == "failed"
        assert replayed[0]["after"] == "cancelled"
        assert right in replayed[0]["reason"]
        stats = box.target.stats()
        assert stats["creates"]["skp"][f"{right}/2025-1"] == 1
        assert stats["creates"]["penilaian"][f"{right}/2025-1"] == 1
        assert f"{wrong}/2025-1" not in stats["creates"]["skp"]
        assert _cli(config, "failures", "list", "--json") == []
        # The replay is in the ledger, with who did it.
        history = _cli(config, "ledger", "show", "--nip", wrong, "--json")
        replays = [e for e in history if e["action"] == "replay"]
        assert len(replays) == 1
        assert replays[0]["actor"].startswith("operator:")


def test_fixed_on_the_national_side_then_replay_by_reason(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=13, periods=[PERIOD])
    guru = _a_guru_that_goes(world)
    nip = guru["pegawai"]["nip"]
    faults = Faults(unknown_nips={nip})
    with running_sandbox(world, faults=faults) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD, code=1)
        assert len(_cli(config, "failures", "list", "--json")) == 1
        faults.update({"unknown_nips": []})  # BKN's register was corrected
        out = _cli(config, "replay", "--period", PERIOD, "--reason", "NIP_TIDAK_DITEMUKAN")
        assert "delivered" in out
        assert box.target.stats()["creates"]["skp"][f"{nip}/2025-1"] == 1
        assert box.target.stats()["creates"]["penilaian"][f"{nip}/2025-1"] == 1
        assert _cli(config, "failures", "list", "--json") == []
        # Replaying again finds nothing to do.
        assert "Nothing to replay" in _cli(config, "replay", "--all")


def test_quarantined_record_is_validated_again_when_fixed_in_pmm(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=5, teachers_per_school=20, seed=14, periods=[PERIOD])
    defect = next(d for d in world.defects if d.kind == "wrong_indicator_family")
    with running_sandbox(world) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD, code=1)
        listed = _cli(config, "quarantine", "list", "--period", PERIOD, "--json")
        assert {q["source_id"] for q in listed} == {d.source_id for d in world.defects}
        wrong_family = _cli(
            config, "quarantine", "list", "--reason", "indicator_role_mismatch", "--json"
        )
        assert [q["source_id"] for q in wrong_family] == [
            d.source_id for d in world.defects if d.kind == "wrong_indicator_family"
        ]
        world.update_record(
            defect.source_id,
            lambda r: r["perencanaan"].update(indikator=[{"kode": "G-04", "nama": "Indikator"}]),
        )
        _cli(config, "run", "--create-store", "--period", PERIOD)
        after = _cli(config, "quarantine", "list", "--period", PERIOD, "--json")
        assert defect.source_id not in {q["source_id"] for q in after}
        assert len(after) == len(listed) - 1
        assert box.target.stats()["creates"]["skp"][f"{defect.nip}/2025-1"] == 1


def test_discard_and_reset_are_operator_actions_in_the_ledger(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=15, periods=[PERIOD])
    guru = _a_guru_that_goes(world)
    nip = guru["pegawai"]["nip"]
    with running_sandbox(world, faults=Faults(unknown_nips={nip})) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD, code=1)
        failure = f"{PERIOD}/{nip}/skp"

        refused = runner.invoke(app, [*config, "discard", failure, "--why", " "])
        assert refused.exit_code == 1
        assert "why" in refused.output
        out = _cli(
            config, "discard", failure, "--why", "retired before the period", "--actor", "ani"
        )
        assert "discarded by ani: retired before the period" in out
        assert _cli(config, "failures", "list", "--json") == []
        assert "Nothing to replay" in _cli(config, "replay", "--all")

        requests_before = box.target.stats()["requests"]
        out = _cli(config, "reset", "--period", PERIOD, "--actor", "ani")
        assert "2 school(s)" in out
        again = _cli(config, "run", "--create-store", "--period", PERIOD, "--json")
        assert again["pulled"] == len(world.records(PERIOD))  # read from the start again
        assert box.target.stats()["requests"] == requests_before  # but nothing re-sent

        entries = _cli(config, "ledger", "show", "--period", PERIOD, "--json")
        actions = [(e["action"], e["actor"]) for e in entries if e["actor"] == "operator:ani"]
        assert actions == [
            ("discard", "operator:ani"),
            ("reset", "operator:ani"),
            ("reset", "operator:ani"),
        ]
