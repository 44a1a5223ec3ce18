"""Every delivery line of a `run` from the command line names its job (issue 23 item 5): the
dinas IT guide (docs/dinas-it/service.md, Logs) promises `job` on every event, and
`jq 'select(.job=="run")'` must find the `deliver.*` lines, which are written on the sending
threads."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from connectors.sandbox import generate_world, running_sandbox
from sync.cli import app

PERIOD = "2025-1"


def test_every_delivery_line_of_a_run_carries_job_run(tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=4, periods=[PERIOD])
    with running_sandbox(world) as box:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[state]\nurl = "sqlite:///{tmp_path / "state.db"}"\n'
            f'[source]\nbase_url = "{box.pmm_url}"\n'
            f'[target]\nbase_url = "{box.ekinerja_url}"\nrate_limit_per_s = 0\nconcurrency = 4\n',
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            app,
            [
                "--config",
                str(config),
                "--verbose",
                "--log-json",
                "run",
                "--create-store",
                "--period",
                PERIOD,
            ],
        )
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    delivery = [e for e in events if e["event"].startswith("deliver.")]
    assert any(e["event"] == "deliver.ok" for e in delivery)
    assert [e for e in delivery if e.get("job") != "run"] == []
    assert {e.get("job") for e in events if e["event"].startswith("run.")} == {"run"}
