"""The ``[daemon]`` and ``[web]`` settings: what runs as the service, its schedules, stop,
endpoint and logs, and the web console it may serve. Part of ``sync.settings.Settings``
(``settings.daemon``, ``settings.web``); apart from it so that neither module passes 500 lines.
Each field's docstring is its description in the generated configuration reference.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["DaemonSettings", "WebSettings"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class WebSettings(_Section):
    """The web console (``ekinerja-sync web``; inside the daemon when ``enabled``)."""

    enabled: bool = False
    """`true`: the daemon serves the web console too (in a thread, next to `/healthz`)."""
    host: str = "127.0.0.1"
    """Where the console listens (`ekinerja-sync web --host` wins); beyond loopback, put it behind
    HTTPS and give it a key.
    """
    port: int = Field(default=8080, ge=0, le=65535)
    """The console's port (`ekinerja-sync web --port` wins)."""
    session_max_age_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """A console login lasts this many seconds at most (60..604800), then the user logs in again."""
    session_idle_s: int = Field(default=1800, ge=60, le=7 * 24 * 3600)
    """A console session ends after this many seconds without a request (60..604800)."""
    secret_key: SecretStr | None = None
    """The console's key (keys the stored session ids, the CSRF tokens and the device cookies), at
    least 32 characters; give it as `EKINERJA_SYNC_WEB__SECRET_KEY`. Never kept in the state
    store; in the config file only when the file is readable by its owner alone.
    """
    secret_key_file: str = ""
    """A file holding the key instead: made (0600, a random key) on first start when absent; a file
    others may read is refused. Neither set: a key for the process only, and the console serves
    on loopback only.
    """
    trusted_proxies: list[str] = Field(default_factory=list)
    """IPs or networks of reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are
    believed (e.g. `["127.0.0.1"]`); empty: the client is the connection's peer.
    """

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("the key has at least 32 characters (e.g. openssl rand -hex 32)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{item[:60]!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return [item.strip() for item in value]


class DaemonSettings(_Section):
    """``ekinerja-sync daemon``: its schedules, stop, endpoint and logs (sync/daemon.py)."""

    timezone: str = "Asia/Jakarta"
    """Time zone of the cron expressions and of the period deadlines."""
    sync_cron: str = "*/30 6-20 * * *"
    """When the daemon syncs the active periods (5-field cron); `""`: never."""
    sync_every_s: float = Field(default=0, ge=0)
    """Above 0: sync every N seconds from start-up instead of the cron (trials, tests)."""
    retry_every_s: float = Field(default=60, gt=0)
    """How often, in seconds, the daemon sends again what is due (without reading PMM)."""
    reconcile_cron: str = "0 2 * * *"
    """When the daemon reconciles with e-Kinerja (5-field cron); `""`: never."""
    previous_period_grace_days: int = Field(default=0, ge=0, le=183)
    """Days a period is still synced after its `batas_penilaian` (with `sync.periods` empty),
    0..183.
    """
    http_bind: str = "127.0.0.1:9464"
    """Address (`host:port`) of `/healthz` and `/metrics`; `""`: no endpoint."""
    workers: int = Field(default=1, ge=1, le=32)
    """Worker processes of the daemon (1..32; more than 1 needs PostgreSQL); `daemon --workers N`
    wins.
    """
    stop_grace_s: float = Field(default=30, gt=0)
    """On SIGTERM/SIGINT, how long in seconds in-flight work may take to end (keep systemd's
    `TimeoutStopSec` above it).
    """
    log_format: Literal["auto", "json", "console"] = "auto"
    """`json`, `console`, or `auto` (JSON unless stderr is a terminal); `--log-json` / `--log-
    console` win.
    """
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """`DEBUG`, `INFO`, `WARNING` or `ERROR` (`-v` gives `DEBUG`)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone (e.g. Asia/Jakarta)") from None
        return value

    @field_validator("sync_cron", "reconcile_cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        # Checked in full (ranges, names) when the daemon declares its jobs.
        if value and len(value.split()) != 5:
            raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
        return value

    @field_validator("http_bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or int(port) > 65535:
                raise ValueError('expected "host:port", e.g. "127.0.0.1:9464" (or "" for none)')
        return value

    @property
    def http_host(self) -> str:
        return self.http_bind.rpartition(":")[0].strip("[]")

    @property
    def http_port(self) -> int:
        return int(self.http_bind.rpartition(":")[2])
