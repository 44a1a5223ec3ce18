"""Issue 23, items 6 and 10: the exit code flags work for a person, and the summary counts
what an operator discarded on its own line.

A cron wrapper must tell a clean run from one that made dead letters: ``run`` that leaves new
refusals or new quarantine exits 1, as does ``status`` that shows a "Needs attention" table
(text and JSON alike). A run that adds nothing new exits 0, old dead letters or not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.sandbox import Faults, SandboxWorld, generate_world, running_sandbox
from sync.cli import app
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EKINERJA_SYNC_"):
            monkeypatch.delenv(name)


def _a_guru_that_goes(world: SandboxWorld) -> str:
    expected = expected_after_sync(world, PERIOD)
    return next(
        str(r["pegawai"]["nip"])
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    )


def _invoke(config: Path, *args: str) -> Any:
    return runner.invoke(app, ["--config", str(config), *args])


def test_run_and_status_exit_1_for_what_needs_a_person(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=12, periods=[PERIOD])
    refused = _a_guru_that_goes(world)
    with running_sandbox(world, faults=Faults(unknown_nips={refused})) as box:
        config = tmp_path / "c.toml"
        config.write_text(
            f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\n',
            encoding="utf-8",
        )
        first = _invoke(config, "run", "--create-store", "--period", PERIOD, "--json")
        assert first.exit_code == 1, first.output
        summary = json.loads(first.stdout)
        assert summary["added"]["refused"] == 1
        assert summary["added"]["quarantined"] == summary["quarantined"]
        assert "For a person: this run left 1 new failed or locked record(s)" in first.stderr

        # Nothing new: the dead letter is old news, the run is clean.
        again = _invoke(config, "run", "--period", PERIOD)
        assert again.exit_code == 0, again.output
        assert "For a person" not in again.stderr

        # status shows the dead letter in "Needs attention": 1, text and JSON alike.
        table = _invoke(config, "status", "--period", PERIOD)
        assert table.exit_code == 1, table.output
        assert "Needs attention" in table.stdout
        as_json = _invoke(config, "status", "--period", PERIOD, "--json")
        assert as_json.exit_code == 1
        assert [a["nip"] for a in json.loads(as_json.stdout)["attention"]] == [refused]

        # Discarded: on its own line, not among those cancelled in PMM.
        before = json.loads(_invoke(config, "run", "--period", PERIOD, "--json").stdout)
        done = _invoke(config, "discard", f"{PERIOD}/{refused}/skp", "--why", "pensiun 2024")
        assert done.exit_code == 0, done.output
        after_run = _invoke(config, "run", "--period", PERIOD, "--json")
        after = json.loads(after_run.stdout)
        assert after["outcomes"]["skp.discarded"] == 1
        assert after["outcomes"]["skp.cancelled"] == before["outcomes"]["skp.cancelled"]
        text = _invoke(config, "run", "--period", PERIOD).stdout
        discarded_row = next(
            line for line in text.splitlines() if "discarded by an operator" in line
        )
        assert discarded_row.split("│")[2].strip() == "1"
        status = json.loads(_invoke(config, "status", "--period", PERIOD, "--json").stdout)
        assert sum(c.get("skp.discarded", 0) for c in status["schools"].values()) == 1
