"""The PMM-like source API (docs/apis.md, the "Source: ..." sections) over a
:class:`SandboxWorld`.

Endpoints: ``POST /oauth/token``, ``GET /api/v1/periode``, ``GET /api/v1/sekolah``,
``GET /api/v1/kinerja``; admin endpoints (no token, never faulted) under ``/_sandbox/``:
``GET /_sandbox/defects``, ``GET|PATCH /_sandbox/kinerja/{id}``, ``POST /_sandbox/kinerja``,
``GET|PUT /_sandbox/faults``, ``POST /_sandbox/tokens/revoke``, and
``GET /_sandbox/contacts.csv`` (the schools' contacts, for ``schools contacts import``).

Cursors are opaque: base64url JSON of the filters, the position (last ``(diperbarui_pada,
id)`` served) and the issue time, signed with an HMAC so a forged or damaged cursor is refused.
Keyset paging means a record updated during a walk (its timestamp moves past every other) is
served again later in the same walk.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import time
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.sandbox.contacts import contacts_csv
from connectors.sandbox.faults import FaultMiddleware, Faults, admin_routes
from connectors.sandbox.tokens import TokenRegistry, token_response, unauthorized
from connectors.sandbox.world import SandboxWorld, parse_instant, to_v1

__all__ = ["create_pmm_app"]

CURSOR_TTL_S = 24 * 3600
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def _wall_clock() -> float:
    """Wall-clock seconds for cursor ages (a seam tests can replace)."""
    return time.time()


class _BadRequest(Exception):
    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


class _Cursors:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, payload: dict[str, Any]) -> str:
        payload = {**payload, "at": _wall_clock()}
        data = base64.urlsafe_b64encode(
            json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        ).rstrip(b"=")
        sig = base64.urlsafe_b64encode(self._sign(data)).rstrip(b"=")
        return (data + b"." + sig).decode()

    def decode(self, text: str, resource: str) -> dict[str, Any]:
        try:
            data, _, sig = text.encode("ascii").partition(b".")
            expected = base64.urlsafe_b64encode(self._sign(data)).rstrip(b"=")
            if not hmac.compare_digest(sig, expected):
                raise ValueError("signature")
            payload = json.loads(base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4)))
        except (ValueError, UnicodeError, binascii.Error) as exc:
            raise _BadRequest("invalid_cursor", "cursor tidak dapat dibaca") from exc
        if not isinstance(payload, dict) or payload.get("r") != resource:
            raise _BadRequest("invalid_cursor", "cursor bukan untuk sumber daya ini")
        age = _wall_clock() - float(payload.get("at", 0))
        if age > CURSOR_TTL_S or age < -300:
            raise _BadRequest("expired_cursor", "cursor lebih tua dari 24 jam")
        return payload

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:16]


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest("invalid_limit", "limit harus bilangan bulat 1..1000") from None
    if not 1 <= value <= MAX_LIMIT:
        raise _BadRequest("invalid_limit", "limit harus bilangan bulat 1..1000")
    return value


def _requested_version(accept: str | None, only_v2: bool) -> int:
    """The schema version asked for by ``Accept: application/json; versi=N`` (default 1)."""
    if only_v2:
        return 2
    versi = 1
    for media_range in (accept or "").split(","):
        for param in media_range.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() != "versi":
                continue
            value = value.strip().strip('"')
            if value not in ("1", "2"):
                raise _BadRequest("not_acceptable", f"versi skema {value!r} tidak tersedia")
            versi = int(value)
    return versi


def _error(exc: _BadRequest) -> JSONResponse:
    status = 406 if exc.error == "not_acceptable" else 400
    return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=status)


def _set_path(record: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted v2 path (list items by index), e.g. ``penilaian.hasil.predikat``."""
    parts = path.split(".")
    if not path or parts[0] in ("id", "periode", "versi_skema", "diperbarui_pada"):
        raise ValueError(f"path {path!r} cannot be changed")
    node: Any = record
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict) and isinstance(node.get(part), dict | list):
            node = node[part]
        else:
            raise ValueError(f"no object at {part!r} in {path!r}")
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def create_pmm_app(
    world: SandboxWorld,
    faults: Faults,
    *,
    token_ttl_s: int = 3600,
    client_id: str = "sandbox",
    client_secret: str = "sandbox-secret",  # noqa: S107 - the public demo secret
    schema_version: int = 1,
) -> Starlette:
    """The source API. ``schema_version=2`` (or a world generated with it) serves only v2;
    otherwise v1 unless the request sends ``Accept: application/json; versi=2``."""
    if schema_version not in (1, 2):
        raise ValueError("schema_version is 1 or 2")
    only_v2 = schema_version == 2 or world.schema_version == 2
    tokens = TokenRegistry(ttl_s=token_ttl_s, client_id=client_id, client_secret=client_secret)
    # Derived from the secret so cursors stay readable across a restart of the sandbox.
    cursors = _Cursors(hashlib.sha256(f"pmm-cursor:{client_secret}".encode()).digest())

    async def token(request: Request) -> Response:
        return await token_response(request, tokens)

    async def periode(request: Request) -> Response:
        if tokens.check(request.headers.get("authorization")) is None:
            return unauthorized()
        return JSONResponse({"data": world.periods})

    async def sekolah(request: Request) -> Response:
        if tokens.check(request.headers.get("authorization")) is None:
            return unauthorized()
        params = request.query_params
        try:
            limit = _limit(request)
            wilayah = params.get("kode_wilayah")
            after = ""
            raw_cursor = params.get("cursor")
            if raw_cursor:
                state = cursors.decode(raw_cursor, "sekolah")
                if wilayah is not None and wilayah != state["w"]:
                    raise _BadRequest("invalid_cursor", "filter berbeda dengan cursor")
                wilayah, after = state["w"], str(state["pos"])
        except _BadRequest as exc:
            return _error(exc)
        chosen = sorted(
            (s for s in world.schools if wilayah is None or s["kode_wilayah"] == wilayah),
            key=lambda s: str(s["npsn"]),
        )
        rest = [s for s in chosen if str(s["npsn"]) > after]
        page = rest[:limit]
        next_cursor = None
        if len(rest) > limit:
            next_cursor = cursors.encode({"r": "sekolah", "w": wilayah, "pos": page[-1]["npsn"]})
        return JSONResponse({"data": page, "next_cursor": next_cursor})

    async def kinerja(request: Request) -> Response:
        if tokens.check(request.headers.get("authorization")) is None:
            return unauthorized()
        params = request.query_params
        try:
            versi = _requested_version(request.headers.get("accept"), only_v2)
            limit = _limit(request)
            periode = params.get("periode") or None
            npsn = params.get("npsn")
            since_raw = params.get("diperbarui_sejak")
            since: dt.datetime | None = None
            if since_raw is not None:
                try:
                    since = parse_instant(since_raw)
                except ValueError:
                    raise _BadRequest(
                        "invalid_diperbarui_sejak",
                        "diperbarui_sejak harus RFC 3339 dengan offset (kodekan '+' sebagai %2B)",
                    ) from None
            after: tuple[dt.datetime, str] | None = None
            raw_cursor = params.get("cursor")
            if raw_cursor:
                state = cursors.decode(raw_cursor, "kinerja")
                c_since = parse_instant(state["s"]) if state["s"] is not None else None
                if (
                    (periode is not None and periode != state["p"])
                    or (npsn is not None and npsn != state["n"])
                    or (since_raw is not None and since != c_since)
                ):
                    raise _BadRequest("invalid_cursor", "filter berbeda dengan cursor")
                periode, npsn, since = state["p"], state["n"], c_since
                after = (parse_instant(state["t"]), str(state["i"]))
            if periode is None:
                raise _BadRequest("missing_periode", "parameter periode wajib")
            if not world.has_period(periode):
                raise _BadRequest("unknown_periode", f"periode {periode!r} tidak dikenal")
        except _BadRequest as exc:
            return _error(exc)
        records, position = world.page(periode, npsn=npsn, since=since, after=after, limit=limit)
        data = records if versi == 2 else [to_v1(r) for r in records]
        next_cursor = None
        if position is not None:
            next_cursor = cursors.encode(
                {
                    "r": "kinerja",
                    "p": periode,
                    "n": npsn,
                    "s": since.isoformat() if since is not None else None,
                    "t": position[0].isoformat(),
                    "i": position[1],
                }
            )
        return JSONResponse(
            {"data": data, "next_cursor": next_cursor},
            media_type="application/json",
            headers={"X-Versi-Skema": str(versi)},
        )

    # -- admin ---------------------------------------------------------------------------
    async def defects(request: Request) -> Response:
        return JSONResponse({"data": [asdict(d) for d in world.defects]})

    async def get_record(request: Request) -> Response:
        try:
            return JSONResponse(world.record(request.path_params["id"]))
        except KeyError:
            return JSONResponse({"error": "not_found"}, status_code=404)

    async def patch_record(request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "invalid_json"}, status_code=400)
        if not isinstance(changes, dict):
            return JSONResponse({"error": "expected an object of dotted paths"}, status_code=400)

        def mutate(record: dict[str, Any]) -> None:
            for path, value in changes.items():
                _set_path(record, str(path), value)

        try:
            return JSONResponse(world.update_record(request.path_params["id"], mutate))
        except KeyError:
            return JSONResponse({"error": "not_found"}, status_code=404)
        except (ValueError, IndexError, TypeError) as exc:
            return JSONResponse({"error": "invalid_change", "detail": str(exc)}, status_code=400)

    async def add_record(request: Request) -> Response:
        try:
            record = json.loads(await request.body())
            if not isinstance(record, dict):
                raise ValueError("expected a Kinerja object")
            return JSONResponse(world.add_record(record), status_code=201)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": "invalid_record", "detail": str(exc)}, status_code=400)

    async def contacts(request: Request) -> Response:
        return PlainTextResponse(contacts_csv(world), media_type="text/csv; charset=utf-8")

    return Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/v1/periode", periode, methods=["GET"]),
            Route("/api/v1/sekolah", sekolah, methods=["GET"]),
            Route("/api/v1/kinerja", kinerja, methods=["GET"]),
            Route("/_sandbox/defects", defects, methods=["GET"]),
            Route("/_sandbox/contacts.csv", contacts, methods=["GET"]),
            Route("/_sandbox/kinerja", add_record, methods=["POST"]),
            Route("/_sandbox/kinerja/{id}", get_record, methods=["GET"]),
            Route("/_sandbox/kinerja/{id}", patch_record, methods=["PATCH"]),
            *admin_routes(faults, tokens),
        ],
        middleware=[Middleware(FaultMiddleware, faults=faults, drop_methods=frozenset({"GET"}))],
    )
