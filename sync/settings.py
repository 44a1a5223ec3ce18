"""Settings: a TOML file (``--config`` or ``EKINERJA_SYNC_CONFIG``), built-in defaults that
point at the sandbox, and ``EKINERJA_SYNC_<SECTION>__<KEY>`` environment overrides (secrets).

A wrong key or value is reported as ``ConfigError`` naming the key and the file.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mappings.model import Period, PeriodKind
from mappings.versions import DEFAULT_VERSIONS, MAPPING_VERSIONS
from sync.daemon_settings import DaemonSettings, WebSettings
from sync.notify_settings import NotifySettings

__all__ = [
    "SANDBOX_CLIENT_ID",
    "ConfigError",
    "DaemonSettings",
    "Settings",
    "WebSettings",
    "is_loopback_url",
    "load_settings",
    "require_owner_only",
    "settings_payload",
]

ENV_PREFIX = "EKINERJA_SYNC_"
# The bundled sandbox servers' credentials: used only against a loopback base_url.
SANDBOX_CLIENT_ID = "sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # noqa: S105 (the sandbox's public test secret)


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and where it came from."""


def require_owner_only(path: Path, what: str, instead: str = "") -> None:
    """Refuse a file holding a secret (``what``: the setting it gives) that others than its
    owner may read or change: ``ConfigError`` naming the setting, the file and the fix. For
    the console's key file (``sync.web.keys``) and a config file holding web.secret_key."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{what} ({path}): cannot be read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} ({path}): others than its owner may read or change it; "
            f"chmod 600 {path}{instead}"
        )


class _Section(BaseModel):
    # Each field's docstring is its description: the generated configuration reference
    # (docs/reference/configuration.md) shows it, so the code is the one place it is written.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is this machine's loopback (``localhost``, 127.0.0.0/8,
    ``::1``), on any port: where the sandbox servers (and the tests' and the demo's) listen."""
    host = httpx.URL(url).host if "://" in url else ""
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(url: str) -> str:
    """A URL as it may be printed: without the password it may hold, cut short."""
    return _PASSWORD_IN_URL.sub(r"\1***@", url)[:120]


_PASSWORD_IN_URL = re.compile(r"(://[^/\s:@]*:)[^/\s@]*@")
_LOOKS_LIKE_A_HOST = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?(/\S*)?")


def _http_url(value: str) -> str:
    """``value`` when it is an absolute http(s) URL with a host, else ``ValueError`` saying
    what a URL looks like (the value shown, without a password)."""
    example = "e.g. https://api-ekinerja.bkn.go.id"
    if _LOOKS_LIKE_A_HOST.fullmatch(value):
        example = f"did you mean https://{value}?"
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or "://" not in value or url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{_shown(value)!r} is not an http(s) URL with a host ({example})")
    return value


class _ApiSection(_Section):
    """An OAuth2 API (source or target). The sandbox's credentials are the default only for
    a loopback ``base_url``; any other needs its own (``credentials``), and the sandbox's own
    are refused for it however they are given."""

    base_url: str
    client_id: str | None = None
    """OAuth2 client id. Unset: the sandbox's, and only when `base_url` is this machine's loopback
    (`localhost`, 127.0.0.0/8, `[::1]`, any port: the bundled sandbox, the demo's and the
    tests'); any other `base_url` without it stops with exit code 2 naming the variable to set,
    and the sandbox's own id (`sandbox`) is refused for it even when given on purpose.
    """
    client_secret: SecretStr | None = None
    """OAuth2 client secret, given in the environment (`..._CLIENT_SECRET`). Unset: as for
    `client_id`; the sandbox's own (`sandbox-secret`) is refused for a `base_url` that is not
    this machine.
    """

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("client_id")
    @classmethod
    def _not_the_sandbox_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        _refuse_sandbox(value == SANDBOX_CLIENT_ID, "client id", info)
        return value

    @field_validator("client_secret")
    @classmethod
    def _not_the_sandbox_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        given = value.get_secret_value() if value is not None else None
        _refuse_sandbox(given == SANDBOX_CLIENT_SECRET, "client secret", info)
        return value

    def credentials(self, section: str) -> tuple[str, str]:
        """(client_id, client_secret) to use, or ``ConfigError`` naming what to set."""
        sandbox = is_loopback_url(self.base_url)
        missing = [
            key
            for key, value in (("client_id", self.client_id), ("client_secret", self.client_secret))
            if value is None and not sandbox
        ]
        if missing:
            names = " and ".join(f"{ENV_PREFIX}{section.upper()}__{key.upper()}" for key in missing)
            raise ConfigError(
                f"{section}.{' and '.join(missing)} not set for {section}.base_url = "
                f"{self.base_url!r}: the built-in sandbox credentials only go to a sandbox on "
                f"this machine (a loopback URL); set {names} (the environment is the place for "
                "a secret)"
            )
        secret = self.client_secret.get_secret_value() if self.client_secret else None
        return self.client_id or SANDBOX_CLIENT_ID, secret or SANDBOX_CLIENT_SECRET


def _refuse_sandbox(is_sandbox: bool, what: str, info: ValidationInfo) -> None:
    """The sandbox's public credentials never go to a host that is not this machine's
    loopback, even when given on purpose (a copied test config): they would tell a real
    API who we are not."""
    base_url = info.data.get("base_url")  # declared first: validated before the credentials
    if is_sandbox and isinstance(base_url, str) and not is_loopback_url(base_url):
        raise ValueError(
            f"the bundled sandbox's {what} is refused for base_url {_shown(base_url)!r}, which "
            "is not this machine: give the credentials the dinas was issued for it"
        )


class StateSettings(_Section):
    url: str = "sqlite:///ekinerja-sync.db"
    """The state store: a SQLite file (`sqlite:///path`, relative to the working directory) or
    PostgreSQL (`postgresql+psycopg://user@host/db`, with the `postgres` extra installed; the
    database must exist). A new store is made only by `db upgrade` (or `--create-store`).
    """

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            backend = None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(
                f"{_shown(value)!r} is not a SQLite or PostgreSQL URL (e.g. "
                "sqlite:///ekinerja-sync.db or postgresql+psycopg://user@host/db)"
            )
        return value


class SourceSettings(_ApiSection):
    base_url: str = "http://127.0.0.1:8701"
    """The PMM-like API: an `http://` or `https://` URL with a host (checked when the config is
    read).
    """
    schema_version: int = Field(default=2, ge=1, le=2)
    """Which `versi_skema` to ask PMM for (1 or 2); records of both are read."""
    page_size: int = Field(default=500, ge=1, le=1000)
    """Records per page asked of PMM (1..1000)."""
    timeout_s: float = Field(default=10, gt=0)
    """Seconds per request to PMM."""


class TargetSettings(_ApiSection):
    base_url: str = "http://127.0.0.1:8702"
    """The e-Kinerja-like API: an `http://` or `https://` URL with a host."""
    scope: str = "skp.write"
    """The OAuth2 scope asked for with the target's token."""
    timeout_s: float = Field(default=5, gt=0)
    """Seconds per request to e-Kinerja."""
    concurrency: int = Field(default=16, ge=1, le=256)
    """Requests in flight to e-Kinerja at most (1..256); penilai SKPs still go first."""
    rate_limit_per_s: float = Field(default=10, ge=0)
    """Requests per second e-Kinerja sees from the whole installation at most (every worker, thread
    and token request); `0`: no limit.
    """
    breaker_failures: int = Field(default=5, ge=1)
    """The circuit breaker: after this many connections that cannot be made or requests that time
    out in a row, no request starts; what is left stays pending.
    """
    breaker_reset_s: float = Field(default=60, gt=0)
    """While the breaker is open, one request is tried again after this many seconds; an answer
    closes it.
    """


class RetrySettings(_Section):
    max_attempts: int = Field(default=8, ge=1)
    """Attempts per request, for 429, 5xx, timeouts and dropped connections only; a record that
    used them up on 429/503 alone stays pending for the next run.
    """
    initial_backoff_s: float = Field(default=0.5, ge=0)
    """The first wait between attempts; it doubles (exponential backoff with full jitter) up to
    `max_backoff_s`.
    """
    max_backoff_s: float = Field(default=60, ge=0)
    """The longest wait between attempts; after a 429/503 the wait is `Retry-After` or the backoff
    (half of it sure, half jitter), whichever is longer, so it grows while e-Kinerja keeps
    saying "later".
    """
    max_elapsed_s: float = Field(default=3600, gt=0)
    """Give up on a request after this many seconds."""


class SyncSettings(_Section):
    periods: list[str] = Field(default_factory=list)
    """Period codes to sync (`2026`, `2024-2`); empty: the periods the source lists as running, or
    whose `batas_penilaian` has not passed yet.
    """
    schools: list[str] = Field(default_factory=list)
    """NPSNs to sync; empty: every school the source serves."""
    overlap: bool = True
    """Deliver from a second process while the first still pulls the period (a whole-period
    walk; two cores used instead of one); `run --overlap/--no-overlap` decides for one run,
    `daemon --workers 1` keeps the daemon to one process.
    """
    mapping_versions: dict[PeriodKind, str] = Field(default_factory=dict)
    """The mapping version per period kind (`{ semester = "2026.2", tahunan = "2026.2" }`;
    `mappings list` shows which kinds each maps), for every period of the kind; a kind left out
    keeps, per period, the version it was first planned with (`2026.2` for a new one). A version
    that cannot map the kind is refused.
    """
    mapping_version: str | None = None
    """The older single key: it still means the semester version (`mapping_versions.semester`);
    keep `mapping_versions` only.
    """

    @field_validator("periods")
    @classmethod
    def _periods_are_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            Period.parse(code)
        return value

    @field_validator("mapping_version")
    @classmethod
    def _known_mapping(cls, value: str | None) -> str | None:
        if value is not None:
            _check_version(value, PeriodKind.SEMESTER, "")
        return value

    @field_validator("mapping_versions")
    @classmethod
    def _known_mappings(cls, value: dict[PeriodKind, str]) -> dict[PeriodKind, str]:
        for kind, name in value.items():
            _check_version(name, kind, f"{kind.value}: ")
        return value

    @model_validator(mode="after")
    def _one_semester_version(self) -> SyncSettings:
        semester = self.mapping_versions.get(PeriodKind.SEMESTER)
        if self.mapping_version is not None and semester not in (None, self.mapping_version):
            raise ValueError(
                f"mapping_version ({self.mapping_version}) and mapping_versions.semester "
                f"({semester}) disagree: keep mapping_versions only"
            )
        return self

    def mapping_for(self, kind: PeriodKind) -> str:
        """The mapping version of periods of ``kind``."""
        if kind in self.mapping_versions:
            return self.mapping_versions[kind]
        if kind is PeriodKind.SEMESTER and self.mapping_version is not None:
            return self.mapping_version
        return DEFAULT_VERSIONS[kind]

    def mapping_setting(self, kind: PeriodKind) -> str:
        """The name of the setting that picks the version of ``kind``, for messages."""
        if kind is PeriodKind.SEMESTER and (
            self.mapping_version is not None and kind not in self.mapping_versions
        ):
            return "[sync] mapping_version"
        return f"[sync] mapping_versions.{kind.value}"


def _check_version(name: str, kind: PeriodKind, where: str) -> None:
    version = MAPPING_VERSIONS.get(name)
    if version is None:
        raise ValueError(f"{where}unknown mapping version; known: {', '.join(MAPPING_VERSIONS)}")
    if not version.maps(kind):
        able = ", ".join(n for n, v in MAPPING_VERSIONS.items() if v.maps(kind))
        raise ValueError(
            f"{where}mapping version {name} maps {version.kinds_label} periods only, not "
            f"{kind.value}; versions that map {kind.value}: {able}"
        )


class Settings(BaseSettings):
    """Every setting of the service. Build it with ``load_settings``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state: StateSettings = Field(default_factory=StateSettings)
    source: SourceSettings = Field(default_factory=SourceSettings)
    target: TargetSettings = Field(default_factory=TargetSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init values): secrets come from env.
        return (env_settings, init_settings)


def _where(loc: tuple[int | str, ...], path: Path | None, environ: Mapping[str, str]) -> str:
    key = ".".join(str(p) for p in loc)
    env_name = ENV_PREFIX + "__".join(str(p) for p in loc[:2]).upper()
    # A nested key may come from a variable of its own (..._SYNC__MAPPING_VERSIONS__TAHUNAN).
    given = sorted(n for n in environ if n == env_name or n.startswith(env_name + "__"))
    if given:
        return f"{key} (from environment variable {', '.join(given)})"
    return f"{key} in {path}" if path else f"{key} (built-in defaults)"


def _did_you_mean(loc: tuple[int | str, ...]) -> str:
    """``" (did you mean target.client_secret?)"`` for a misspelt key or section, else ''."""
    model: type[BaseModel] = Settings
    for depth, part in enumerate(loc):
        known = list(model.model_fields)
        if part in known and depth < len(loc) - 1:
            annotation = model.model_fields[str(part)].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
                continue
            return ""
        close = difflib.get_close_matches(str(part), known, n=1, cutoff=0.6)
        if not close:
            return ""
        return f" (did you mean {'.'.join([*map(str, loc[:depth]), close[0]])}?)"
    return ""


def load_settings(
    path: str | Path | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the TOML file at ``path`` (or ``$EKINERJA_SYNC_CONFIG``; none: defaults).

    ``overrides`` (section -> key -> value) are for the CLI and tests; the environment
    still wins over them for the keys it names.
    """
    environ = os.environ
    if path is None and environ.get(ENV_PREFIX + "CONFIG"):
        path = environ[ENV_PREFIX + "CONFIG"]
    file_path = Path(path) if path is not None else None
    data: dict[str, Any] = {}
    if file_path is not None:
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {file_path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file_path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {file_path} cannot be read: {exc.strerror}") from None
        web = data.get("web")
        if isinstance(web, dict) and "secret_key" in web:
            # A key that others may read is no secret: as for web.secret_key_file.
            require_owner_only(
                file_path,
                "web.secret_key in the config file",
                ", or give the key in EKINERJA_SYNC_WEB__SECRET_KEY or web.secret_key_file instead",
            )
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = _where(tuple(error["loc"]), file_path, environ)
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown key {where}{_did_you_mean(tuple(error['loc']))}")
            else:
                # Never echo the value (it may be a secret); a URL's own message shows it
                # without its password.
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


def settings_payload(settings: Settings) -> dict[str, Any]:
    """The sections a delivery helper process needs (``sync.deliver_helper``), secrets in
    clear, as JSON: it is handed over a pipe, never logged nor written anywhere."""

    def clear(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {str(getattr(k, "value", k)): clear(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clear(v) for v in value]
        return value

    sections = ("state", "source", "target", "retry", "sync")
    return {name: clear(getattr(settings, name).model_dump()) for name in sections}
