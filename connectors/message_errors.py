"""The errors of the message channels (SMTP, webhook), by what the sender does next.

Translated once, where they enter (``connectors.mail``, ``connectors.webhook``); nothing above
catches ``smtplib`` or ``httpx`` exceptions::

    MessageError
     ├── NotSentYet     nothing went out (no connection, a refusal before the message, a
     │                  busy server): send the same message again later
     ├── Refused        the other side refused this message for good (an unknown mailbox, a
     │                  4xx of the webhook): retrying cannot help; fix the contact
     └── MaybeSent      the message left, and the answer was lost (the connection dropped
                        after the data was sent): it may have arrived; never resent
                        automatically, so nobody gets it twice

Every error carries ``answer``: what the other side said (an SMTP reply, an HTTP status and
body), never a secret.
"""

from __future__ import annotations

__all__ = ["MaybeSent", "MessageError", "NotSentYet", "Refused"]


class MessageError(Exception):
    """A message did not (certainly) arrive; ``answer`` says what the other side said."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class NotSentYet(MessageError):
    """Nothing went out: the same message may be sent again."""


class Refused(MessageError):
    """Refused for good: sending it again cannot help."""


class MaybeSent(MessageError):
    """It left and the answer was lost: it may have arrived."""
