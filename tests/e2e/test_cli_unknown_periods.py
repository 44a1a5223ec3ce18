"""Issue 23, item 2: a period the state store does not know is an error that lists the ones it
knows, in every command and in JSON; never an empty answer ("No failures.", exit 0) and never
a deadline worked out from the code (``status --period 2027 --json`` said 2027-12-31).

Known periods: those PMM listed (the store keeps the listing) and those the store holds
records of.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from connectors.sandbox import generate_world, running_sandbox
from state.db import make_engine
from sync.cli import app

runner = CliRunner()
KNOWN = "known: 2024-1, 2024-2, 2025, 2026"
NIP = "198503152010012003"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EKINERJA_SYNC_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store after one sync of 2026 against the sandbox (which lists 2024-1 to 2026)."""
    folder = tmp_path_factory.mktemp("periods")
    url = f"sqlite:///{folder / 'state.db'}"
    world = generate_world(schools=2, teachers_per_school=3, seed=7)
    with running_sandbox(world) as box:
        config = folder / "config.toml"
        config.write_text(
            f'[state]\nurl = "{url}"\n[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\n',
            encoding="utf-8",
        )
        done = runner.invoke(
            app, ["--config", str(config), "run", "--create-store", "--period", "2026"]
        )
        assert done.exit_code in (0, 1), done.output
    return config, url


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--period", "2027"],
        ["status", "--period", "2027", "--json"],
        ["failures", "list", "--period", "2023"],
        ["failures", "list", "--period", "2023", "--json"],
        ["failures", "show", f"2023/{NIP}/skp"],
        ["quarantine", "list", "--period", "2099"],
        ["quarantine", "list", "--period", "2099", "--json"],
        ["replay", "--period", "2023"],
        ["replay", f"2023/{NIP}/skp", "--dry-run"],
        ["discard", f"2023/{NIP}/skp", "--why", "pensiun"],
        ["reset", "--period", "2023"],
        ["ledger", "show", "--period", "2023"],
        ["ledger", "show", "--period", "2023", "--json"],
        ["ledger", "export", "--period", "2023"],
        ["mappings", "diff", "--period", "2023", "--to", "2026.2"],
        ["reconcile", "--period", "2023"],
    ],
)
def test_an_unknown_period_is_an_error_listing_the_known_ones(
    command: list[str], synced: tuple[Path, str]
) -> None:
    config, _url = synced
    result = runner.invoke(app, ["--config", str(config), *command])
    assert result.exit_code == 2, result.output
    line = _one_line(result.stderr)
    assert "unknown period 20" in line
    assert KNOWN in line
    assert result.stdout == ""  # no empty table, no JSON that reads as "nothing there"


def test_with_log_json_the_error_is_a_json_line(synced: tuple[Path, str]) -> None:
    config, _url = synced
    result = runner.invoke(
        app, ["--log-json", "--config", str(config), "status", "--period", "2027", "--json"]
    )
    assert result.exit_code == 2
    error = json.loads(_one_line(result.stderr))
    assert error["problem"] == "period"
    assert KNOWN in error["error"]


def test_a_listed_period_without_records_is_known(synced: tuple[Path, str]) -> None:
    config, _url = synced
    result = runner.invoke(app, ["--config", str(config), "failures", "list", "-p", "2024-1"])
    assert result.exit_code == 0, result.output
    assert "No failures." in result.stdout


def test_no_deadline_is_invented(synced: tuple[Path, str]) -> None:
    """A period with records that PMM's listing (as kept) does not hold: records from before
    the store kept the listing. Its deadline is not known, and is not made up."""
    config, url = synced
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM period WHERE code = '2026'"))
    engine.dispose()
    result = runner.invoke(app, ["--config", str(config), "status", "--period", "2026", "--json"])
    assert result.exit_code in (0, 1), result.output
    status = json.loads(result.stdout)
    assert status["schools"]
    assert status["deadline"] is None
    assert "2026-12-31" not in result.stdout
    table = runner.invoke(app, ["--config", str(config), "status", "--period", "2026"])
    assert "Deadline (batas penilaian): not known" in table.stdout
    assert "2026-12-31" not in table.stdout
