"""Issue 22, 3: the console's own limits.

- A counted login attempt is kept longer than the longest backoff: waiting once at the cap
  does not wipe the count.
- A new password has at least 12 characters and does not hold the user name.
- ``web.secret_key`` in a config file that others may read is refused, as its key file is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from state.store import StateStore
from state.users import get_user, login_throttles
from sync.bootstrap import build_store
from sync.cli import app as cli_app
from sync.settings import ConfigError, load_settings
from sync.web.auth import LoginLimiter, LoginPolicy, Passwords, password_problem
from sync.web.keys import console_key
from tests.web.conftest import FakeClock


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    made = build_store(load_settings(None, overrides={"state": {"url": state_url}}))
    try:
        yield made
    finally:
        made.engine.dispose()


# -- a counted attempt outlives the longest backoff ----------------------------------------------


def test_a_wait_at_the_cap_does_not_forget_the_count(store: StateStore, clock: FakeClock) -> None:
    """With the default policy (counts kept 15 minutes, waits capped at 15 minutes), the
    count was forgotten when a wait at the cap ended: one wait of 15 minutes bought a
    stranger 5 fresh guesses. Now the count is kept past the end of the wait, so the next
    wrong guess waits the longest again."""
    policy = LoginPolicy()
    assert policy.max_delay_s >= policy.window_s  # the case that went wrong
    limiter = LoginLimiter(store.engine, clock=clock, policy=policy)
    name, address = "ana", "198.51.100.1"
    for _ in range(policy.max_per_user):
        assert limiter.attempt(name, address) == 0
    waits = []
    for _ in range(7):
        wait = limiter.attempt(name, address)  # refused: the name waits
        waits.append(wait)
        clock.advance(wait + 1)  # the stranger comes back just after the wait
        assert limiter.attempt(name, address) == 0  # counted (and checked), then a wait again
    assert waits == [60, 120, 240, 480, 900, 900, 900]
    key = f"user:{name}"
    assert login_throttles(store.engine, [key])[key].attempts == policy.max_per_user + 7


def test_a_count_is_swept_a_window_after_its_wait_ends(store: StateStore, clock: FakeClock) -> None:
    """Kept a window past the end of its wait, not longer: a flood of names stays small."""
    policy = LoginPolicy(max_per_user=1, window_s=60, base_delay_s=600, max_delay_s=600)
    limiter = LoginLimiter(store.engine, clock=clock, policy=policy)
    assert limiter.attempt("ana", "198.51.100.1") == 0  # counted; waits 600 s
    clock.advance(600 + 59)
    assert limiter.attempt("budi", "198.51.100.2") == 0  # sweeps
    assert "user:ana" in login_throttles(store.engine, ["user:ana"])
    clock.advance(2)
    assert limiter.attempt("citra", "198.51.100.3") == 0
    assert login_throttles(store.engine, ["user:ana", "addr:198.51.100.1"]) == {}


# -- the password rules ---------------------------------------------------------------------------


def test_the_password_rules() -> None:
    assert password_problem("sebelas-kar", "dewi") == "a password has at least 12 characters"
    assert password_problem("duabelas-kar", "dewi") is None
    for with_name in ("dewi-2026-sandi", "sandi-DEWI-2026", "Sandi.Dewi.Kuat"):
        assert password_problem(with_name, "dewi") == (
            "a password may not contain the user name (dewi)"
        )
    assert password_problem("x" * 1025, "dewi") == "a password has at most 1024 characters"


def test_the_cli_refuses_a_short_password_or_one_with_the_name(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")

    def cli(*args: str, stdin: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli_app, ["--config", str(config), *args], input=stdin)
        return result.exit_code, " ".join(result.output.split())

    assert CliRunner().invoke(cli_app, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    add = ("users", "add", "dewi", "--role", "auditor", "--password-stdin")
    code, out = cli(*add, stdin="sebelas-kar\n")
    assert code == 1
    assert "at least 12 characters; nothing was changed" in out
    code, out = cli(*add, stdin="Kata-Sandi-Dewi\n")
    assert code == 1
    assert "may not contain the user name (dewi); nothing was changed" in out
    code, out = cli("users", "add", "dewi", "--role", "auditor", stdin="Dewi-2026-xyz\n" * 2)
    assert code == 1  # typed twice at the prompt: the same rules
    assert "user name" in out
    store = build_store(load_settings(config))
    try:
        assert get_user(store.engine, "dewi") is None
        assert cli(*add, stdin="duabelas-kar\n")[0] == 0
        passwd = ("users", "passwd", "dewi", "--password-stdin")
        assert cli(*passwd, stdin="baru-lagi-2026\n")[0] == 0
        code, out = cli(*passwd, stdin="dewi.dewi.dewi\n")
        assert code == 1
        assert "user name" in out
        code, out = cli(*passwd, stdin="sebelas-kar\n")
        assert code == 1
        assert "12 characters" in out
        user = get_user(store.engine, "dewi")
        assert user is not None
        assert Passwords().verify(user.password_hash, "baru-lagi-2026")
    finally:
        store.engine.dispose()


# -- web.secret_key in a config file: its owner's alone --------------------------------------------


def test_a_secret_key_in_a_config_file_others_may_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EKINERJA_SYNC_WEB__SECRET_KEY", raising=False)
    key = "rahasia-konsol-" + "0123456789abcdef" * 2
    config = tmp_path / "c.toml"
    config.write_text(
        f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[web]\nsecret_key = "{key}"\n',
        encoding="utf-8",
    )
    for mode in (0o644, 0o640, 0o604, 0o620):
        config.chmod(mode)
        result = CliRunner().invoke(cli_app, ["--config", str(config), "users", "list"])
        assert result.exit_code == 2, result.output
        said = " ".join(result.stderr.split())
        assert "web.secret_key in the config file" in said
        assert f"chmod 600 {config}" in said
        assert "EKINERJA_SYNC_WEB__SECRET_KEY" in said
        assert key not in result.output
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) <= 2  # one line (two when folded)
    # Given in the environment instead, the file still holds it: still refused.
    monkeypatch.setenv("EKINERJA_SYNC_WEB__SECRET_KEY", "k" * 32)
    with pytest.raises(ConfigError, match=r"web\.secret_key in the config file"):
        load_settings(config)
    monkeypatch.delenv("EKINERJA_SYNC_WEB__SECRET_KEY")
    config.chmod(0o600)
    assert console_key(load_settings(config)).value == key.encode()
    # A config file without the key may be read by the service's group (deploy/).
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    config.chmod(0o640)
    load_settings(config)
