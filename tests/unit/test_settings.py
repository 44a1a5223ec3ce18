"""sync.settings.load_settings: defaults, the TOML file, env overrides, and ConfigError."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sync.settings import ConfigError, load_settings

SECRET = "s3cr3t-Do-Not-Leak-42"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("EKINERJA_SYNC_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_point_at_the_sandbox() -> None:
    settings = load_settings()
    assert settings.source.base_url == "http://127.0.0.1:8701"
    assert settings.target.base_url == "http://127.0.0.1:8702"
    assert settings.state.url.startswith("sqlite:")
    assert settings.source.schema_version == 2
    assert settings.retry.max_attempts >= 1


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[state]
url = "postgresql+psycopg://sync@db/ekinerja"

[source]
base_url = "https://pmm.example"
schema_version = 1
page_size = 250

[target]
base_url = "https://ekinerja.example"
client_id = "dinas-020100"
rate_limit_per_s = 0

[retry]
max_attempts = 3

[sync]
periods = ["2025-1", "2025-2"]
schools = ["20212345"]
""",
    )
    settings = load_settings(path)
    assert settings.state.url == "postgresql+psycopg://sync@db/ekinerja"
    assert settings.source.base_url == "https://pmm.example"
    assert settings.source.schema_version == 1
    assert settings.source.page_size == 250
    assert settings.target.base_url == "https://ekinerja.example"
    assert settings.target.client_id == "dinas-020100"
    assert settings.target.rate_limit_per_s == 0
    assert settings.retry.max_attempts == 3
    assert settings.sync.periods == ["2025-1", "2025-2"]
    assert settings.sync.schools == ["20212345"]
    # What the file does not say keeps its default (no credentials: not the sandbox's).
    assert settings.source.client_id is None
    assert settings.target.timeout_s == load_settings().target.timeout_s


def test_path_may_be_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, '[target]\nclient_id = "x"\n')
    assert load_settings(str(path)).target.client_id == "x"


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[target]\nfoo = "bar"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "unknown key target.foo" in message
    assert str(path) in message


def test_unknown_section_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[targt]\nbase_url = 'x'\n")
    with pytest.raises(ConfigError, match="unknown key targt"):
        load_settings(path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[target]\ntimeout_s = "soon"\n', "target.timeout_s"),
        ("[target]\ntimeout_s = 0\n", "target.timeout_s"),
        ("[target]\nrate_limit_per_s = -1\n", "target.rate_limit_per_s"),
        ("[source]\nschema_version = 3\n", "source.schema_version"),
        ("[source]\npage_size = 1001\n", "source.page_size"),
        ("[retry]\nmax_attempts = 0\n", "retry.max_attempts"),
        ("[daemon]\nworkers = 0\n", "daemon.workers"),
        ("[daemon]\nworkers = 33\n", "daemon.workers"),
        ('[sync]\nperiods = ["2025-3"]\n', "sync.periods"),
        ('[sync]\nmapping_version = "1999.9"\n', "sync.mapping_version"),
        ('target = "not a table"\n', "target"),
    ],
)
def test_bad_value_names_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert key in message
    assert str(path) in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "[target]\nfoo = 1\ntimeout_s = -5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "target.foo" in str(caught.value)
    assert "target.timeout_s" in str(caught.value)


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[target]\nclient_id = "from-file"\nclient_secret = "file-secret"\n')
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__CLIENT_SECRET", SECRET)
    settings = load_settings(path)
    assert settings.target.client_secret is not None
    assert settings.target.client_secret.get_secret_value() == SECRET
    # The rest of the section still comes from the file.
    assert settings.target.client_id == "from-file"
    assert settings.source.credentials("source")[1] != SECRET


def test_environment_overrides_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_SOURCE__PAGE_SIZE", "42")
    assert load_settings().source.page_size == 42


def test_environment_wins_over_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__CLIENT_ID", "from-env")
    settings = load_settings(overrides={"target": {"client_id": "from-cli", "scope": "s"}})
    assert settings.target.client_id == "from-env"
    assert settings.target.scope == "s"


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[target]\ntimeout_s = 3\n")
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__TIMEOUT_S", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "EKINERJA_SYNC_TARGET__TIMEOUT_S" in message
    assert "target.timeout_s" in message


def test_unknown_environment_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__FOO", "1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "unknown key target.foo" in str(caught.value)
    assert "EKINERJA_SYNC_TARGET__FOO" in str(caught.value)


def test_config_variable_picks_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[source]\nbase_url = "https://pmm.example"\n')
    monkeypatch.setenv("EKINERJA_SYNC_CONFIG", str(path))
    assert load_settings().source.base_url == "https://pmm.example"


def test_explicit_path_wins_over_the_config_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = write(tmp_path, '[source]\nbase_url = "https://chosen.example"\n', "a.toml")
    other = write(tmp_path, '[source]\nbase_url = "https://other.example"\n', "b.toml")
    monkeypatch.setenv("EKINERJA_SYNC_CONFIG", str(other))
    assert load_settings(chosen).source.base_url == "https://chosen.example"


def test_errors_from_the_config_variable_name_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "[state]\nurl = 5\n")
    monkeypatch.setenv("EKINERJA_SYNC_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "state.url" in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_missing_file_from_the_config_variable_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "absent.toml"
    monkeypatch.setenv("EKINERJA_SYNC_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text", ["[target\n", "[target]\nbase_url = \n", "a = 1\na = 2\n"])
def test_invalid_toml_names_the_path(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(path) in str(caught.value)
    assert "TOML" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f'[target]\nclient_secret = "{SECRET}"\ntimeout_s = "soon"\n',
        f'[target]\nclient_secret = "{SECRET}"\nunknown = "{SECRET}"\n',
        f'[target]\nclient_secret = "{SECRET}\n',  # unterminated string: invalid TOML
        f"[target]\nclient_secret = {SECRET}\n",  # bare word: invalid TOML
        f'[sync]\nperiods = ["2025-3"]\n[target]\nclient_secret = "{SECRET}"\n',
    ],
)
def test_secret_never_appears_in_a_file_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EKINERJA_SYNC_TARGET__CLIENT_SECRET", SECRET),
        ("EKINERJA_SYNC_SOURCE__CLIENT_SECRET", SECRET),
    ],
)
def test_secret_never_appears_in_an_environment_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__TIMEOUT_S", "soon")
    monkeypatch.setenv("EKINERJA_SYNC_SOURCE__TIMEOUT_S", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)


def test_secret_never_appears_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f'[source]\nclient_secret = "{SECRET}"\n')
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__CLIENT_SECRET", SECRET[::-1])
    settings = load_settings(path)
    assert settings.source.client_secret.get_secret_value() == SECRET
    for text in (repr(settings), str(settings), repr(settings.target), repr(settings.source)):
        assert SECRET not in text
        assert SECRET[::-1] not in text


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.target.base_url = "http://elsewhere"  # type: ignore[misc]


# -- issue 12: credentials only for the sandbox on loopback; did you mean ---------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8702",
        "http://127.0.0.1:49152",  # the tests' and the demo's sandboxes: any loopback port
        "http://127.9.9.9:1",
        "http://localhost:8702",
        "http://[::1]:8702",
    ],
)
def test_sandbox_credentials_on_a_loopback_url(url: str) -> None:
    settings = load_settings(overrides={"target": {"base_url": url}})
    assert settings.target.credentials("target") == ("sandbox", "sandbox-secret")


@pytest.mark.parametrize(
    "url",
    ["https://ekinerja.bkn.go.id", "http://10.0.0.5:8702", "http://127.0.0.1.nip.io:8702"],
)
def test_no_secret_and_not_the_sandbox_is_a_config_error(url: str) -> None:
    settings = load_settings(overrides={"target": {"base_url": url, "client_id": "dinas"}})
    with pytest.raises(ConfigError) as caught:
        settings.target.credentials("target")
    message = str(caught.value)
    assert "target.client_secret not set" in message
    assert "EKINERJA_SYNC_TARGET__CLIENT_SECRET" in message
    assert "sandbox-secret" not in message


def test_no_credentials_for_the_source_names_both_variables() -> None:
    settings = load_settings(overrides={"source": {"base_url": "https://pmm.example"}})
    with pytest.raises(ConfigError) as caught:
        settings.source.credentials("source")
    message = str(caught.value)
    assert "EKINERJA_SYNC_SOURCE__CLIENT_ID" in message
    assert "EKINERJA_SYNC_SOURCE__CLIENT_SECRET" in message


def test_secret_from_the_environment_for_a_real_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_TARGET__CLIENT_SECRET", SECRET)
    settings = load_settings(
        overrides={"target": {"base_url": "https://ekinerja.example", "client_id": "dinas"}}
    )
    assert settings.target.credentials("target") == ("dinas", SECRET)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ('[target]\nclient_secert = "x"\n', "did you mean target.client_secret?"),
        ("[targt]\ntimeout_s = 3\n", "did you mean target?"),
        ('[daemon]\nsync_crn = ""\n', "did you mean daemon.sync_cron?"),
    ],
)
def test_unknown_key_suggests_the_closest(tmp_path: Path, text: str, suggestion: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert suggestion in str(caught.value)


def test_unknown_key_far_from_any_gets_no_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "[target]\nfoo = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "did you mean" not in str(caught.value)
