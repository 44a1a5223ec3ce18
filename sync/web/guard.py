"""The request guard: what a request passes before a page sees it, and the error pages.

Hostile input gets a page that says what is wrong and changes nothing:

- ``Guard``, the middleware in front of every route, refuses over-long paths and query
  strings (414) and odd ones (400: bad percent-encoding, control characters, too many
  parameters), and adds the security headers to every answer;
- ``Gate.page`` wraps every page behind the login: no session sends a GET to the login page
  and refuses a POST (403); a page for operators refuses an auditor (403); a POST's form is
  read within limits (413, 400) and must carry the session's CSRF token (403);
- ``View`` is what a page gets; it checks the page's query parameters (400). A page raises
  ``Problem`` (400, 404, 409, 502) to end with an error page;
- ``error_handlers`` gives Starlette's own errors (404, 405, 500) the same page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_to_bytes, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mappings.model import PERIOD_CODE
from state.users import Role, User
from sync.web.auth import COOKIE, Cookie, Sessions

__all__ = [
    "CONTROL",
    "MAX_FORM_BYTES",
    "MAX_PARAMS",
    "MAX_PATH",
    "MAX_QUERY",
    "NIP",
    "NPSN",
    "PERIOD",
    "ErrorPage",
    "Gate",
    "Guard",
    "Handler",
    "Problem",
    "View",
    "bad",
    "error_handlers",
    "form_text",
    "period_or_latest",
    "read_form",
]

MAX_PATH = 512
MAX_QUERY = 2048
MAX_PARAMS = 30
MAX_FORM_BYTES = 16 * 1024

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The shapes of the parameters several pages take.
PERIOD = PERIOD_CODE  # a year (2026) or a semester (2024-2): the one pattern, in mappings
NIP = re.compile(r"[0-9]{8,18}")
NPSN = re.compile(r"[0-9A-Za-z]{4,16}")


class Problem(Exception):
    """Ends a request with an error page: ``status``, a title and what to do, in Indonesian."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.message = message


def bad(name: str, why: str) -> Problem:
    """A 400 page about the parameter ``name``."""
    return Problem(400, "Permintaan tidak sah", f"Parameter {name!r}: {why}.")


@dataclass
class View:
    """What a page handler gets: the request, the user, their session's cookie and CSRF
    token, and the form."""

    request: Request
    user: User
    cookie: Cookie
    csrf: str
    form: FormData | None = None

    def param(
        self, name: str, pattern: re.Pattern[str] | None = None, *, max_len: int = 100
    ) -> str | None:
        """A query parameter: None when absent or empty; ``Problem`` 400 when it is odd."""
        value = self.request.query_params.get(name)
        if value is None or value.strip() == "":
            return None
        value = value.strip()
        if len(value) > max_len:
            raise bad(name, f"terlalu panjang (paling banyak {max_len} karakter)")
        if CONTROL.search(value):
            raise bad(name, "berisi karakter kendali")
        if pattern is not None and not pattern.fullmatch(value):
            raise bad(name, "bentuknya tidak dikenal")
        return value

    def field(self, name: str, *, max_len: int = 500) -> str:
        assert self.form is not None
        value = self.form.get(name)
        if not isinstance(value, str):
            return ""
        if len(value) > max_len:
            raise bad(name, f"terlalu panjang (paling banyak {max_len} karakter)")
        return value


Handler = Callable[[View], Response]


class ErrorPage(Protocol):
    """Renders the error page (``Console.error``)."""

    def __call__(
        self, status: int, title: str, message: str, *, view: View | None = None
    ) -> HTMLResponse: ...


def period_or_latest(view: View, known: list[str]) -> str | None:
    """The ``period`` parameter, or else the latest period the store knows."""
    period = view.param("period", PERIOD, max_len=6)
    if period is not None:
        return period
    return known[0] if known else None


def form_text(value: object) -> str:
    """A form field's value as text ("" for a file or nothing)."""
    return value if isinstance(value, str) else ""


# -- the middleware in front of every route ---------------------------------------------------


class Guard:
    """Refuses over-long or odd requests before any route sees them; adds security headers
    to every answer."""

    def __init__(self, app: ASGIApp, render: ErrorPage) -> None:
        self.app = app
        self.render = render

    def _problem(self, scope: Scope) -> Response | None:
        path = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        if len(path) > MAX_PATH:
            return self.render(414, "Alamat terlalu panjang", "Periksa alamat halaman.")
        if len(query) > MAX_QUERY:
            return self.render(
                414,
                "Alamat terlalu panjang",
                f"Kueri paling banyak {MAX_QUERY} karakter; persempit pencarian.",
            )
        try:
            decoded = unquote_to_bytes(bytes(path)).decode("utf-8")
            pairs = [p for p in query.split(b"&") if p]
            for pair in pairs:
                unquote_to_bytes(pair.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return self.render(400, "Alamat tidak sah", "Alamat berisi karakter yang tidak sah.")
        if CONTROL.search(decoded) or any(
            CONTROL.search(unquote_to_bytes(p).decode("utf-8")) for p in pairs
        ):
            return self.render(400, "Alamat tidak sah", "Alamat berisi karakter kendali.")
        if len(pairs) > MAX_PARAMS:
            return self.render(400, "Alamat tidak sah", "Terlalu banyak parameter.")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (
                        b"content-security-policy",
                        b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                        b"script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                        b"base-uri 'none'",
                    ),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        problem = self._problem(scope)
        if problem is not None:
            await problem(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


# -- the wrapper of every page behind the login -----------------------------------------------


async def read_form(request: Request, error: ErrorPage) -> FormData | Response:
    """The request's form, or the error page when it is too large (413) or odd (400)."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
        return error(413, "Formulir terlalu besar", "Formulir ini lebih besar dari yang diterima.")
    try:
        return await request.form(max_files=0, max_fields=MAX_PARAMS)
    except HTTPException as exc:
        return error(400, "Formulir tidak sah", str(exc.detail))


def _to_login(request: Request, *, expired: bool = False) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    query = {"next": target} if target != "/" else {}
    if expired:
        query["expired"] = "1"
    response = RedirectResponse(
        "/login" + ("?" + urlencode(query) if query else ""), status_code=303
    )
    response.delete_cookie(COOKIE, path="/")
    return response


class Gate:
    """Makes a page handler an endpoint behind the login (the module docstring)."""

    def __init__(self, sessions: Sessions, error: ErrorPage) -> None:
        self.sessions = sessions
        self.error = error

    def page(
        self, handler: Handler, *, role: Role = Role.AUDITOR, post: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            cookie = Cookie.parse(request.cookies.get(COOKIE))
            user = None
            if cookie is not None and cookie.session_id is not None:
                user = await run_in_threadpool(self.sessions.user, cookie)
            # A session cookie the store does not know (any more): ended, expired, revoked.
            expired = cookie is not None and cookie.session_id is not None and user is None
            if user is None or cookie is None:
                if post:
                    response = self.error(
                        403,
                        "Sesi tidak berlaku",
                        "Sesi Anda tidak ada atau sudah berakhir: masuk lagi, lalu ulangi. "
                        "Tidak ada yang diubah.",
                    )
                    response.delete_cookie(COOKIE, path="/")
                    return response
                return _to_login(request, expired=expired)
            view = View(request, user, cookie, self.sessions.csrf(cookie))
            if role is Role.OPERATOR and user.role is not Role.OPERATOR:
                return self.error(
                    403,
                    "Tidak diizinkan",
                    "Hanya operator yang boleh melakukan ini. Peran Anda: auditor "
                    "(membaca, mengekspor, memverifikasi). Tidak ada yang diubah.",
                    view=view,
                )
            if post:
                form = await read_form(request, self.error)
                if isinstance(form, Response):
                    return form
                view.form = form
                if not self.sessions.csrf_matches(cookie, form_text(form.get("csrf_token"))):
                    return self.error(
                        403,
                        "Token formulir tidak sah",
                        "Formulir ini tidak membawa token keamanan yang sah (CSRF): buka "
                        "halamannya lagi dan kirim dari sana. Tidak ada yang diubah.",
                        view=view,
                    )
            try:
                return await run_in_threadpool(handler, view)
            except Problem as problem:
                return self.error(problem.status, problem.title, problem.message, view=view)

        return endpoint


# -- Starlette's own errors ---------------------------------------------------------------------

ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def error_handlers(error: ErrorPage) -> Mapping[object, ExceptionHandler]:
    """The error pages of an unknown address or method (404, 405) and of a bug (500)."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Halaman tidak ditemukan", 405: "Cara permintaan tidak diizinkan"}
        return error(
            exc.status_code,
            titles.get(exc.status_code, "Permintaan tidak dapat dilayani"),
            "Periksa alamatnya, atau kembali ke ringkasan.",
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        return error(
            500,
            "Terjadi kesalahan",
            "Konsol mengalami kesalahan. Tidak ada yang diubah; coba lagi atau hubungi TI dinas.",
        )

    return {HTTPException: http_error, 500: server_error}
