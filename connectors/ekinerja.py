"""The client for the e-Kinerja-like target API (docs/apis.md, the "Target: ..." sections;
the sandbox connectors/sandbox/ekinerja_app.py serves the same)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from connectors._auth import ClientCredentialsAuth
from connectors._http import check, data_list, error_from_exception, json_object, send
from connectors._pagination import paginate

__all__ = ["EkinerjaClient", "TargetAnswer"]

_MAX_IDEMPOTENCY_KEY = 128
_SKP = "/api/v1/skp"

# A request body: a mapping (encoded as httpx encodes ``json=``), or JSON text sent as it is
# (the outbox stores each body as the canonical JSON that goes on the wire).
Body = Mapping[str, Any] | str


@dataclass(frozen=True)
class TargetAnswer:
    """A 2xx answer of the target: what the ledger keeps."""

    status: int
    body: dict[str, Any]
    duration_s: float


class EkinerjaClient:
    """Sends SKPs and penilaian to the target; every write carries an ``Idempotency-Key``.

    The client does not retry (the engine owns that policy) except the single token
    refresh after a 401. Non-2xx answers raise the errors of ``connectors.errors``,
    carrying ``status``, ``answer`` and ``retry_after_s``. Safe to share between threads.

    ``before_request`` (the engine's rate limit) is called right before each request goes
    on the wire: a token request, a write or a read, the repeat after a 401.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        client_id: str,
        client_secret: str,
        scope: str = "skp.write",
        clock: Callable[[], float] = time.monotonic,
        before_request: Callable[[], None] | None = None,
    ) -> None:
        self._http = http
        self._auth = ClientCredentialsAuth(
            http.base_url,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
            clock=clock,
            before_request=before_request,
        )
        self._clock = clock
        # The lean write path (``_write``): what ``httpx.Client.request`` would work out for
        # every request (URL merge, default headers, timeout, the transport for the URL:
        # proxies and TLS as configured), worked out once.
        self._root = str(http.base_url.copy_with(query=None)).rstrip("/")
        # The URL of creating an SKP (every second request), parsed once: parsing a URL is a
        # third of building a request.
        self._parsed = {_SKP: httpx.URL(self._root + _SKP)}
        # The transport httpx would choose for the base URL, called directly; without it,
        # the public ``Client.send`` (the same request and bytes, with the Client's work).
        transport = _transport_for(http)
        self._handle: Callable[[httpx.Request], httpx.Response] = (
            http.send if transport is None else transport.handle_request
        )
        self._timeout = http.timeout.as_dict()
        # Every header but the key, the bearer and the length, as bytes in wire order: a
        # request is built from them as is (``stream=``), not normalised and merged again.
        self._headers = [
            (b"Host", http.base_url.netloc),
            *(
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in http.headers.multi_items()
                if name.lower() not in {"accept", "authorization", "host"}
            ),
            (b"Accept", b"application/json"),
            (b"Content-Type", b"application/json"),
        ]

    def __repr__(self) -> str:
        return f"EkinerjaClient({self._auth!r})"

    def create_skp(self, body: Body, *, idempotency_key: str) -> TargetAnswer:
        """``POST /api/v1/skp`` → 201 ``{"id_skp", "status", "versi"}``."""
        return self._write("POST", _SKP, body, idempotency_key)

    def update_skp(
        self, skp_id: str, body: Body, *, version: int, idempotency_key: str
    ) -> TargetAnswer:
        """``PUT /api/v1/skp/{id}`` with ``If-Match: <version>`` → 200 with the new ``versi``."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be a positive int, not {version!r}")
        return self._write(
            "PUT", _skp_path(skp_id), body, idempotency_key, extra={"If-Match": str(version)}
        )

    def create_assessment(self, skp_id: str, body: Body, *, idempotency_key: str) -> TargetAnswer:
        """``POST /api/v1/skp/{id}/penilaian`` → 201 ``{"id_penilaian", "status"}``."""
        return self._write("POST", _skp_path(skp_id) + "/penilaian", body, idempotency_key)

    def find_skps(
        self, nip: str, year: int, semester: int | None, *, jenis: str = "semester"
    ) -> list[dict[str, Any]]:
        """``GET /api/v1/skp?nip=&tahun=&jenis=&semester=``: the SKPs the target holds for a
        NIP and period (reconciliation). A ``tahunan`` period has no semester."""
        if not nip:
            raise ValueError("nip is empty")
        path = _SKP
        params = {"nip": nip, **_period_params(year, semester, jenis)}
        answer = self._send("GET", path, params=params)
        return data_list(answer.body, "GET", path)

    def school_skps(
        self,
        npsn: str,
        year: int,
        semester: int | None,
        *,
        jenis: str = "semester",
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        """``GET /api/v1/skp?npsn=&tahun=&jenis=&semester=``, page after page: every SKP of
        the period whose unit kerja is the school, whoever made it (reconciliation)."""
        if not npsn:
            raise ValueError("npsn is empty")
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be within 1..1000, not {page_size!r}")
        path = _SKP
        filters = {"npsn": npsn, **_period_params(year, semester, jenis)}
        yield from paginate(
            lambda params: self._send("GET", path, params=params).body,
            path,
            filters,
            page_size=page_size,
            server="e-Kinerja",
        )

    def _write(
        self,
        method: str,
        path: str,
        body: Body,
        idempotency_key: str,
        *,
        extra: Mapping[str, str] | None = None,
    ) -> TargetAnswer:
        """One write, straight to the transport: the prepared bearer header (a new token only
        when it expires or on a 401, then the request once more, as the auth flow did), the
        body encoded as httpx encodes ``json=``, the answer parsed once."""
        _check_idempotency_key(idempotency_key)
        started = self._clock()
        if isinstance(body, str):
            content = body.encode("utf-8")  # JSON text as stored: sent byte for byte
        else:
            content = json.dumps(
                body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        headers = [
            *self._headers,
            (b"Idempotency-Key", idempotency_key.encode("ascii")),
            *(
                (name.encode("ascii"), value.encode("ascii"))
                for name, value in (extra or {}).items()
            ),
        ]
        url = self._parsed.get(path) or self._root + path
        try:
            bearer = self._auth.bearer(self._http.send)
            response = self._exchange(method, url, headers, content, bearer)
            if response.status_code == 401:
                bearer = self._auth.bearer(self._http.send, stale=bearer)
                response = self._exchange(method, url, headers, content, bearer)
        except httpx.RequestError as exc:
            raise error_from_exception(exc, method, path) from exc
        check(response, method, path)
        return TargetAnswer(
            status=response.status_code,
            body=json_object(response, method, path),
            duration_s=self._clock() - started,
        )

    def _exchange(
        self,
        method: str,
        url: httpx.URL | str,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        bearer: str,
    ) -> httpx.Response:
        # ``stream=``: httpx adds no header of its own, so Host (above) and Content-Length
        # are ours; the bytes on the wire are those ``content=`` would give.
        request = httpx.Request(
            method,
            url,
            headers=[
                *headers,
                (b"Authorization", bearer.encode("latin-1")),
                (b"Content-Length", str(len(content)).encode("ascii")),
            ],
            stream=httpx.ByteStream(content),
            extensions={"timeout": self._timeout},
        )
        self._auth.before_request()  # the last moment before the wire (the rate limit)
        response = self._handle(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        return response

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TargetAnswer:
        started = self._clock()
        response = send(
            self._http,
            method,
            path,
            auth=self._auth,
            params=params,
            json_body=json_body,
            headers=headers or {"Accept": "application/json"},
        )
        body = json_object(response, method, path)
        return TargetAnswer(
            status=response.status_code, body=body, duration_s=self._clock() - started
        )


def _transport_for(http: httpx.Client) -> httpx.BaseTransport | None:
    """The transport ``http`` uses for its base URL (its mounts: proxies, TLS as configured),
    or None. The choice is a private method of httpx's: a release without it costs the lean
    write path, not the writes."""
    choose = getattr(http, "_transport_for_url", None)
    if not callable(choose):
        return None
    transport = choose(http.base_url)
    return transport if isinstance(transport, httpx.BaseTransport) else None


def _period_params(year: int, semester: int | None, jenis: str) -> dict[str, str | int]:
    if jenis == "tahunan":
        if semester is not None:
            raise ValueError("a tahunan period has no semester")
        return {"tahun": year, "jenis": jenis}
    if jenis != "semester" or semester not in (1, 2):
        raise ValueError(f"a semester period has semester 1 or 2, not {semester!r}")
    return {"tahun": year, "jenis": jenis, "semester": semester}


def _skp_path(skp_id: str) -> str:
    if not skp_id:
        raise ValueError("skp_id is empty")
    return _SKP + "/" + quote(skp_id, safe="")


def _check_idempotency_key(key: str) -> None:
    # The target answers 400 to a missing or overlong key; catch our own bug before sending.
    if not key or len(key) > _MAX_IDEMPOTENCY_KEY:
        raise ValueError(f"idempotency_key must be 1..{_MAX_IDEMPOTENCY_KEY} characters")
    if not (key.isascii() and key.isprintable()) or key != key.strip():
        raise ValueError("idempotency_key must be printable ASCII without surrounding spaces")
