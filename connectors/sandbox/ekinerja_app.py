"""The e-Kinerja-like target's Starlette app (contracts/ekinerja-target.md).

It parses requests, checks tokens and idempotency keys, and hands bodies to
:mod:`connectors.sandbox.target_checks` and :class:`~connectors.sandbox.target_store.TargetStore`
(re-exported here). Endpoints: ``POST /oauth/token``; ``POST /api/v1/skp``, ``GET /api/v1/skp``,
``GET|PUT /api/v1/skp/{id_skp}``, ``POST|GET /api/v1/skp/{id_skp}/penilaian``; admin endpoints
(no token, never faulted): ``GET /_sandbox/stats``, ``GET|PUT /_sandbox/faults``,
``POST /_sandbox/tokens/revoke``.

Strict on purpose: the project's tests use it to prove that records arrive exactly once.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.faults import (
    FaultMiddleware,
    Faults,
    Grant,
    TokenRegistry,
    admin_routes,
    token_response,
    unauthorized,
)
from connectors.sandbox.target_checks import (
    Answer,
    check_penilaian,
    check_skp,
    field_error,
    problem,
    validation_error,
)
from connectors.sandbox.target_store import TargetStore
from connectors.sandbox.world import SandboxWorld

__all__ = ["TargetStore", "create_ekinerja_app"]

MAX_KEY_LENGTH = 128
WRITE_SCOPE = "skp.write"
READ_SCOPE = "skp.read"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _if_match(header: str) -> int | None:
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() else None


def create_ekinerja_app(
    world: SandboxWorld,
    store: TargetStore,
    faults: Faults,
    *,
    token_ttl_s: int = 3600,
    client_id: str = "sandbox",
    client_secret: str = "sandbox-secret",  # noqa: S107 - the public demo secret
) -> Starlette:
    """The target API over ``store``; pengawas sekolah of ``world`` count as holding an SKP."""
    tokens = TokenRegistry(
        ttl_s=token_ttl_s,
        client_id=client_id,
        client_secret=client_secret,
        known_scopes=frozenset({WRITE_SCOPE, READ_SCOPE}),
        default_scopes=frozenset({READ_SCOPE}),
    )
    open_periods = {(p["tahun"], p["semester"]) for p in world.periods}

    def answer(
        status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        store.count_answer(status)
        return JSONResponse(body, status_code=status, headers=headers)

    def authorize(request: Request, scope: str) -> Grant | Response:
        grant = tokens.check(request.headers.get("authorization"))
        if grant is None:
            store.count_answer(401)
            return unauthorized()
        if scope == WRITE_SCOPE and WRITE_SCOPE not in grant.scopes:
            return answer(403, {"error": "insufficient_scope", "scope": WRITE_SCOPE})
        return grant

    async def read_write(request: Request) -> tuple[str, Any, Any] | Response:
        """Check the token and Idempotency-Key; parse the body (plain and with exact decimals)."""
        grant = authorize(request, WRITE_SCOPE)
        if isinstance(grant, Response):
            return grant
        key = request.headers.get("idempotency-key")
        if not key:
            return answer(400, problem("IDEMPOTENCY_KEY_WAJIB", "header Idempotency-Key wajib"))
        if len(key) > MAX_KEY_LENGTH:
            return answer(
                400, problem("IDEMPOTENCY_KEY_TERLALU_PANJANG", "paling panjang 128 karakter")
            )
        raw = await request.body()
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
            exact = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            return answer(400, problem("JSON_TIDAK_VALID", "isi permintaan bukan JSON"))
        return key, body, exact

    def fingerprint(request: Request, body: Any) -> str:
        text = f"{request.method} {request.url.path}\n{_canonical(body)}"
        return hashlib.sha256(text.encode()).hexdigest()

    def skp_preconditions(body: dict[str, Any]) -> Answer | None:
        """National-side refusals after the shape is valid (the faults decide some)."""
        if body["nip"] in faults.unknown_nips:
            return 422, {
                **problem("NIP_TIDAK_DITEMUKAN", f"NIP {body['nip']} tidak dikenal BKN"),
                "errors": [field_error("nip", "tidak ditemukan")],
            }
        if (body["periode"]["tahun"], body["periode"]["semester"]) not in open_periods:
            return 422, problem("PERIODE_TIDAK_ADA", "periode belum dibuka di e-Kinerja")
        if body["unit_kerja"]["npsn"] in faults.inactive_npsns:
            return 422, problem("UNOR_TIDAK_AKTIF", "unit kerja tidak aktif")
        return None

    async def token(request: Request) -> Response:
        return await token_response(request, tokens)

    async def post_skp(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, _ = parsed

        def apply() -> Answer:
            errors = check_skp(body)
            if errors:
                return 422, validation_error(errors)
            refused = skp_preconditions(body)
            if refused is not None:
                return refused
            return store.create_skp(body, world.assessor_nips_outside_sync)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        return answer(status, out)

    async def put_skp(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, _ = parsed
        id_skp = request.path_params["id_skp"]
        header = request.headers.get("if-match")

        def apply() -> Answer:
            if header is None:
                return 428, problem("IF_MATCH_WAJIB", "header If-Match (versi SKP) wajib")
            versi = _if_match(header)
            if versi is None:
                return 400, problem("IF_MATCH_TIDAK_VALID", "If-Match harus versi SKP")
            if store.skp_view(id_skp) is None:
                return 404, problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = check_skp(body)
            if errors:
                return 422, validation_error(errors)
            # nip and period cannot change, so only the unit kerja can be refused here.
            return store.replace_skp(id_skp, body, versi, faults.inactive_npsns)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        headers = {"ETag": f'"{out["versi"]}"'} if status == 200 else None
        return answer(status, out, headers)

    async def post_penilaian(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, exact = parsed
        id_skp = request.path_params["id_skp"]

        def apply() -> Answer:
            if store.skp_view(id_skp) is None:
                return 404, problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = check_penilaian(body, exact)
            if errors:
                return 422, validation_error(errors)
            return store.create_penilaian(id_skp, body)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        return answer(status, out)

    async def list_skp(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        params = request.query_params
        numbers: dict[str, int | None] = {}
        for name in ("tahun", "semester"):
            raw = params.get(name)
            if raw is not None and not raw.isdigit():
                return answer(400, problem("PARAMETER_TIDAK_VALID", f"{name} harus angka"))
            numbers[name] = int(raw) if raw is not None else None
        found = store.find_skps(params.get("nip"), numbers["tahun"], numbers["semester"])
        return answer(200, {"data": found})

    async def get_skp(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        found = store.skp_view(request.path_params["id_skp"])
        if found is None:
            return answer(404, problem("SKP_TIDAK_DITEMUKAN", "SKP tidak ada"))
        return answer(200, found, {"ETag": f'"{found["versi"]}"'})

    async def get_penilaian(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        found = store.penilaian_view(request.path_params["id_skp"])
        if found is None:
            return answer(404, problem("PENILAIAN_TIDAK_DITEMUKAN", "penilaian tidak ada"))
        return answer(200, found)

    async def stats(request: Request) -> Response:
        return JSONResponse(store.stats())

    return Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/v1/skp", post_skp, methods=["POST"]),
            Route("/api/v1/skp", list_skp, methods=["GET"]),
            Route("/api/v1/skp/{id_skp}", put_skp, methods=["PUT"]),
            Route("/api/v1/skp/{id_skp}", get_skp, methods=["GET"]),
            Route("/api/v1/skp/{id_skp}/penilaian", post_penilaian, methods=["POST"]),
            Route("/api/v1/skp/{id_skp}/penilaian", get_penilaian, methods=["GET"]),
            Route("/_sandbox/stats", stats, methods=["GET"]),
            *admin_routes(faults, tokens),
        ],
        middleware=[
            Middleware(
                FaultMiddleware,
                faults=faults,
                drop_methods=frozenset({"POST", "PUT"}),
                on_request=store.count_request,
                on_fault=store.count_fault,
            )
        ],
    )
