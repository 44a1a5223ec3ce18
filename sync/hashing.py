"""Canonical JSON, content hashes and idempotency keys.

An idempotency key is derived from what is sent (invariant 2 of design.md), never from time
or a random id, so a resend after a crash carries the same key and cannot create twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "content_hash", "idempotency_key", "text_hash"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spacing: equal content gives equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    return text_hash(canonical_json(value))


def text_hash(text: str) -> str:
    """SHA-256 hex of a canonical JSON text (``content_hash`` of the value it encodes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def idempotency_key(
    action: str, nip: str, period: str, body_json: str, if_match: int | None = None
) -> str:
    """``eks-<action>-<sha256 of the request's identity and body>``, well under 128 chars."""
    material = "\n".join((action, nip, period, str(if_match or ""), body_json))
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()
    return f"eks-{action}-{digest}"
