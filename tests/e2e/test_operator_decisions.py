"""An operator's decision holds (issue 12.1): a record discarded by hand is not sent by a
mapping switch, a remap, a reset or a replay of its school; only a new version of it from PMM
reopens it, and `mappings diff` says what `run` then does. Over loopback, both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from connectors.sandbox import Faults, generate_world, running_sandbox
from sync.cli import app
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"
runner = CliRunner()


def _cli(config: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["--config", str(config), *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _config(path: Path, state_url: str, pmm: str, target: str, extra: str = "") -> Path:
    path.write_text(
        f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{pmm}"\n'
        f'[target]\nbase_url = "{target}"\nrate_limit_per_s = 0\n{extra}',
        encoding="utf-8",
    )
    return path


def test_a_discard_holds_until_pmm_changes_the_record(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=8, seed=21, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    gurus = [
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/2025-1" in expected.assessment
    ]
    school = gurus[0]["sekolah"]["npsn"]
    gone, other = [r for r in gurus if r["sekolah"]["npsn"] == school][:2]
    nip, other_nip = gone["pegawai"]["nip"], other["pegawai"]["nip"]
    faults = Faults(unknown_nips={nip, other_nip})
    with running_sandbox(world, faults=faults) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--period", PERIOD, "--create-store", code=1)
        failure = f"{PERIOD}/{nip}/skp"
        assert failure in {f["id"] for f in _cli(config, "failures", "list", "--json")}
        _cli(config, "discard", failure, "--why", "pensiun sebelum periode")
        # BKN now knows both NIPs: whatever the sync sends from here on is accepted.
        faults.update({"unknown_nips": []})

        def sent_for(who: str) -> int:
            creates = box.target.stats()["creates"]
            return int(creates["skp"].get(f"{who}/2025-1", 0))

        # mappings diff agrees with what a switch then does: not compared, never "new".
        diff = _cli(config, "mappings", "diff", "--period", PERIOD, "--to", "2026.1", "--json")
        mine = [r for r in diff["records"] if r["nip"] == nip]
        assert {r["status"] for r in mine} == {"not_mapped"}, mine
        assert any("discarded" in (r["note"] or "") for r in mine)

        # 1. A mapping switch and its remap.
        switched = _config(
            tmp_path / "switched.toml",
            state_url,
            box.pmm_url,
            box.ekinerja_url,
            '[sync]\nmapping_version = "2026.1"\n',
        )
        _cli(switched, "run", "--period", PERIOD, code=1)  # the locked ones need a person
        assert sent_for(nip) == 0
        # 2. A reset: every record read again from the start.
        _cli(switched, "reset", "--period", PERIOD)
        _cli(switched, "run", "--period", PERIOD)
        assert sent_for(nip) == 0
        # 3. A replay of its school (the other failure there goes out).
        _cli(switched, "replay", "--period", PERIOD, "--npsn", school)
        assert sent_for(other_nip) == 1
        assert sent_for(nip) == 0
        # The locked ones in "Needs attention": 1.
        status = _cli(switched, "status", "--period", PERIOD, "--npsn", school, "--json", code=1)
        assert status["schools"][school].get("skp.discarded", 0) >= 1  # apart from PMM's

        # 4. Only a new version from PMM reopens it.
        world.update_record(gone["id"], lambda r: r["pegawai"].update(nama="Nama Dikoreksi"))
        _cli(switched, "run", "--period", PERIOD)
        assert sent_for(nip) == 1
