"""The ``[notify]`` settings: when the schools are told their action lists, and how.

``[notify]`` (the daemon's job and the reminders), ``[notify.smtp]`` (e-mail) and
``[notify.webhook]`` (signed JSON). The defaults point at the sandbox's mail sink on this
machine, as the other defaults point at the sandbox's APIs. Secrets come from the
environment: ``EKINERJA_SYNC_NOTIFY__SMTP__PASSWORD`` and ``EKINERJA_SYNC_NOTIFY__WEBHOOK__SECRET``.
Part of ``sync.settings.Settings`` (``settings.notify``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["NotifySettings", "SmtpSettings", "WebhookSettings"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    """E-mail over SMTP; ``host = ""``: no e-mail is sent."""

    host: str = Field(
        default="127.0.0.1", description='the SMTP server; "": send no e-mail (the sandbox: 8725)'
    )
    port: int = Field(default=8725, ge=1, le=65535, description="its port (587 with STARTTLS)")
    starttls: bool = Field(
        default=False,
        description="upgrade to TLS (STARTTLS) before the login and the message; a password "
        "goes only over TLS or to this machine's loopback",
    )
    user: str = Field(default="", description='the login; "": no login')
    password: SecretStr | None = Field(
        default=None, description="give it as EKINERJA_SYNC_NOTIFY__SMTP__PASSWORD"
    )
    sender: str = Field(
        default="dinas@example.go.id", description="the From address of the messages"
    )
    timeout_s: float = Field(default=10, gt=0, description="per SMTP step")


class WebhookSettings(_Section):
    """Signed JSON to the schools whose contact has a webhook URL."""

    secret: SecretStr | None = Field(
        default=None,
        description="the HMAC-SHA256 key the messages are signed with: give it as "
        "EKINERJA_SYNC_NOTIFY__WEBHOOK__SECRET; unset: no webhook is called",
    )
    timeout_s: float = Field(default=10, gt=0, description="per request")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the secret has at least 16 characters (e.g. openssl rand -hex 32)")
        return value


class NotifySettings(_Section):
    """Telling each school what only it can fix (``schools actions --send``, the daemon)."""

    cron: str = Field(
        default="0 7 * * *",
        description="when the daemon sends the changed lists (5-field cron, in daemon.timezone); "
        '"": never',
    )
    remind_days_before: list[int] = Field(
        default_factory=lambda: [14, 7, 3, 1],
        description="days before batas_penilaian on which a school whose list is not empty is "
        "reminded, even if its list did not change (once per stage)",
    )
    attempts_per_send: int = Field(
        default=3, ge=1, le=10, description="tries of a refused message within one send"
    )
    max_attempts: int = Field(
        default=12, ge=1, description="tries of a message in all; then it is failed"
    )
    retry_after_s: float = Field(
        default=600,
        ge=0,
        description="the wait before the next send tries a refused message "
        "again; doubles each time, at most 6 hours",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if value and len(value.split()) != 5:
            raise ValueError("a cron expression has 5 fields: minute hour day month weekday")
        return value

    @field_validator("remind_days_before")
    @classmethod
    def _days(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 366 for day in value):
            raise ValueError("days before the deadline, 0 to 366")
        return sorted(set(value), reverse=True)
