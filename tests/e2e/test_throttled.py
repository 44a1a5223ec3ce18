"""`run` against a sandbox e-Kinerja that answers many requests 429 (issue 22): nothing fails,
the run says it was slowed and what it left pending, exits 4, and a later run sends the rest.
Real HTTP over loopback; the retries are scaled down (Retry-After 0.1 s, three attempts) so
that some records run out of attempts on 429s alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from connectors.sandbox import Faults, generate_world, running_sandbox
from sync.cli import app
from sync.cli.output import EXIT_THROTTLED
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"
runner = CliRunner()


def _config(path: Path, state_url: str, pmm: str, target: str) -> Path:
    path.write_text(
        f"""
[state]
url = "{state_url}"
[source]
base_url = "{pmm}"
[target]
base_url = "{target}"
rate_limit_per_s = 0
concurrency = 4
[retry]
max_attempts = 3
initial_backoff_s = 0.01
max_backoff_s = 0.05
""",
        encoding="utf-8",
    )
    return path


def test_a_run_slowed_by_429s_exits_4_says_so_and_a_later_run_sends_the_rest(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=11, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    faults = Faults(seed=3, rate_limit_share=0.7, retry_after_s=0.1)
    with running_sandbox(world, faults=faults) as box:
        config = _config(tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url)
        first = runner.invoke(
            app, ["--config", str(config), "run", "--create-store", "--period", PERIOD]
        )
        assert first.exit_code == EXIT_THROTTLED, first.output
        said = re.search(
            r"e-Kinerja asked to slow down (\d+) times \(rate limit, 429\); waited \d+ s; "
            r"(\d+) records? left pending, sent on the next run",
            first.stdout,
        )
        assert said, first.stdout
        assert int(said[1]) == box.target.stats()["faults"]["rate_limited"]
        assert int(said[2]) > 0  # 0.7^3: about a third of the SKPs ran out of attempts
        assert "error:" not in first.stderr
        assert box.target.stats()["skp_created"] < len(expected.skp)

        failures = runner.invoke(
            app, ["--config", str(config), "failures", "list", "--period", PERIOD, "--json"]
        )
        assert json.loads(failures.stdout) == [], failures.output  # not one dead letter

        # e-Kinerja takes requests again: the next run sends what was left, and exits 0.
        box.faults.update({"rate_limit_share": 0.0})
        second = runner.invoke(app, ["--config", str(config), "run", "--period", PERIOD, "--json"])
        assert second.exit_code == 0, second.output
        summary = json.loads(second.stdout)
        assert summary["throttled"]["rate_limited"] == 0
        assert summary["outcomes"]["skp.pending"] == summary["outcomes"]["skp.failed"] == 0
        stats = box.target.stats()
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment
