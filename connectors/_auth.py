"""OAuth2 client credentials as an ``httpx.Auth``: fetch, cache, refresh once on a 401.

The token request is yielded from ``auth_flow`` itself, so it goes through the caller's
``httpx.Client`` (its transport, timeouts and limits). One lock per auth object makes the
fetch single-flight: threads that need a token while another fetches it wait for that one.

``before_request`` (optional) is called right before every request goes on the wire: the
token request, the request itself (in ``auth_flow``) and its repeat after a 401. The
caller's rate limit counts them there, as late as it can (e-Kinerja counts every request as
it arrives); a connector knows nothing more of it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from connectors._http import (
    WallClock,
    describe_answer,
    display_url,
    endpoint_url,
    error_from_response,
    parse_answer,
    utcnow,
)
from connectors.errors import AuthError, FatalError, RecordRejected

# Refresh this long before the announced expiry (at most), to absorb the request's own
# latency and small clock differences; short-lived tokens get a tenth of their lifetime.
_EARLY_REFRESH_S = 30.0
_DEFAULT_EXPIRES_IN_S = 60.0  # when the token answer has no usable expires_in
_TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a password)


class _Secret:
    """Holds a string that must never be shown (repr, str, logs, tracebacks' locals)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class _Token:
    value: _Secret
    expires_at: float  # on the injected clock


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from ``POST <base_url>/oauth/token`` (grant_type=client_credentials).

    The token is cached until shortly before ``expires_in``; on a 401 from an API call a
    new token is fetched once and the request repeated (a second 401 is the caller's to
    classify). A refused token request raises ``AuthError``; a 5xx/429 on it the usual
    ``RetriableError``. ``before_request``: see the module.
    """

    requires_request_body = True  # the request may be sent twice (after a 401)
    requires_response_body = True  # the token answer is parsed

    def __init__(
        self,
        base_url: httpx.URL | str,
        *,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: WallClock = utcnow,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id is empty")
        if not client_secret:
            raise ValueError("client_secret is empty")
        base = httpx.URL(base_url)
        self._token_url = endpoint_url(base, _TOKEN_PATH)
        self._base_display = display_url(base)
        self._client_id = client_id
        self._secret = _Secret(client_secret)
        self._scope = scope
        self._clock = clock
        self._now = now
        self._before = before_request
        self._lock = threading.Lock()
        self._token: _Token | None = None
        # The token and its ``Authorization`` header, made once per token (``bearer``).
        self._header: tuple[_Secret, _Secret] | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_display!r}, "
            f"client_id={self._client_id!r}, client_secret='***', scope={self._scope!r})"
        )

    def before_request(self) -> None:
        """What the owner gave to run before each request (its rate limit), or nothing."""
        if self._before is not None:
            self._before()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield from self._valid_token(stale=None)
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        self.before_request()
        response = yield request
        if response.status_code != 401:
            return
        token = yield from self._valid_token(stale=token)
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        self.before_request()  # the repeat is a request of its own
        yield request

    def bearer(
        self,
        send: Callable[[httpx.Request], httpx.Response],
        *,
        stale: str | None = None,
    ) -> str:
        """The ``Authorization`` header value, prepared once per token: the cached token, or
        a fresh one fetched through ``send`` (a lean request path that does not run the
        ``auth_flow`` per request). ``stale``: the header a 401 refused."""
        cached = self._token
        header = self._header
        if (
            stale is None
            and cached is not None
            and header is not None
            and header[0] is cached.value
            and self._clock() < cached.expires_at
        ):
            return header[1].reveal()
        old = header[0] if stale is not None and header is not None else None
        if stale is not None and header is not None and header[1].reveal() != stale:
            old = None  # another thread already replaced the refused token
        flow = self._valid_token(stale=old)
        try:
            request = next(flow)
            while True:
                request = flow.send(send(request))
        except StopIteration as done:
            token: _Secret = done.value
        except BaseException:
            flow.close()  # releases the single-flight lock
            raise
        prepared = (token, _Secret(f"Bearer {token.reveal()}"))
        self._header = prepared
        return prepared[1].reveal()

    def _valid_token(
        self, *, stale: _Secret | None
    ) -> Generator[httpx.Request, httpx.Response, _Secret]:
        """The cached token, or a fresh one if there is none, it expired or it is ``stale``.

        ``stale`` is the token a 401 refused: if another thread has replaced it meanwhile,
        that newer token is used instead of fetching yet another one.
        """
        # The lock is held across the yield on purpose (single flight). If sending the
        # token request raises, httpx closes this generator and the ``with`` releases it.
        with self._lock:
            cached = self._token
            if (
                cached is not None
                and cached.value is not stale
                and self._clock() < cached.expires_at
            ):
                return cached.value
            self._token = None
            request = self._token_request()
            self.before_request()  # the token request counts as any other
            sent_at = self._clock()
            response = yield request
            value, expires_in = self._read_token(response)
            lifetime = expires_in - min(_EARLY_REFRESH_S, expires_in / 10)
            self._token = _Token(value=value, expires_at=sent_at + lifetime)
            return value

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.reveal(),
        }
        if self._scope:
            form["scope"] = self._scope
        return httpx.Request(
            "POST", self._token_url, data=form, headers={"Accept": "application/json"}
        )

    def _read_token(self, response: httpx.Response) -> tuple[_Secret, float]:
        method, path = "POST", self._token_url.path
        status = response.status_code
        if not response.is_success:
            answer = _scrub(parse_answer(response), self._secret.reveal())
            if status in (400, 401, 403):  # RFC 6749 §5.2: invalid_client/invalid_scope
                said = describe_answer({"error": answer.get("error")})
                raise AuthError(
                    f"client credentials refused by {self._base_display}"
                    + (f" ({said})" if said else "")
                    + f" [{method} {path} -> {status}]",
                    status=status,
                    answer=answer,
                )
            error = error_from_response(response, method, path, now=self._now, answer=answer)
            if isinstance(error, RecordRejected):  # e.g. 404: nothing to quarantine, a config error
                raise FatalError(error.message, status=status, answer=answer) from None
            raise error
        # Never put this body into an error: it holds the token.
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise FatalError(
                f"{method} {path} -> {status}: the answer has no access_token", status=status
            )
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise FatalError(
                f"{method} {path} -> {status}: unsupported token_type {repr(token_type)[:40]}",
                status=status,
            )
        return _Secret(token), _expires_in(body.get("expires_in"))


def _expires_in(value: object) -> float:
    if isinstance(value, bool):
        return _DEFAULT_EXPIRES_IN_S
    if isinstance(value, int | float | str):
        try:
            seconds = float(value)
        except ValueError:
            return _DEFAULT_EXPIRES_IN_S
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return _DEFAULT_EXPIRES_IN_S


def _scrub(value: Any, secret: str) -> Any:
    """``value`` with the secret masked wherever a server echoed it back."""
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {key: _scrub(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, secret) for item in value]
    return value
