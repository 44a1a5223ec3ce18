"""Issue 23, items 1, 9 and 10: whatever the input, a command that cannot start says so in one
line naming what to fix, exits 2, and never shows a traceback; the daemon included.

A base_url without a scheme (``api-ekinerja.bkn.go.id``) used to crash every command with a
traceback that named neither the key nor the value; under ``Restart=on-failure`` systemd
would have restarted it forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app

runner = CliRunner()
COMMANDS = {
    "status": ["status", "--period", "2026"],
    "run": ["run", "--period", "2026"],
    "daemon": ["daemon"],
    "failures": ["failures", "list"],
}


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("EKINERJA_SYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # nothing is ever made in the project's directory


def _one_line(output: str) -> str:
    """The error output: one or two lines, no traceback."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, output
    assert "Traceback" not in output
    assert 'File "' not in output
    return " ".join(lines)


# (what the config file says, what the line must name)
BAD_VALUES = [
    ('[source]\nbase_url = "api-ekinerja.bkn.go.id"\n', "source.base_url"),
    ('[target]\nbase_url = "htp:/nowhere"\n', "target.base_url"),
    ('[target]\nbase_url = "ftp://ekinerja.example"\n', "target.base_url"),
    ('[source]\nbase_url = ""\n', "source.base_url"),
    ('[target]\nbase_url = "https://"\n', "target.base_url"),
    ('[target]\nbase_url = "http://[::1"\n', "target.base_url"),
    ("[target]\nbase_url = 8702\n", "target.base_url"),
    ('[state]\nurl = "nonsense"\n', "state.url"),
    ('[state]\nurl = "mysql://sync@db/ekinerja"\n', "state.url"),
    ('[state]\nurl = "ekinerja-sync.db"\n', "state.url"),
    ("[target]\ntimeout_s = -1\n", "target.timeout_s"),
    ("[target]\nconcurrency = -4\n", "target.concurrency"),
    ("[retry]\nmax_attempts = -3\n", "retry.max_attempts"),
    ("[retry]\nmax_backoff_s = -60\n", "retry.max_backoff_s"),
    ("[daemon]\nprevious_period_grace_days = -1\n", "daemon.previous_period_grace_days"),
    ('[source]\npage_size = "many"\n', "source.page_size"),
    ('[daemon]\nworkers = "two"\n', "daemon.workers"),
    ("[web]\nport = 70000\n", "web.port"),
    ('[web]\nenabled = "yes please"\n', "web.enabled"),
    ('[sync]\nperiods = "2026"\n', "sync.periods"),
    ('[sync]\nperiods = ["2026-3"]\n', "sync.periods"),
    ("[sync]\nschools = [20212345]\n", "sync.schools"),
    ('[sync]\nmapping_versions = { semester = "2099.1" }\n', "sync.mapping_versions"),
    ('[target]\nclient_secert = "x"\n', "target.client_secert"),
    ('[targt]\nbase_url = "https://ekinerja.example"\n', "targt"),
    ('nonsense = "x"\n', "nonsense"),
    ('[daemon]\nsync_cron = "every day"\n', "daemon.sync_cron"),
    ('[daemon]\ntimezone = "Mars/Olympus"\n', "daemon.timezone"),
    ('[daemon]\nhttp_bind = "nowhere"\n', "daemon.http_bind"),
    ('[daemon]\nlog_level = "LOUD"\n', "daemon.log_level"),
    ('[web]\ntrusted_proxies = ["proxy.local"]\n', "web.trusted_proxies"),
    (
        '[target]\nbase_url = "https://ekinerja.example"\nclient_secret = "sandbox-secret"\n',
        "target.client_secret",
    ),
    ('[source]\nbase_url = "https://pmm.example"\nclient_id = "sandbox"\n', "source.client_id"),
    ("[daemon\nworkers = 2\n", "c.toml"),  # not TOML: the file is named
    ('[target]\nbase_url = "https://a"\nbase_url = "https://b"\n', "c.toml"),
    ("\x00", "c.toml"),
]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("text", "key"), BAD_VALUES)
def test_a_bad_value_is_one_line_naming_the_key(
    text: str, key: str, command: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), *COMMANDS[command]])
    assert result.exit_code == 2, result.output
    line = _one_line(result.stderr)
    assert key in line
    assert result.stdout == ""
    assert not (tmp_path / "ekinerja-sync.db").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("EKINERJA_SYNC_TARGET__BASE_URL", "api-ekinerja.bkn.go.id"),
        ("EKINERJA_SYNC_SOURCE__BASE_URL", "htp:/nowhere"),
        ("EKINERJA_SYNC_STATE__URL", "postgres//db/ekinerja"),
        ("EKINERJA_SYNC_TARGET__TIMEOUT_S", "-5"),
        ("EKINERJA_SYNC_SYNC__PERIODS", "2026"),
    ],
)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_environment_value_names_the_variable(
    variable: str, value: str, command: str
) -> None:
    result = runner.invoke(app, COMMANDS[command], env={variable: value})
    assert result.exit_code == 2, result.output
    assert variable in _one_line(result.stderr)


def test_a_url_error_names_the_value_and_what_to_write(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[source]\nbase_url = "api-ekinerja.bkn.go.id"\n', encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "status", "--period", "2026"])
    line = _one_line(result.stderr)
    assert f"source.base_url in {config}" in line
    assert "'api-ekinerja.bkn.go.id'" in line
    assert "https://api-ekinerja.bkn.go.id" in line


def test_a_state_url_error_never_shows_its_password(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["status", "--period", "2026"],
        env={"EKINERJA_SYNC_STATE__URL": "mysql://sync:Hunter2-Secret@db/ekinerja"},
    )
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert "Hunter2-Secret" not in result.output
    assert "EKINERJA_SYNC_STATE__URL" in line


def test_a_cron_the_scheduler_refuses_stops_the_daemon_before_anything(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[daemon]\nsync_cron = "99 * * * *"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["--log-console", "--config", str(config), "daemon"])
    assert result.exit_code == 2, result.output
    assert "daemon.sync_cron" in _one_line(result.stderr)
    assert not (tmp_path / "s.db").exists()


# -- the console script, as systemd runs it -------------------------------------------------


@pytest.mark.parametrize("log", ["--log-json", "--log-console"])
@pytest.mark.parametrize("command", [["daemon"], ["status", "--period", "2026"]])
def test_the_console_script_says_it_in_one_line(
    log: str, command: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[target]\nbase_url = "api-ekinerja.bkn.go.id"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EKINERJA_SYNC_")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from sync.cli import main; main()",
            log,
            "-c",
            str(config),
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert "target.base_url" in line
    if log == "--log-json":
        assert json.loads(line)["exit_code"] == 2


# -- item 9: the sandbox's credentials never go to a real target ----------------------------


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ('client_secret = "sandbox-secret"\n', {}),
        ("", {"EKINERJA_SYNC_TARGET__CLIENT_SECRET": "sandbox-secret"}),
        ('client_id = "sandbox"\n', {"EKINERJA_SYNC_TARGET__CLIENT_SECRET": "real-one-42"}),
    ],
)
@pytest.mark.parametrize(
    "url", ["https://api-ekinerja.bkn.go.id", "http://10.0.0.5:8702", "http://127.0.0.1.nip.io"]
)
def test_the_sandbox_credentials_are_refused_for_a_real_url(
    text: str, env: dict[str, str], url: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[target]\nbase_url = "{url}"\n{text}',
        encoding="utf-8",
    )
    # `ledger head` never contacts e-Kinerja: the config itself is refused, at once.
    for command in (["run", "--create-store", "--period", "2026"], ["ledger", "head"]):
        result = runner.invoke(app, ["--config", str(config), *command], env=env)
        assert result.exit_code == 2, result.output
        line = _one_line(result.stderr)
        assert "sandbox" in line
        assert "target.client_" in line
        assert not (tmp_path / "s.db").exists()


def test_the_sandbox_credentials_still_go_to_a_loopback_sandbox(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
        '[target]\nbase_url = "http://127.0.0.1:1"\nclient_id = "sandbox"\n'
        'client_secret = "sandbox-secret"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output


# -- what no input should reach: a bug is one line too; Ctrl-C is one line -------------------


def test_an_unexpected_error_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line of it, client_secret=abc123")

    monkeypatch.setattr(sys.modules["sync.cli.run"], "build_store", broken)
    result = runner.invoke(app, ["status", "--period", "2026"])
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert "unexpected RuntimeError: boom second line of it" in line
    assert "abc123" not in line
    assert "--verbose" in line


def test_ctrl_c_on_run_says_what_became_of_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["sync.cli.run"], "build_app", interrupted)
    result = runner.invoke(app, ["run", "--period", "2026"])
    assert result.exit_code == 130
    line = _one_line(result.stderr)
    assert "stopped by Ctrl-C; what was sent is recorded, run again to continue" in line


# -- item 10: the state store's hints name where the URL came from; a taken port ------------


PG_CLOSED = "postgresql+psycopg://postgres@127.0.0.1:1/ekinerja_no_such_db"


def test_postgresql_hint_names_the_variable_the_url_came_from(tmp_path: Path) -> None:
    from_env = runner.invoke(
        app, ["status", "--period", "2026"], env={"EKINERJA_SYNC_STATE__URL": PG_CLOSED}
    )
    assert from_env.exit_code == 2
    assert "start PostgreSQL, or correct EKINERJA_SYNC_STATE__URL" in _one_line(from_env.stderr)
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "{PG_CLOSED}"\n', encoding="utf-8")
    from_file = runner.invoke(app, ["--config", str(config), "status", "--period", "2026"])
    assert from_file.exit_code == 2
    assert "start PostgreSQL, or correct state.url" in _one_line(from_file.stderr)


def test_the_createdb_hint_names_the_server(pg_url: str) -> None:
    from sqlalchemy.engine import make_url

    missing = make_url(pg_url).set(database="ekinerja_test_never_created")
    url = missing.render_as_string(hide_password=False)
    result = runner.invoke(app, ["db", "check"], env={"EKINERJA_SYNC_STATE__URL": url})
    assert result.exit_code == 2, result.output
    line = _one_line(result.stderr)
    port = f"-p {missing.port} " if missing.port else ""
    assert (
        f"createdb -h {missing.host} {port}-O {missing.username} ekinerja_test_never_created"
        in line
    )
    assert "or correct EKINERJA_SYNC_STATE__URL" in line


def test_a_taken_port_is_one_line_naming_it() -> None:
    import socket

    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        ports = [str(free.getsockname()[1]), str(taken.getsockname()[1])]
        free.close()
        result = runner.invoke(
            app,
            [
                "sandbox",
                "--schools",
                "1",
                "--teachers-per-school",
                "2",
                "--pmm-port",
                ports[0],
                "--ekinerja-port",
                ports[1],
                "--smtp-port",
                "0",  # no mail sink: its fixed default port may be another sandbox's
            ],
        )
    assert result.exit_code == 2, result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{ports[1]}: Address already in use" in error[0]
    assert "cannot join thread" not in result.output
    assert "Traceback" not in result.output
