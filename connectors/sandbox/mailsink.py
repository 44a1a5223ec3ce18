"""The sandbox's mail sink: a real SMTP server (aiosmtpd) on loopback that keeps every message
it accepts, in memory and as a ``.eml`` file in a folder (open one with any mail program).

Switches for trials and tests, changeable while it runs:

- ``refuse``: an SMTP reply (``"451 4.3.0 try again later"``) given to every ``MAIL FROM``:
  a server that refuses, nothing accepted;
- ``reply_delay_s``: accept and keep a message, then wait this long before answering ``250``
  (a sender killed in that wait sent it, and never heard so).

``running_mail_sink(folder)`` serves it for a ``with`` block (port 0: a free port).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailSink", "ReceivedMail", "running_mail_sink"]


@dataclass(frozen=True)
class ReceivedMail:
    """A message the sink accepted: the envelope, the message, and its file (if any)."""

    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes
    path: Path | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return str(body.get_content()) if body is not None else ""


class MailSink:
    """What the SMTP server accepted (thread-safe), and its switches."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.refuse: str | None = None
        self.reply_delay_s = 0.0
        self.host = ""
        self.port = 0
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to(self, address: str) -> list[ReceivedMail]:
        """The messages accepted for ``address``."""
        return [m for m in self.received if address in m.recipients]

    # -- aiosmtpd's handler hooks ---------------------------------------------------------

    async def handle_MAIL(  # aiosmtpd calls it by this name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.refuse:
            return self.refuse
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd calls it by this name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        with self._lock:
            number = len(self._received) + 1
            path = None
            if self.folder is not None:
                taken = len(list(self.folder.glob("*.eml")))
                digest = hashlib.sha256(raw).hexdigest()[:10]
                path = self.folder / f"{taken + 1:04d}-{digest}.eml"
                path.write_bytes(raw)
            self._received.append(
                ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw, path)
            )
        if self.reply_delay_s > 0:
            await asyncio.sleep(self.reply_delay_s)
        return f"250 2.0.0 accepted as message {number}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_mail_sink(
    folder: Path | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[MailSink]:
    """The sink, accepting mail on ``host:port`` for the ``with`` block."""
    sink = MailSink(folder)
    chosen = port or _free_port(host)
    controller = Controller(sink, hostname=host, port=chosen, ready_timeout=10)
    controller.start()
    sink.host, sink.port = host, chosen
    try:
        yield sink
    finally:
        controller.stop()
