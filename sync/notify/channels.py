"""The channels a message goes by: the ``Channel`` protocol (what the notifier needs) and its
two adapters over the connectors, e-mail (``connectors.mail``) and webhook
(``connectors.webhook``). A channel raises the connectors' ``message_errors``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from connectors.mail import SmtpMailer
from connectors.webhook import WebhookPoster
from sync.notify.message import Outgoing, email_message, webhook_body

__all__ = ["EMAIL", "WEBHOOK", "Channel", "EmailChannel", "WebhookChannel"]

EMAIL = "email"
WEBHOOK = "webhook"


class Channel(Protocol):
    """Sends one message; ``before_send`` is called at the point of no return."""

    @property
    def name(self) -> str: ...

    def send(self, outgoing: Outgoing, before_send: Callable[[], None]) -> str: ...


class EmailChannel:
    def __init__(
        self,
        mailer: SmtpMailer,
        sender: str,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.mailer = mailer
        self.sender = sender
        self.clock = clock

    @property
    def name(self) -> str:
        return EMAIL

    def send(self, outgoing: Outgoing, before_send: Callable[[], None]) -> str:
        message = email_message(outgoing, self.sender, self.clock())
        return self.mailer.send(message, outgoing.recipients, before_send)


class WebhookChannel:
    def __init__(self, poster: WebhookPoster) -> None:
        self.poster = poster

    @property
    def name(self) -> str:
        return WEBHOOK

    def send(self, outgoing: Outgoing, before_send: Callable[[], None]) -> str:
        if not outgoing.url:
            raise ValueError("a webhook message needs its URL")
        return self.poster.post(
            outgoing.url, webhook_body(outgoing), outgoing.message_id, before_send
        )
