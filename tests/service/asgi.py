"""A synchronous httpx transport over an ASGI app, in-process: no socket, no server thread.

``httpx.ASGITransport`` is async-only, and the connectors use a synchronous ``httpx.Client``
from several delivery threads at once. :class:`SyncASGITransport` runs each request as a task
on one event loop (an ``anyio`` blocking portal, shared by every transport of a test session)
and blocks the calling thread until the answer is complete, so concurrent requests from the
delivery threads are served concurrently, as a server would.

It keeps what matters of a real connection for the engine's failure handling:

- an app that returns without finishing its answer (the sandbox's "dropped after store"
  fault) raises ``httpx.RemoteProtocolError``, as httpx does when a peer closes mid-answer;
- the client's read timeout applies (``httpx.ReadTimeout``), so the "slow" fault times out.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import anyio
import httpx
from anyio.from_thread import BlockingPortal
from starlette.types import ASGIApp

__all__ = ["SyncASGITransport"]


class SyncASGITransport(httpx.BaseTransport):
    """Serve ``app`` to a synchronous ``httpx.Client`` through ``portal``'s event loop."""

    def __init__(
        self, app: ASGIApp, portal: BlockingPortal, *, client: tuple[str, int] = ("127.0.0.1", 4)
    ) -> None:
        self.app = app
        self.portal = portal
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        timeout = request.extensions.get("timeout", {}).get("read")
        status, headers, content = self.portal.call(self._serve, request, body, timeout)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _serve(
        self, request: httpx.Request, body: bytes, timeout: float | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        sent_request = False
        started: dict[str, Any] = {}
        parts: list[bytes] = []
        complete = anyio.Event()

        async def receive() -> dict[str, Any]:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return {"type": "http.request", "body": body, "more_body": False}
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started["status"] = message["status"]
                started["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    complete.set()

        with anyio.move_on_after(timeout) as scope_timer:
            await self.app(scope, receive, send)
        if scope_timer.cancelled_caught:
            raise httpx.ReadTimeout("no answer within the read timeout", request=request)
        if not complete.is_set():
            # What a client sees when the server closes the connection mid-answer.
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body",
                request=request,
            )
        return started["status"], started["headers"], b"".join(parts)
