"""Switchable faults for the sandbox servers.

A :class:`Faults` object is plain, mutable configuration: the servers read it on every
request, so a test (or ``PUT /_sandbox/faults``) can turn a fault on or off while a sync runs.
Random faults draw from one seeded :class:`random.Random`, so a test run is repeatable.

:class:`FaultMiddleware` applies them to the API endpoints (``/api/...``) of an app; the token
endpoint and the ``/_sandbox/*`` admin endpoints are never faulted. Token expiry is a fault
too: ``POST /_sandbox/tokens/revoke`` (:func:`admin_routes`) expires every token the
servers' :class:`~connectors.sandbox.tokens.TokenRegistry` has given.

``rate_limit_per_s`` is enforced per client over a sliding one-second window
(:class:`~connectors.sandbox.ratewindow.RateWindow`), as e-Kinerja counts: token requests
(``/oauth/token``) take room in it too, though they are never refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.sandbox.ratewindow import RateWindow, retry_after_whole_s
from connectors.sandbox.tokens import TokenRegistry

__all__ = [
    "FaultMiddleware",
    "Faults",
    "admin_routes",
    "quiet_dropped_connection_log",
]

_ERROR_STATUSES = (500, 502, 503, 504)
_TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a password)


def _client(scope: Scope) -> str:
    """The client a rate limit counts for: its address."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


@dataclass
class Faults:
    """Fault switches; all off by default. Mutable at run time (read per request)."""

    seed: int = 0
    rate_limit_share: float = 0.0
    """Share of API requests answered ``429`` with ``Retry-After``."""
    retry_after_s: float = 1.0
    retry_after_http_date: bool = False
    """Send ``Retry-After`` as an HTTP date instead of seconds."""
    error_share: float = 0.0
    """Share answered 500/502/503/504 (chosen at random); nothing is stored."""
    slow_share: float = 0.0
    slow_s: float = 0.0
    drop_after_store_share: float = 0.0
    """Target POST/PUT (source: GET): do the work, then drop the connection mid-answer."""
    latency_s: float = 0.0
    """Fixed latency added to every API request."""
    maintenance_until: float | None = None
    """A ``time.monotonic()`` deadline; until then every API call gets 503 + Retry-After."""
    unknown_nips: set[str] = field(default_factory=set)
    """Target ``POST /skp`` for these NIPs -> 422 NIP_TIDAK_DITEMUKAN."""
    rate_limit_per_s: float = 0.0
    """0: none; else at most this many requests per client in any sliding second (token
    requests included) -> 429 + Retry-After beyond."""
    inactive_npsns: set[str] = field(default_factory=set)
    """Target ``POST``/``PUT /skp`` with this unit kerja -> 422 UNOR_TIDAK_AKTIF."""

    def __post_init__(self) -> None:
        # Not dataclass fields, so dataclasses.asdict/replace work on a Faults.
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self, share: float) -> bool:
        """True with probability ``share``; no draw at all when the share is 0 or 1."""
        if share <= 0.0:
            return False
        if share >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < share

    def error_status(self) -> int:
        """One of 500/502/503/504, chosen with the seeded generator."""
        with self._lock:
            return self._rng.choice(_ERROR_STATUSES)

    def maintenance_left_s(self, now: float | None = None) -> float:
        """Seconds of maintenance left (0 when none)."""
        until = self.maintenance_until
        if until is None:
            return 0.0
        return max(0.0, until - (time.monotonic() if now is None else now))

    def as_dict(self) -> dict[str, Any]:
        """The switches as JSON-ready data (sets as sorted lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = sorted(value) if isinstance(value, set) else value
        out["maintenance_s_left"] = self.maintenance_left_s()
        return out

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply ``changes`` (field names; ``maintenance_s`` sets a deadline from now).

        Raises ``ValueError`` for an unknown name or a value of the wrong type; nothing is
        changed then.
        """
        names = {f.name for f in dataclasses.fields(self)}
        staged: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "maintenance_s":
                if value is None or _number(key, value) <= 0:
                    staged["maintenance_until"] = None
                else:
                    staged["maintenance_until"] = time.monotonic() + _number(key, value)
            elif key not in names:
                raise ValueError(f"unknown fault: {key!r}")
            elif key in ("unknown_nips", "inactive_npsns"):
                if not isinstance(value, list | set | tuple) or not all(
                    isinstance(v, str) for v in value
                ):
                    raise ValueError(f"{key} must be a list of strings")
                staged[key] = set(value)
            elif key == "retry_after_http_date":
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
                staged[key] = value
            elif key == "seed":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("seed must be an integer")
                staged[key] = value
            elif key == "maintenance_until":
                staged[key] = None if value is None else _number(key, value)
            else:
                staged[key] = _number(key, value)
        with self._lock:
            for key, value in staged.items():
                setattr(self, key, value)
            if "seed" in staged:
                self._rng = random.Random(self.seed)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0")
    return float(value)


def _retry_after(seconds: float, *, http_date: bool) -> str:
    if http_date:
        return email.utils.formatdate(time.time() + math.ceil(seconds), usegmt=True)
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")


class FaultMiddleware:
    """ASGI middleware applying :class:`Faults` to the ``/api/`` paths of an app.

    ``on_fault`` is told the kind of every injected fault (``rate_limited``, ``error``,
    ``maintenance``, ``slow``, ``dropped``); ``on_request`` is called for every API request,
    ``on_answered`` with the seconds from its arrival to its answer (the latency added).
    ``drop_methods`` are the HTTP methods whose answers can be dropped after the work is done.
    ``window`` counts the arrivals of each client (:class:`RateWindow`; its ``stats()``).
    """

    def __init__(
        self,
        app: ASGIApp,
        faults: Faults,
        *,
        drop_methods: frozenset[str] = frozenset({"POST", "PUT"}),
        on_request: Callable[[], None] | None = None,
        on_fault: Callable[[str], None] | None = None,
        on_answered: Callable[[float], None] | None = None,
        window: RateWindow | None = None,
    ) -> None:
        self.app = app
        self.faults = faults
        self.drop_methods = drop_methods
        self.on_request = on_request
        self.on_fault = on_fault
        self.on_answered = on_answered
        self.window = window if window is not None else RateWindow()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == _TOKEN_PATH:
            # Counted where it arrives, as e-Kinerja would; never refused.
            self.window.arrive(_client(scope), self.faults.rate_limit_per_s, token=True)
        if scope["type"] != "http" or not str(scope["path"]).startswith("/api/"):
            await self.app(scope, receive, send)
            return
        # The arrival, before any latency: what a sliding window counts.
        wait = self.window.arrive(_client(scope), self.faults.rate_limit_per_s)
        if self.on_request is not None:
            self.on_request()
        answered = self.on_answered or (lambda seconds: None)
        started, timed = time.monotonic(), False

        async def send_timed(message: Message) -> None:
            # Counted as the answer starts, before the client can have it.
            nonlocal timed
            if message["type"] == "http.response.start" and not timed:
                timed = True
                answered(time.monotonic() - started)
            await send(message)

        try:
            await self._answer(scope, receive, send_timed, wait)
        finally:
            if not timed:  # no answer (a dropped connection): counted all the same
                answered(time.monotonic() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, wait: float | None) -> None:
        faults = self.faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)

        left = faults.maintenance_left_s()
        if left > 0:
            await self._refuse(
                send,
                503,
                {"kode": "PEMELIHARAAN", "pesan": "layanan sedang dalam pemeliharaan"},
                retry_after=_retry_after(math.ceil(left), http_date=faults.retry_after_http_date),
                kind="maintenance",
            )
            return

        if wait is not None:
            await self._refuse(
                send,
                429,
                {"kode": "TERLALU_BANYAK_PERMINTAAN", "pesan": "batas laju terlampaui"},
                retry_after=_retry_after(
                    retry_after_whole_s(wait), http_date=faults.retry_after_http_date
                ),
                kind="rate_limited",
            )
            return

        if faults.draw(faults.rate_limit_share):
            await self._refuse(
                send,
                429,
                {"kode": "TERLALU_BANYAK_PERMINTAAN", "pesan": "batas laju terlampaui"},
                retry_after=_retry_after(
                    faults.retry_after_s, http_date=faults.retry_after_http_date
                ),
                kind="rate_limited",
            )
            return
        if faults.draw(faults.error_share):
            status = faults.error_status()
            await self._refuse(
                send,
                status,
                {"kode": "GANGGUAN", "pesan": f"galat server ({status})"},
                None,
                "error",
            )
            return
        if faults.draw(faults.slow_share):
            self._tell("slow")
            await asyncio.sleep(faults.slow_s)

        if scope["method"] in self.drop_methods and faults.draw(faults.drop_after_store_share):
            self._tell("dropped")
            await self.app(scope, receive, _dropping(send))
            # Returning here with the answer started but not complete makes uvicorn close
            # the connection: the client sees a protocol error, the store has the change.
            return
        await self.app(scope, receive, send)

    def _tell(self, kind: str) -> None:
        if self.on_fault is not None:
            self.on_fault(kind)

    async def _refuse(
        self,
        send: Send,
        status: int,
        body: dict[str, Any],
        retry_after: str | None,
        kind: str,
    ) -> None:
        self._tell(kind)
        payload = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if retry_after is not None:
            headers.append((b"retry-after", retry_after.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _dropping(send: Send) -> Send:
    """A ``send`` that passes the answer's head (with its Content-Length) and no body."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            await send(message)
        # Body messages are swallowed: the answer never completes.

    return wrapped


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


_DROP_FILTER = _DropFilter()


def quiet_dropped_connection_log() -> None:
    """Silence uvicorn's error line for the connections the sandbox drops on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if _DROP_FILTER not in logger.filters:
        logger.addFilter(_DROP_FILTER)


def admin_routes(faults: Faults, tokens: TokenRegistry) -> list[Route]:
    """The admin endpoints both sandbox servers have (no token, never faulted):
    ``GET|PUT /_sandbox/faults`` (read or change the switches) and
    ``POST /_sandbox/tokens/revoke`` (every token given so far stops working)."""

    async def get_faults(request: Request) -> Response:
        return JSONResponse(faults.as_dict())

    async def put_faults(request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            faults.update(changes)
        except ValueError as exc:
            return JSONResponse({"error": "invalid_faults", "detail": str(exc)}, status_code=400)
        return JSONResponse(faults.as_dict())

    async def revoke(request: Request) -> Response:
        return JSONResponse({"revoked": tokens.revoke_all()})

    return [
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", put_faults, methods=["PUT"]),
        Route("/_sandbox/tokens/revoke", revoke, methods=["POST"]),
    ]
