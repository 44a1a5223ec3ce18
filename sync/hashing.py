"""Canonical JSON, content hashes and idempotency keys.

An idempotency key is derived from what is sent (docs/design.md, invariant 2), never from time
or a random id, so a resend after a crash carries the same key and cannot create twice.
Canonical JSON itself lives in ``state.canonical``: the ledger's hash needs it too, and
``state`` may not import ``sync``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from state.canonical import canonical_json, canonical_json_bytes

__all__ = ["canonical_json", "canonical_json_and_hash", "content_hash", "idempotency_key"]


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical_json_bytes(value)).hexdigest()


def canonical_json_and_hash(value: Any) -> tuple[str, str]:
    """``(canonical_json(value), content_hash(value))``, the JSON written once."""
    data = canonical_json_bytes(value)
    return data.decode("utf-8"), hashlib.sha256(data).hexdigest()


def idempotency_key(
    action: str, nip: str, period: str, body_json: str, if_match: int | None = None
) -> str:
    """``eks-<action>-<sha256 of the request's identity and body>``, well under 128 chars."""
    material = "\n".join((action, nip, period, str(if_match or ""), body_json))
    digest = hashlib.sha256(material.encode("utf-8")).hexdigest()
    return f"eks-{action}-{digest}"
