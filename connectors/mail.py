"""Sending one e-mail over SMTP (``smtplib``), with STARTTLS and a login when configured.

``SmtpMailer.send(message, recipients, before_data)`` walks the SMTP conversation step by
step so that the point of no return is known: ``before_data`` is called right before the
``DATA`` command (the caller marks the message as going out there). What fails before it
sent nothing (``NotSentYet``, or ``Refused`` when every recipient is refused for good); a
lost connection after the data went is ``MaybeSent``; the server's answer to the data decides
the rest. The message's ``Message-ID`` (the caller's) lets a mail system drop a copy.
"""

from __future__ import annotations

import email.policy
import smtplib
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage

from connectors.message_errors import MaybeSent, NotSentYet, Refused

__all__ = ["SmtpFactory", "SmtpMailer"]

SmtpFactory = Callable[[str, int, float], smtplib.SMTP]
# SMTP's line ends (smtplib passes bytes through as they are: a bare LF is one long line).
_SMTP_POLICY = email.policy.SMTP


def _smtp(host: str, port: int, timeout: float) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, timeout=timeout)


def _reply(code: int, text: bytes | str) -> str:
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(said.split())}"[:500]


class SmtpMailer:
    """One SMTP server. ``password`` is used for the login only and never appears in an
    answer or an error. ``connect`` is a seam for tests (default: ``smtplib.SMTP``)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        starttls: bool,
        user: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        connect: SmtpFactory = _smtp,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.starttls = starttls
        self.user = user
        self._password = password
        self.timeout_s = timeout_s
        self._connect = connect
        self._tls = tls

    def send(
        self,
        message: EmailMessage,
        recipients: Sequence[str],
        before_data: Callable[[], None],
    ) -> str:
        """Send ``message`` to ``recipients``; the server's answer to the data (``250 ...``)."""
        sender = str(message["From"])
        try:
            smtp = self._connect(self.host, self.port, self.timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSentYet(f"cannot connect to {self.host}:{self.port}: {_why(exc)}") from None
        try:
            refused = self._before_data(smtp, sender, recipients)
            before_data()
            text: bytes | str
            try:
                code, text = smtp.data(message.as_bytes(policy=_SMTP_POLICY))
            except smtplib.SMTPResponseException as exc:
                code, text = exc.smtp_code, exc.smtp_error
            except (OSError, smtplib.SMTPServerDisconnected) as exc:
                raise MaybeSent(
                    f"the connection ended after the message was sent: {_why(exc)}"
                ) from None
            answer = _reply(code, text)
            if refused:
                answer += f" (refused: {', '.join(refused)})"
            if 200 <= code < 300:
                return answer
            if 400 <= code < 500:
                raise NotSentYet(answer)
            raise Refused(answer)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def _before_data(self, smtp: smtplib.SMTP, sender: str, recipients: Sequence[str]) -> list[str]:
        """EHLO, STARTTLS, login, MAIL and RCPT; the recipients refused for good."""
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self._tls or ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self._password)
            code, text = smtp.mail(sender)
            if code != 250:  # the sender or the server's set-up: the dinas's to fix
                raise NotSentYet(f"MAIL FROM: {_reply(code, text)}")
            refused: list[str] = []
            later = False
            for address in recipients:
                code, text = smtp.rcpt(address)
                if code in (250, 251):
                    continue
                if 400 <= code < 500:
                    later = True
                refused.append(f"{address}: {_reply(code, text)}")
            if len(refused) == len(recipients):
                smtp.rset()
                raise (NotSentYet if later else Refused)("; ".join(refused)[:1000])
            return refused
        except smtplib.SMTPAuthenticationError as exc:
            raise NotSentYet(
                f"the SMTP login was refused ({exc.smtp_code}): check notify.smtp.user and "
                "EKINERJA_SYNC_NOTIFY__SMTP__PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise NotSentYet(
                f"{self.host}:{self.port} offers no STARTTLS (or no login): set "
                "notify.smtp.starttls = false only for a server on this machine"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise NotSentYet(f"SMTP: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise NotSentYet(f"SMTP conversation failed: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
