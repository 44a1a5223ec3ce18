"""Issue 12: what an operator sees when something around the sync is wrong.

Credentials for a real URL, a state store that cannot be used or is not there, an NPSN the
source does not serve, e-Kinerja or PMM unreachable, ``--version``, JSON errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox import generate_world, running_sandbox
from sync.cli import app

PERIOD = "2025-1"
runner = CliRunner()
# A port nothing listens on, and a database name that exists nowhere: nothing real is touched.
CLOSED = "http://127.0.0.1:1"
PG_CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/ekinerja_no_such_db"


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("EKINERJA_SYNC_"):
            monkeypatch.delenv(name)


def _config(path: Path, text: str) -> list[str]:
    path.write_text(text, encoding="utf-8")
    return ["--config", str(path)]


def _one_error(stderr: str) -> str:
    """The error output: one or two lines, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, stderr
    assert "Traceback" not in stderr
    return " ".join(lines)


# -- item 2: the sandbox credentials only go to the sandbox ---------------------------------


def test_no_secret_for_a_non_sandbox_target_stops_before_anything(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    config = _config(
        tmp_path / "c.toml",
        f'[state]\nurl = "sqlite:///{store}"\n'
        '[target]\nbase_url = "https://ekinerja.example.go.id"\nclient_id = "dinas"\n',
    )
    result = runner.invoke(app, [*config, "run", "--create-store", "--period", PERIOD])
    assert result.exit_code == 2
    error = _one_error(result.stderr)
    assert "EKINERJA_SYNC_TARGET__CLIENT_SECRET" in error
    assert "sandbox-secret" not in result.output
    assert not store.exists()  # stopped before the store was made


def test_no_credentials_for_a_non_sandbox_source(tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.toml",
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
        '[source]\nbase_url = "https://pmm.example.go.id"\n',
    )
    result = runner.invoke(app, [*config, "run", "--create-store", "--period", PERIOD])
    assert result.exit_code == 2
    assert "EKINERJA_SYNC_SOURCE__CLIENT_SECRET" in _one_error(result.stderr)


# -- item 3: a state store that cannot be used ----------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--period", PERIOD],
        ["run", "--period", PERIOD],
        ["run", "--create-store", "--period", PERIOD],
        ["db", "upgrade"],
        ["failures", "list"],
        ["ledger", "verify"],
    ],
)
def test_postgresql_not_listening_is_one_line_exit_2(command: list[str]) -> None:
    result = runner.invoke(app, command, env={"EKINERJA_SYNC_STATE__URL": PG_CLOSED})
    assert result.exit_code == 2, result.output
    error = _one_error(result.stderr)
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in error
    assert "start PostgreSQL" in error


def test_a_database_that_does_not_exist_is_one_line_exit_2(pg_url: str) -> None:
    missing = pg_url.rsplit("/", 1)[0] + "/ekinerja_test_never_created"
    for command in (["status", "--period", PERIOD], ["db", "upgrade"], ["run", "-p", PERIOD]):
        result = runner.invoke(app, command, env={"EKINERJA_SYNC_STATE__URL": missing})
        assert result.exit_code == 2, result.output
        error = _one_error(result.stderr)
        assert 'the database "ekinerja_test_never_created" does not exist' in error
        assert "createdb" in error


def test_without_psycopg_it_says_which_extra_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; "  # as if the extra were not installed
        "from sync.cli import main; "
        "sys.argv = ['ekinerja-sync', 'status', '--period', '2025-1']; main()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKINERJA_SYNC_")}
    env["EKINERJA_SYNC_STATE__URL"] = PG_CLOSED
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'ekinerja-sync[postgres]'" in _one_error(done.stderr)


# -- item 4: no new store by accident -------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--period", PERIOD],
        ["failures", "list"],
        ["quarantine", "list"],
        ["db", "current"],
        ["run", "--period", PERIOD],
        ["daemon"],
    ],
)
def test_in_an_empty_directory_nothing_is_created(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    error = _one_error(result.stderr)
    assert f"no state store at {tmp_path / 'ekinerja-sync.db'}" in error
    assert "db upgrade" in error
    assert list(tmp_path.iterdir()) == []  # no database, no lock file


def test_db_upgrade_or_create_store_make_a_new_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "ekinerja-sync.db").exists()
    listed = runner.invoke(app, ["failures", "list"])
    assert listed.exit_code == 0
    assert "No failures." in listed.stdout


# -- items 5 and 6: against the sandbox -----------------------------------------------------


def _sandbox_config(path: Path, state_url: str, pmm: str, target: str) -> list[str]:
    return _config(
        path,
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
initial_backoff_s = 0.01
max_backoff_s = 0.05
max_attempts = 3
""",
    )


def test_e_kinerja_unreachable_keeps_records_pending_and_fails_the_run(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=5, periods=[PERIOD])
    with running_sandbox(world) as box:
        config = _sandbox_config(tmp_path / "c.toml", state_url, box.pmm_url, CLOSED)
        started = time.monotonic()
        result = runner.invoke(app, [*config, "run", "--create-store", "--period", PERIOD])
        took = time.monotonic() - started
        assert result.exit_code == 3, result.output
        assert "e-Kinerja was unreachable" in result.stdout  # the summary's line
        assert "e-Kinerja (http://127.0.0.1:1) was unreachable" in result.stderr
        assert took < 30  # the breaker stops knocking: no 82 s of retries

        status = runner.invoke(app, [*config, "status", "--period", PERIOD, "--json"])
        assert status.exit_code == 0, status.output
        counts: dict[str, int] = {}
        for school in json.loads(status.stdout)["schools"].values():
            for key, n in school.items():
                counts[key] = counts.get(key, 0) + n
        assert counts.get("skp.pending", 0) > 0
        assert not any(key.endswith(".failed") for key in counts)
        failures = runner.invoke(app, [*config, "failures", "list", "--json"])
        assert json.loads(failures.stdout) == []

        # Back up: the next run sends what waited.
        again = _sandbox_config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        done = runner.invoke(app, [*again, "run", "--period", PERIOD, "--json"])
        assert done.exit_code == 0, done.output
        summary = json.loads(done.stdout)
        assert summary["target_unreachable"] is None
        assert summary["outcomes"]["skp.new"] == counts["skp.pending"]
        assert summary["outcomes"]["skp.pending"] == 0


def test_pmm_unreachable_is_one_line_and_not_success(tmp_path: Path) -> None:
    with running_sandbox(generate_world(schools=1, teachers_per_school=2, seed=1)) as box:
        config = _sandbox_config(
            tmp_path / "c.toml", f"sqlite:///{tmp_path / 's.db'}", CLOSED, box.ekinerja_url
        )
        result = runner.invoke(app, [*config, "run", "--create-store", "--period", PERIOD])
    assert result.exit_code == 3, result.output
    assert "PMM (http://127.0.0.1:1) did not answer" in _one_error(result.stderr)


def test_an_npsn_the_source_does_not_serve_is_an_error(state_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=2, teachers_per_school=3, seed=7, periods=[PERIOD])
    known = world.schools[0]["npsn"]
    with running_sandbox(world) as box:
        config = _sandbox_config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        unknown = runner.invoke(
            app, [*config, "run", "--create-store", "-p", PERIOD, "--npsn", "99999999"]
        )
        assert unknown.exit_code == 2, unknown.output
        assert "PMM serves no school with NPSN 99999999" in _one_error(unknown.stderr)
        short = runner.invoke(app, [*config, "run", "-p", PERIOD, "--npsn", "2021234"])
        assert short.exit_code == 2
        assert "'2021234' is not an NPSN" in _one_error(short.stderr)

        ok = runner.invoke(app, [*config, "run", "--create-store", "-p", PERIOD, "--npsn", known])
        assert ok.exit_code == 0, ok.output
    # Offline commands check against what the store has read, and say so.
    for command in (
        ["status", "-p", PERIOD, "--npsn", "P1234567"],
        ["reset", "-p", PERIOD, "--npsn", "P1234567"],
        ["replay", "-p", PERIOD, "--npsn", "P1234567"],
    ):
        result = runner.invoke(app, [*config, *command])
        assert result.exit_code == 2, (command, result.output)
        error = _one_error(result.stderr)
        assert "NPSN P1234567" in error
        assert "checked against the state store" in error
    assert runner.invoke(app, [*config, "status", "-p", PERIOD, "--npsn", known]).exit_code == 0


# -- items 7 and 9: --version, JSON errors --------------------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ekinerja-sync {version('ekinerja-sync')}"


@pytest.mark.parametrize(
    ("config_text", "command", "words"),
    [
        ("[target]\nconcurency = 3\n", ["status", "-p", PERIOD], "did you mean target.concurrency"),
        ("", ["status", "-p", PERIOD], "no state store at"),
        ("", ["daemon"], "no state store at"),
        ('[state]\nurl = "sqlite:///x.db"\n', ["run", "-p", "2025-3"], "2025-3"),
        (
            '[target]\nbase_url = "https://ekinerja.example"\nclient_id = "d"\n',
            ["run", "--create-store", "-p", PERIOD],
            "EKINERJA_SYNC_TARGET__CLIENT_SECRET",
        ),
    ],
)
def test_log_json_makes_start_up_errors_json_lines(
    config_text: str,
    command: list[str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path / "c.toml", config_text)
    result = runner.invoke(app, ["--log-json", *config, *command])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    error = json.loads(lines[0])
    assert error["level"] == "error"
    assert error["exit_code"] == 2
    assert words in error["error"]
    assert {"event", "timestamp"} <= set(error)


def test_a_schema_behind_is_a_json_line_too(state_url: str, tmp_path: Path) -> None:
    """An empty database (no schema): the same one line, JSON with --log-json."""
    result = runner.invoke(
        app, ["--log-json", "status", "-p", PERIOD], env={"EKINERJA_SYNC_STATE__URL": state_url}
    )
    if state_url.startswith("sqlite"):  # no file: never created by a read
        assert "no state store at" in json.loads(result.stderr)["error"]
    else:
        assert "ekinerja-sync db upgrade" in json.loads(result.stderr)["error"]
    assert result.exit_code == 2


# -- minor items: reason codes and run ids in the logs; failures in WIB ---------------------


def test_logs_carry_reason_code_and_run_id_and_failures_show_wib(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from connectors.sandbox import Faults
    from sync.operations.ledger_export import WIB

    from .helpers import app_for

    world = generate_world(schools=2, teachers_per_school=10, seed=12, periods=[PERIOD])
    assert world.defects
    nip = next(r["pegawai"]["nip"] for r in world.records(PERIOD) if r["pegawai"]["jenis_ptk"])
    state_url = f"sqlite:///{tmp_path / 's.db'}"
    with running_sandbox(world, faults=Faults(unknown_nips={nip})) as box:
        with capture_logs() as logs, app_for(box, state_url) as application:
            summary = application.engine.run(PERIOD)
        config = _sandbox_config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
    rejected = [e for e in logs if e["event"] == "deliver.rejected"]
    assert rejected
    assert {e["reason_code"] for e in rejected} == {"NIP_TIDAK_DITEMUKAN"}
    quarantined = [e for e in logs if e["event"] == "record.quarantined"]
    assert quarantined  # the sandbox's deliberately bad records
    assert {e["run_id"] for e in quarantined} == {summary.run_id}

    listed = json.loads(runner.invoke(app, [*config, "failures", "list", "--json"]).stdout)
    failure = next(f["id"] for f in listed if f["reason_code"] == "NIP_TIDAK_DITEMUKAN")
    shown = runner.invoke(app, [*config, "failures", "show", failure])
    assert shown.exit_code == 0, shown.output
    assert "time (WIB)" in shown.stdout
    attempts = json.loads(
        runner.invoke(app, [*config, "failures", "show", failure, "--json"]).stdout
    )["attempts"]
    from datetime import datetime

    moment = datetime.fromisoformat(attempts[-1]["at"]).astimezone(WIB)
    assert moment.strftime("%Y-%m-%d %H:%M:%S") in shown.stdout


def test_the_daemon_keeps_records_pending_while_e_kinerja_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from sync.logs import configure_logging
    from sync.service.daemon import Daemon
    from sync.settings import load_settings

    from .test_daemon import _daemon_section, _daemon_thread

    world = generate_world(schools=1, teachers_per_school=4, seed=2, periods=[PERIOD])
    configure_logging(json=True, level="INFO")
    with running_sandbox(world) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": CLOSED, "breaker_failures": 2, "breaker_reset_s": 3600},
                "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.05},
                "sync": {"periods": [PERIOD]},
                "daemon": _daemon_section(sync_cron="", retry_every_s=3600),
            },
        )
        daemon = Daemon(settings, create_store=True)
        with _daemon_thread(daemon):
            daemon.run_job("sync")
            daemon.run_job("retry")  # the breaker is open: nothing is tried
            metrics = httpx.get(f"{daemon.health_url}/metrics").text
    assert 'ekinerja_sync_job_runs_total{job="sync",result="error"} 1.0' in metrics
    assert 'ekinerja_sync_job_runs_total{job="retry",result="error"} 1.0' in metrics
    assert f'ekinerja_sync_records{{kind="skp",period="{PERIOD}",status="pending"}}' in metrics
    assert 'status="failed"' not in metrics
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    failed = [e for e in events if e["event"] == "job.failed"]
    assert failed
    assert all("e-Kinerja unreachable" in e["error"] for e in failed)


def test_e_kinerja_that_keeps_timing_out_keeps_records_pending(tmp_path: Path) -> None:
    from connectors.sandbox import Faults

    world = generate_world(schools=1, teachers_per_school=6, seed=5, periods=[PERIOD])
    with running_sandbox(world, faults=Faults(slow_share=1.0, slow_s=1.5)) as box:
        config = _sandbox_config(
            tmp_path / "c.toml", f"sqlite:///{tmp_path / 's.db'}", box.pmm_url, box.ekinerja_url
        )
        result = runner.invoke(
            app,
            [*config, "run", "--create-store", "--period", PERIOD, "--json"],
            env={"EKINERJA_SYNC_TARGET__TIMEOUT_S": "0.2"},
        )
        assert result.exit_code == 3, result.output
        summary = json.loads(result.stdout)
        assert "timed out" in summary["target_unreachable"]
        assert summary["outcomes"]["skp.failed"] == 0
        assert summary["outcomes"]["skp.pending"] > 0


def test_no_answer_however_often_tried_is_not_a_failure(tmp_path: Path) -> None:
    """Dropped connections (no answer, and not an outage for the breaker): after the retries
    the record stays pending, and the run says e-Kinerja could not be reached."""
    from connectors.sandbox import Faults

    from .helpers import app_for

    world = generate_world(schools=1, teachers_per_school=3, seed=5, periods=[PERIOD])
    with (
        running_sandbox(world, faults=Faults(drop_after_store_share=1.0)) as box,
        app_for(box, f"sqlite:///{tmp_path / 's.db'}", retry={"max_attempts": 2}) as application,
    ):
        summary = application.engine.run(PERIOD)
        assert application.engine.deliverer.sender.breaker.state == "closed"
    assert summary.target_unreachable is not None
    assert summary.count("skp", "failed") == 0
    assert summary.count("skp", "pending") > 0


def test_replay_with_pmm_unreachable_is_one_line(tmp_path: Path) -> None:
    from connectors.sandbox import Faults

    world = generate_world(schools=1, teachers_per_school=4, seed=12, periods=[PERIOD])
    nip = next(r["pegawai"]["nip"] for r in world.records(PERIOD))
    state_url = f"sqlite:///{tmp_path / 's.db'}"
    with running_sandbox(world, faults=Faults(unknown_nips={nip})) as box:
        config = _sandbox_config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        assert runner.invoke(app, [*config, "run", "--create-store", "-p", PERIOD]).exit_code == 1
        config = _sandbox_config(tmp_path / "c.toml", state_url, CLOSED, box.ekinerja_url)
        result = runner.invoke(app, [*config, "replay", "--all"])
    assert result.exit_code == 3, result.output
    assert "PMM (http://127.0.0.1:1) did not answer" in _one_error(result.stderr)
