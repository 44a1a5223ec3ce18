"""Posting one message to a school's webhook: JSON, signed with HMAC-SHA256.

The receiver checks ``X-Ekinerja-Sync-Signature: sha256=<hex>``, the HMAC-SHA256 under the
shared secret of ``<timestamp>.<body>`` (``X-Ekinerja-Sync-Timestamp``, Unix seconds, against
replays), and may drop a message whose ``X-Ekinerja-Sync-Message-Id`` it has seen (the same
id on a resend). ``sign`` is the one place the signature is made (tests check with it).

``before_send`` is called right before the request leaves. A connection that cannot be made
sent nothing (``NotSentYet``); one lost after the request went is ``MaybeSent``; 2xx is
accepted; 408, 429 and 5xx mean "later" (``NotSentYet``); any other 4xx is ``Refused``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx

from connectors.message_errors import MaybeSent, NotSentYet, Refused

__all__ = ["SIGNATURE_HEADER", "WebhookPoster", "sign"]

SIGNATURE_HEADER = "X-Ekinerja-Sync-Signature"
TIMESTAMP_HEADER = "X-Ekinerja-Sync-Timestamp"
MESSAGE_ID_HEADER = "X-Ekinerja-Sync-Message-Id"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class WebhookPoster:
    """Posts signed JSON with an injected ``httpx.Client``; ``clock`` gives Unix seconds."""

    def __init__(
        self,
        client: httpx.Client,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret to sign with")
        self._client = client
        self._secret = secret
        self._clock = clock

    def post(self, url: str, body: bytes, message_id: str, before_send: Callable[[], None]) -> str:
        """POST ``body`` (JSON) to ``url``; the answer in words (``200 ...``)."""
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            TIMESTAMP_HEADER: timestamp,
            MESSAGE_ID_HEADER: message_id,
        }
        before_send()
        try:
            answer = self._client.post(url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            raise NotSentYet(f"cannot connect: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise MaybeSent(f"no answer after the message was sent: {type(exc).__name__}") from None
        said = f"{answer.status_code} {' '.join(answer.text.split())[:300]}".strip()
        if answer.is_success:
            return said
        if answer.status_code in (408, 429) or answer.status_code >= 500:
            raise NotSentYet(said)
        raise Refused(said)
