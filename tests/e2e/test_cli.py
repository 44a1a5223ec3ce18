"""The command line against the sandbox: config file, run, status, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from connectors.sandbox import generate_world, running_sandbox
from sync.cli import app

PERIOD = "2025-1"
runner = CliRunner()


def _config(
    path: Path, state_url: str, pmm: str, target: str, secret: str = "sandbox-secret"
) -> Path:
    path.write_text(
        f"""
[state]
url = "{state_url}"
[source]
base_url = "{pmm}"
[target]
base_url = "{target}"
client_secret = "{secret}"
rate_limit_per_s = 0
""",
        encoding="utf-8",
    )
    return path


def test_run_then_status(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=4, periods=[PERIOD])
    with running_sandbox(world) as box:
        config = _config(tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url)
        result = runner.invoke(
            app, ["--config", str(config), "run", "--create-store", "--period", PERIOD, "--json"]
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["outcomes"]["skp.new"] == box.target.stats()["skp_created"] > 0

        result = runner.invoke(
            app, ["--config", str(config), "status", "--period", PERIOD, "--json"]
        )
        assert result.exit_code == 0, result.output
        status = json.loads(result.stdout)
        delivered = sum(c.get("skp.delivered", 0) for c in status["schools"].values())
        assert delivered == summary["outcomes"]["skp.new"]
        assert set(status["schools"]) <= {s["npsn"] for s in world.schools}
        assert status["deadline"]["deadline"] == "2025-06-30"
        waiting = sum(c.get("assessment.waiting", 0) for c in status["schools"].values())
        assert sum(s["missing"] for s in status["deadline"]["schools"]) >= waiting

        late = runner.invoke(
            app, ["--config", str(config), "status", "--period", PERIOD, "--as-of", "2025-06-25"]
        )
        assert late.exit_code == 0
        assert "5 days left" in late.stdout

        table = runner.invoke(app, ["--config", str(config), "status", "--period", PERIOD])
        assert table.exit_code == 0
        assert world.schools[0]["npsn"] in table.stdout

        # A period neither listed by PMM nor in the store is an error, not an empty view.
        empty = runner.invoke(app, ["--config", str(config), "status", "--period", "2030-2"])
        assert empty.exit_code == 2
        assert "unknown period 2030-2; known: 2025-1" in empty.stderr


def test_bad_config_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[target]\nconcurency = 3\n[retry]\nmax_attempts = "many"\n', "utf-8")
    result = runner.invoke(app, ["--config", str(config), "status", "--period", PERIOD])
    assert result.exit_code == 2
    assert "unknown key target.concurency" in result.output
    assert "retry.max_attempts" in result.output
    assert str(config) in result.output.replace("\n", "")


def test_refused_credentials_stop_the_run_without_leaking_the_secret(
    tmp_path: Path,
) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=2, periods=[PERIOD])
    secret = "very-secret-value-123"
    with running_sandbox(world) as box:
        config = _config(
            tmp_path / "config.toml",
            f"sqlite:///{tmp_path / 's.db'}",
            box.pmm_url,
            box.ekinerja_url,
            secret=secret,
        )
        result = runner.invoke(
            app, ["--config", str(config), "run", "--create-store", "--period", PERIOD]
        )
        assert result.exit_code == 1
        assert "refused" in result.output
        assert secret not in result.output
        assert box.target.stats()["skp_created"] == 0


def test_bad_period_is_refused() -> None:
    result = runner.invoke(app, ["status", "--period", "2025-3"])
    assert result.exit_code == 2
    assert "2025-3" in result.output
