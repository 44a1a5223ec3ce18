"""The notifier assembled from the settings: the one place ``[notify]`` becomes channels.

E-mail when ``notify.smtp.host`` is set; webhooks when ``notify.webhook.secret`` is (a message
is never posted unsigned). A password goes only over STARTTLS or to this machine's loopback
(``ConfigError`` otherwise: it would cross the network in clear text).
"""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from connectors.mail import SmtpFactory, SmtpMailer
from connectors.webhook import WebhookPoster
from state.store import StateStore
from sync.notify.channels import EMAIL, WEBHOOK, Channel, EmailChannel, WebhookChannel
from sync.notify.notifier import NotifyPolicy, SchoolNotifier
from sync.settings import ConfigError, Settings, is_loopback_url

__all__ = ["build_notifier", "channel_problems"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _smtp(host: str, port: int, timeout: float) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, timeout=timeout)


def channel_problems(settings: Settings) -> list[str]:
    """What keeps a channel off, in words (for the CLI's report)."""
    found = []
    if not settings.notify.smtp.host:
        found.append('e-mail is off: notify.smtp.host is ""')
    if settings.notify.webhook.secret is None:
        found.append(
            "webhooks are off: EKINERJA_SYNC_NOTIFY__WEBHOOK__SECRET is not set (a message is "
            "never posted unsigned)"
        )
    return found


@contextmanager
def build_notifier(
    settings: Settings,
    store: StateStore,
    *,
    actor: str,
    clock: Callable[[], dt.datetime] = _utcnow,
    sleep: Callable[[float], None] = time.sleep,
    smtp_connect: SmtpFactory = _smtp,
    webhook_transport: httpx.BaseTransport | None = None,
) -> Iterator[SchoolNotifier]:
    """A ``SchoolNotifier`` over ``store`` with the configured channels; the webhook client
    closes when the block ends. ``smtp_connect`` and ``webhook_transport`` are seams for tests."""
    config = settings.notify
    channels: dict[str, Channel] = {}
    smtp = config.smtp
    if smtp.host:
        password = smtp.password.get_secret_value() if smtp.password else ""
        if (
            (smtp.user or password)
            and not smtp.starttls
            and not is_loopback_url(f"smtp://{smtp.host}")
        ):
            raise ConfigError(
                f"notify.smtp: a login to {smtp.host} without STARTTLS would send the password "
                "in clear text: set notify.smtp.starttls = true"
            )
        mailer = SmtpMailer(
            smtp.host,
            smtp.port,
            starttls=smtp.starttls,
            user=smtp.user,
            password=password,
            timeout_s=smtp.timeout_s,
            connect=smtp_connect,
        )
        channels[EMAIL] = EmailChannel(mailer, smtp.sender, clock=clock)
    http: httpx.Client | None = None
    if config.webhook.secret is not None:
        http = httpx.Client(timeout=config.webhook.timeout_s, transport=webhook_transport)
        secret = config.webhook.secret.get_secret_value().encode("utf-8")
        channels[WEBHOOK] = WebhookChannel(WebhookPoster(http, secret))
    try:
        yield SchoolNotifier(
            store=store,
            channels=channels,
            actor=actor,
            policy=NotifyPolicy(
                remind_days_before=tuple(config.remind_days_before),
                attempts_per_send=config.attempts_per_send,
                max_attempts=config.max_attempts,
                retry_after_s=config.retry_after_s,
            ),
            clock=clock,
            sleep=sleep,
        )
    finally:
        if http is not None:
            http.close()
