"""The e-Kinerja-like target's Starlette app (docs/apis.md, the "Target: ..." sections).

It parses requests, checks tokens and idempotency keys, and hands bodies to
:mod:`connectors.sandbox.target_checks` and :class:`~connectors.sandbox.target_store.TargetStore`
(re-exported here). Strict on purpose: the project's tests use it to prove that records arrive
exactly once.

API endpoints: ``POST /oauth/token``; ``POST /api/v1/skp``; ``GET /api/v1/skp`` (by
``nip``/``tahun``/``jenis``/``semester``, or a school's SKPs by ``npsn`` with ``tahun``,
``jenis``, ``semester``, ``cursor`` and ``limit``); ``GET|PUT /api/v1/skp/{id_skp}``;
``POST|GET /api/v1/skp/{id_skp}/penilaian``. Periods are those of the world: semesters
(``SKP-<tahun>-<semester>-<nip>``) and years (``SKP-<tahun>-<nip>``).

Admin endpoints (no token, never faulted):

- ``GET /_sandbox/stats``: the store's counters, and under ``rate_window`` those of the rate
  limit (:class:`~connectors.sandbox.ratewindow.RateWindow`: accepted, refused, worst_window);
- ``GET|PUT /_sandbox/faults``, ``POST /_sandbox/tokens/revoke``: see
  :mod:`connectors.sandbox.faults`;
- ``POST /_sandbox/skp``: an SKP made by hand, as a person in e-Kinerja's own pages would
  (for reconciliation drift tests). The body is an SKP body (``sumber`` optional); no
  idempotency key, no check of the penilai's SKP or of the period being open. ``201 {"id_skp",
  "status", "versi"}``, ``422 VALIDASI`` for a wrong body, ``409 SKP_SUDAH_ADA`` when the
  person has an SKP for the period. It then shows up in ``GET /api/v1/skp`` like any other;
  :meth:`TargetStore.create_skp_by_hand` does the same in-process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.faults import FaultMiddleware, Faults, admin_routes
from connectors.sandbox.ratewindow import RateWindow
from connectors.sandbox.target_checks import (
    Answer,
    check_penilaian,
    check_skp,
    field_error,
    problem,
    skp_period,
    validation_error,
)
from connectors.sandbox.target_store import SkpRefused, TargetStore
from connectors.sandbox.tokens import Grant, TokenRegistry, token_response, unauthorized
from connectors.sandbox.world import SandboxWorld

__all__ = ["TargetStore", "create_ekinerja_app"]

MAX_KEY_LENGTH = 128
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
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


class _BadQuery(Exception):
    """A query parameter of ``GET /api/v1/skp`` is wrong (a 400)."""


def _number(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise _BadQuery(f"{name} harus angka")
    return int(raw)


def _check_jenis(jenis: str | None, semester: int | None) -> None:
    if jenis is not None and jenis not in ("semester", "tahunan"):
        raise _BadQuery("jenis harus semester atau tahunan")
    if jenis == "tahunan" and semester is not None:
        raise _BadQuery("periode tahunan tidak memiliki semester")
    if semester is not None and semester not in (1, 2):
        raise _BadQuery("semester harus 1 atau 2")


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise _BadQuery(f"limit harus bilangan bulat 1..{MAX_LIMIT}")
    return int(raw)


def _encode_cursor(state: dict[str, Any]) -> str:
    text = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise _BadQuery("cursor tidak dapat dibaca") from exc
    if not (
        isinstance(state, dict)
        and set(state) == {"n", "t", "j", "s", "a"}
        and all(isinstance(state[k], str) for k in ("n", "j", "a"))
        and isinstance(state["t"], int)
        and (state["s"] is None or isinstance(state["s"], int))
    ):
        raise _BadQuery("cursor tidak dapat dibaca")
    return state


def _school_listing(store: TargetStore, params: Mapping[str, str]) -> dict[str, Any]:
    """``GET /api/v1/skp?npsn=&tahun=&jenis=&semester=&cursor=&limit=``: one page of a school's
    SKPs in one period, by ``id_skp``. A cursor carries the filters: send it alone or with the
    same ones."""
    if "nip" in params:
        raise _BadQuery("nip dan npsn tidak dapat dipakai bersama")
    limit = _limit(params)
    tahun, semester = _number(params, "tahun"), _number(params, "semester")
    npsn, jenis = params.get("npsn"), params.get("jenis")
    after: str | None = None
    raw_cursor = params.get("cursor")
    if raw_cursor is not None:
        state = _decode_cursor(raw_cursor)
        given = {"n": npsn, "t": tahun, "j": jenis, "s": semester}
        if any(value is not None and value != state[k] for k, value in given.items()):
            raise _BadQuery("filter berbeda dengan cursor")
        npsn, tahun, jenis, semester = state["n"], state["t"], state["j"], state["s"]
        after = str(state["a"])
    if not npsn:
        raise _BadQuery("npsn wajib")
    if tahun is None:
        raise _BadQuery("tahun wajib bersama npsn")
    jenis = jenis or "semester"
    _check_jenis(jenis, semester)
    if jenis == "semester" and semester is None:
        raise _BadQuery("semester wajib untuk periode semester")
    page, last = store.school_skps(npsn, tahun, jenis, semester, after=after, limit=limit)
    next_cursor = None
    if last is not None:
        next_cursor = _encode_cursor({"n": npsn, "t": tahun, "j": jenis, "s": semester, "a": last})
    return {"data": page, "next_cursor": next_cursor}


def create_ekinerja_app(
    world: SandboxWorld,
    store: TargetStore,
    faults: Faults,
    *,
    token_ttl_s: int = 3600,
    client_id: str = "sandbox",
    client_secret: str = "sandbox-secret",  # noqa: S107 - the public demo secret
    window: RateWindow | None = None,
) -> Starlette:
    """The target API over ``store``; pengawas sekolah of ``world`` count as holding an SKP.
    ``window``: where the arrivals are counted (its ``stats()``; a fresh one by default)."""
    window = window if window is not None else RateWindow()
    tokens = TokenRegistry(
        ttl_s=token_ttl_s,
        client_id=client_id,
        client_secret=client_secret,
        known_scopes=frozenset({WRITE_SCOPE, READ_SCOPE}),
        default_scopes=frozenset({READ_SCOPE}),
    )
    open_periods = {(p["tahun"], p.get("jenis", "semester"), p["semester"]) for p in world.periods}

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
        if skp_period(body["periode"]) not in open_periods:
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
            skp = store.skp_view(id_skp)
            if skp is None:
                return 404, problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = check_penilaian(body, exact, jenis=skp_period(skp["periode"])[1])
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
        try:
            if "npsn" in params or "cursor" in params:
                return answer(200, _school_listing(store, params))
            tahun, semester = _number(params, "tahun"), _number(params, "semester")
            jenis = params.get("jenis")
            if jenis is None and (tahun is not None or semester is not None):
                jenis = "semester"  # older clients: a period without jenis is a semester
            _check_jenis(jenis, semester)
            found = store.find_skps(params.get("nip"), tahun, semester, jenis)
        except _BadQuery as exc:
            return answer(400, problem("PARAMETER_TIDAK_VALID", str(exc)))
        return answer(200, {"data": found})

    async def skp_by_hand(request: Request) -> Response:
        try:
            body = json.loads(await request.body(), parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(problem("JSON_TIDAK_VALID", "isi permintaan bukan JSON"), 400)
        try:
            return JSONResponse(store.create_skp_by_hand(body), status_code=201)
        except SkpRefused as refused:
            return JSONResponse(refused.body, status_code=refused.status)

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
        return JSONResponse({**store.stats(), "rate_window": window.stats()})

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
            Route("/_sandbox/skp", skp_by_hand, methods=["POST"]),
            *admin_routes(faults, tokens),
        ],
        middleware=[
            Middleware(
                FaultMiddleware,
                faults=faults,
                drop_methods=frozenset({"POST", "PUT"}),
                on_request=store.count_request,
                on_fault=store.count_fault,
                on_answered=store.time_answer,
                window=window,
            )
        ],
    )
