"""Shared HTTP plumbing: the one place where httpx answers and exceptions become our errors.

Status classification lives here and only here (see ``connectors.errors`` for the tree)::

    2xx                        ok
    401                        AuthError (the auth flow has already refreshed the token once)
    403                        AuthError
    408, 429, 500, 502, 504    RetriableError
    503                        TargetPaused with Retry-After, RetriableError without
    other 5xx                  RetriableError (501 and 505: FatalError, no later try can help)
    409                        Conflict
    412                        PreconditionFailed (the answer carries the current ``versi``)
    other 4xx                  RecordRejected
    3xx, 1xx                   FatalError (we never follow redirects: the base URL is wrong)

httpx timeouts and connections that cannot be made (refused, no route, unknown host) become
Unreachable (a RetriableError that also counts as an outage); other transport errors (a
dropped connection, a peer that closed the stream) RetriableError; raised ``from`` the httpx
exception. Messages name the method,
the path, the status and what the other side said (kode/pesan or error/detail); never a
token or a secret, and never the query string.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from connectors.errors import (
    AuthError,
    Conflict,
    FatalError,
    PreconditionFailed,
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
    Unreachable,
)

Call = Callable[[Callable[[], httpx.Response]], httpx.Response]
"""Wraps one HTTP request (e.g. a tenacity ``Retrying``); never a whole paged walk."""

WallClock = Callable[[], datetime]
"""Returns the current time, tz-aware; only used to read a ``Retry-After`` HTTP date."""

RETRIABLE_STATUSES = frozenset({408, 429, 500, 502, 504})
_HOPELESS_5XX = frozenset({501, 505})
# Keys of the answer worth naming in a message: the target says kode/pesan, the source
# error/detail, a 409/412 carries the current id_skp/versi.
_ANSWER_KEYS = ("kode", "pesan", "error", "detail", "id_skp", "versi")
_MAX_TEXT = 300


def call_once(request: Callable[[], httpx.Response]) -> httpx.Response:
    """The default ``Call``: send the request once, no retries."""
    return request()


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(value: str | None, *, reference: datetime) -> float | None:
    """``Retry-After`` as seconds from ``reference``: delay-seconds or an HTTP date.

    Returns None when the header is absent or unreadable; a date in the past gives 0.0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the local zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def retry_after_s(response: httpx.Response, *, now: WallClock = utcnow) -> float | None:
    """The response's ``Retry-After`` in seconds.

    An HTTP date is measured against the response's own ``Date`` header when it has one,
    so a skewed local clock does not stretch or shrink the wait; else against ``now()``.
    """
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    reference: datetime | None = None
    date = response.headers.get("Date")
    if date:
        try:
            reference = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            reference = None
        if reference is not None and reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
    return parse_retry_after(header, reference=reference or now())


def parse_answer(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or {} when it is empty, not JSON or not an object."""
    try:
        body = response.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return {}
    return body if isinstance(body, dict) else {}


def _short(value: object) -> str:
    text = str(value).replace("\n", " ")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def describe_answer(answer: Mapping[str, Any]) -> str:
    """``kode=..., pesan=...`` (and the first field errors) for a message; '' if none."""
    parts = [
        f"{key}={_short(answer[key])}" for key in _ANSWER_KEYS if answer.get(key) not in (None, "")
    ]
    errors = answer.get("errors")
    if isinstance(errors, list):
        fields = [
            f"{_short(item.get('field', '?'))}: {_short(item.get('pesan', ''))}"
            for item in errors[:3]
            if isinstance(item, dict)
        ]
        if fields:
            more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
            parts.append("errors=[" + "; ".join(fields) + "]" + more)
    return ", ".join(parts)


def _status_text(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    return f"{response.status_code} {phrase}" if phrase else str(response.status_code)


def error_from_response(
    response: httpx.Response,
    method: str,
    path: str,
    *,
    now: WallClock = utcnow,
    answer: dict[str, Any] | None = None,
) -> SyncError:
    """The error for a non-2xx answer; see the module docstring for the classification.

    ``answer`` replaces the parsed body (e.g. one with a secret the server echoed masked).
    """
    status = response.status_code
    answer = parse_answer(response) if answer is None else answer
    wait = retry_after_s(response, now=now)
    said = describe_answer(answer)
    message = f"{method} {path} -> {_status_text(response)}" + (f" ({said})" if said else "")
    kwargs: dict[str, Any] = {"status": status, "answer": answer, "retry_after_s": wait}

    if status == 401:
        return AuthError(message + ": bearer token refused even after a refresh", **kwargs)
    if status == 403:
        return AuthError(message + ": not allowed", **kwargs)
    if status == 503:
        if wait is not None:
            return TargetPaused(message + f": paused, retry after {wait:g} s", **kwargs)
        return RetriableError(message, **kwargs)
    if status in RETRIABLE_STATUSES:
        return RetriableError(message, **kwargs)
    if status == 409:
        return Conflict(message, **kwargs)
    if status == 412:
        return PreconditionFailed(message, **kwargs)
    if 400 <= status < 500:
        return RecordRejected(message, **kwargs)
    if status in _HOPELESS_5XX:
        return FatalError(message, **kwargs)
    if 500 <= status < 600:
        return RetriableError(message, **kwargs)
    return FatalError(message + ": unexpected status (is the base URL right?)", **kwargs)


def check(
    response: httpx.Response, method: str, path: str, *, now: WallClock = utcnow
) -> httpx.Response:
    """Return a 2xx response unchanged; raise the matching error for anything else."""
    if response.is_success:
        return response
    raise error_from_response(response, method, path, now=now)


def error_from_exception(exc: httpx.RequestError, method: str, path: str) -> SyncError:
    """The error for an httpx exception raised while sending ``method path``."""
    where = f"{method} {path}"
    name = type(exc).__name__
    detail = _short(exc) if str(exc) else name
    if isinstance(exc, httpx.PoolTimeout):  # our own pool was full: not the target's doing
        return RetriableError(f"{where}: timed out ({name})")
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(f"{where}: timed out ({name})")
    if isinstance(exc, httpx.ConnectError):  # refused, no route, unknown host
        return Unreachable(f"{where}: cannot connect ({name}: {detail})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.TooManyRedirects):
        return FatalError(f"{where}: {name}: {detail} (is the base URL right?)")
    # ConnectError, ReadError, WriteError, RemoteProtocolError (a dropped connection),
    # ProxyError, DecodingError (a truncated body): the same request may work later.
    return RetriableError(f"{where}: connection failed ({name}: {detail})")


def send(
    http: httpx.Client,
    method: str,
    path: str,
    *,
    auth: httpx.Auth,
    call: Call = call_once,
    params: Mapping[str, str | int] | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    now: WallClock = utcnow,
) -> httpx.Response:
    """Send one request through ``call``; return the 2xx response or raise our error.

    Each attempt ``call`` makes translates its own failure, so a retry wrapper sees only
    our errors (``retry_if_exception_type(RetriableError)`` is enough).
    """

    def attempt() -> httpx.Response:
        try:
            response = http.request(
                method,
                path,
                params=dict(params) if params is not None else None,
                json=json_body,
                headers=dict(headers) if headers is not None else None,
                auth=auth,
            )
        except httpx.RequestError as exc:
            raise error_from_exception(exc, method, path) from exc
        return check(response, method, path, now=now)

    return call(attempt)


def json_object(response: httpx.Response, method: str, path: str) -> dict[str, Any]:
    """The body of a 2xx answer, which the contracts say is a JSON object ({} if empty)."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise FatalError(
            f"{method} {path} -> {response.status_code}: the body is not JSON",
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise FatalError(
            f"{method} {path} -> {response.status_code}: the body is not a JSON object",
            status=response.status_code,
        )
    return body


def data_list(body: Mapping[str, Any], method: str, path: str) -> list[dict[str, Any]]:
    """``body["data"]``, which the contracts say is a list of JSON objects."""
    data = body.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise FatalError(f"{method} {path}: 'data' is not a list of objects", answer={})
    return data


def endpoint_url(base_url: httpx.URL, path: str) -> httpx.URL:
    """``path`` below the client's base URL, the way httpx merges a relative request URL."""
    if not base_url.is_absolute_url:
        raise ValueError("the httpx.Client needs an absolute base_url")
    return base_url.copy_with(path=base_url.path.rstrip("/") + "/" + path.lstrip("/"), query=None)


def display_url(url: httpx.URL) -> str:
    """The URL for a message: without userinfo (it may hold a password), query or final '/'."""
    return str(url.copy_with(userinfo=b"", query=None)).rstrip("/")
