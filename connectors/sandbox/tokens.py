"""The sandbox servers' OAuth2 client-credentials tokens: issued with a lifetime, checked on
every API request, revoked all at once (the token-expiry fault, ``/_sandbox/tokens/revoke``).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["Grant", "TokenRegistry", "token_response", "unauthorized"]


@dataclass(frozen=True)
class Grant:
    """What a valid access token allows."""

    client_id: str
    scopes: frozenset[str]
    expires_at: float


class TokenRegistry:
    """OAuth2 client-credentials tokens with a lifetime; revoking them all is the expiry fault."""

    def __init__(
        self,
        *,
        ttl_s: int,
        client_id: str,
        client_secret: str,
        known_scopes: frozenset[str] = frozenset(),
        default_scopes: frozenset[str] = frozenset(),
    ) -> None:
        self.ttl_s = ttl_s
        self._client_id = client_id
        self._client_secret = client_secret
        self._known_scopes = known_scopes
        self._default_scopes = default_scopes
        self._tokens: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        """The token endpoint's (status, JSON body) for a form-encoded request."""
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if not (
            hmac.compare_digest(client_id.encode(), self._client_id.encode())
            and hmac.compare_digest(secret.encode(), self._client_secret.encode())
        ):
            return 401, {"error": "invalid_client"}
        requested = frozenset(form.get("scope", "").split())
        if self._known_scopes and not requested <= self._known_scopes:
            return 400, {"error": "invalid_scope"}
        scopes = requested or self._default_scopes
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            # Forget expired tokens now and then so the table stays small.
            for old in [t for t, g in self._tokens.items() if g.expires_at <= now]:
                del self._tokens[old]
            self._tokens[token] = Grant(client_id, scopes, now + self.ttl_s)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.ttl_s,
        }
        if scopes:
            body["scope"] = " ".join(sorted(scopes))
        return 200, body

    def check(self, authorization: str | None) -> Grant | None:
        """The grant of a valid, unexpired ``Bearer`` token, else None."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self._lock:
            grant = self._tokens.get(token.strip())
        if grant is None or grant.expires_at <= time.monotonic():
            return None
        return grant

    def revoke_all(self) -> int:
        """Expire every token now (the client must fetch a new one); returns how many."""
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count


async def token_response(request: Request, registry: TokenRegistry) -> JSONResponse:
    """``POST /oauth/token``: form-encoded client credentials (or HTTP Basic)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return JSONResponse(
            {"error": "invalid_request", "error_description": "form-encoded body expected"},
            status_code=400,
        )
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
    basic: tuple[str, str] | None = None
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        user, _, password = decoded.partition(":")
        basic = (urllib.parse.unquote(user), urllib.parse.unquote(password))
    status, body = registry.issue(form, basic)
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def unauthorized() -> JSONResponse:
    """The answer to a missing, unknown or expired access token."""
    return JSONResponse(
        {"error": "invalid_token", "error_description": "token tidak dikenal atau kedaluwarsa"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )
