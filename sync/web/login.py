"""Logging in and out: the login form, its answer and logout.

A login attempt carries the login form's CSRF token and is counted by the throttle before
the password is checked (per name and address, or per device when the browser holds a
device cookie for the name); a good one ends any session the browser held, starts a new one
and, when the browser holds none, gives it a device cookie for the name. When too many
passwords are being checked at once (``auth.CheckSlots``), the login page says so with 429
and ``Retry-After``, and the attempt is given back to the throttle. Logout ends the session.
Passwords, sessions, device cookies and the throttle are in ``sync.web.auth``.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from state.users import get_user
from sync.web.auth import (
    BUSY_RETRY_AFTER_S,
    COOKIE,
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE_S,
    Busy,
    Cookie,
)
from sync.web.console import Console, Page
from sync.web.guard import CONTROL, View, form_text, read_form

__all__ = ["PAGES", "routes"]

_USER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def routes(console: Console) -> list[Route]:
    """The login page and its form's answer (before any session: not behind the gate)."""

    async def form(request: Request) -> Response:
        return await login_page(console, request)

    async def submit(request: Request) -> Response:
        return await login(console, request)

    return [
        Route("/login", form, methods=["GET"], name="login_page"),
        Route("/login", submit, methods=["POST"], name="login"),
    ]


def _safe_next(value: str | None) -> str:
    """Where to go after login: a path on this site only (never another host)."""
    if (
        not value
        or len(value) > 512
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or CONTROL.search(value)
    ):
        return "/"
    return value


def _set_cookie(console: Console, response: Response, request: Request, cookie: Cookie) -> None:
    response.set_cookie(
        COOKIE,
        cookie.value,
        max_age=console.settings.web.session_max_age_s if cookie.session_id else None,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


async def login_page(console: Console, request: Request) -> Response:
    cookie = Cookie.parse(request.cookies.get(COOKIE))
    user = await run_in_threadpool(console.sessions.user, cookie)
    if user is not None:
        return RedirectResponse("/", status_code=303)
    fresh = Cookie.anonymous()
    message = None
    if request.query_params.get("expired") == "1":
        message = "Sesi Anda sudah berakhir. Silakan masuk lagi."
    response = console.render(
        "login.html",
        {
            "csrf": console.sessions.csrf(fresh),
            "next": _safe_next(request.query_params.get("next")),
            "message": message,
        },
        request=request,
    )
    _set_cookie(console, response, request, fresh)
    return response


async def login(console: Console, request: Request) -> Response:
    cookie = Cookie.parse(request.cookies.get(COOKIE))
    form = await read_form(request, console.error)
    if isinstance(form, Response):
        return form
    if not console.sessions.csrf_matches(cookie, form_text(form.get("csrf_token"))):
        return console.error(
            403,
            "Token formulir tidak sah",
            "Halaman masuk ini sudah kedaluwarsa atau tidak berasal dari konsol ini: "
            "buka halaman masuk lagi.",
        )
    name = form_text(form.get("username")).strip().lower()[:64]
    password = form_text(form.get("password"))
    next_path = _safe_next(form_text(form.get("next")))
    # The peer, or the client a trusted proxy names (web.trusted_proxies; create_web_app).
    client = request.client.host if request.client else "-"
    # Counted before the password is checked: a burst cannot all pass a check made
    # before its failures were counted.
    device = console.devices.holder(request.cookies.get(DEVICE_COOKIE), name)
    wait = await run_in_threadpool(console.limiter.attempt, name, client, device)
    if wait > 0:
        minutes = max(1, round(wait / 60))
        response = console.error(
            429,
            "Terlalu banyak percobaan",
            f"Terlalu banyak percobaan masuk yang gagal. Coba lagi dalam {minutes} menit.",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = None
    if _USER.fullmatch(name):
        user = await run_in_threadpool(get_user, console.store.engine, name)
    try:
        valid = await run_in_threadpool(
            console.passwords.verify, user.password_hash if user else None, password
        )
    except Busy:
        # Never checked: it does not count against the name or the address.
        await run_in_threadpool(console.limiter.give_back, name, client, device)
        busy = _form_again(
            console,
            request,
            cookie,
            name,
            next_path,
            "Konsol sedang memeriksa banyak percobaan masuk sekaligus, jadi kata sandi Anda "
            f"belum diperiksa. Tunggu {BUSY_RETRY_AFTER_S} detik, lalu coba masuk lagi.",
            status=429,
        )
        busy.headers["Retry-After"] = str(BUSY_RETRY_AFTER_S)
        return busy
    if not valid or user is None or user.disabled:
        return _form_again(
            console,
            request,
            cookie,
            name,
            next_path,
            "Nama pengguna atau kata sandi salah (atau akun dinonaktifkan).",
            status=401,
        )
    await run_in_threadpool(console.limiter.succeeded, name, client, device)
    # A new session id at login; a session the browser still held ends.
    await run_in_threadpool(console.sessions.end, cookie)
    started = await run_in_threadpool(console.sessions.start, user)
    redirect = RedirectResponse(next_path, status_code=303)
    _set_cookie(console, redirect, request, started)
    if device is None:
        # This browser may log in as this name even while strangers make the name wait.
        redirect.set_cookie(
            DEVICE_COOKIE,
            console.devices.issue(user.name),
            max_age=DEVICE_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/login",
        )
    return redirect


def _form_again(
    console: Console,
    request: Request,
    cookie: Cookie | None,
    name: str,
    next_path: str,
    error: str,
    *,
    status: int,
) -> HTMLResponse:
    """The login form again, with ``error``, the name typed, and the form's cookie kept."""
    fresh = cookie if cookie is not None and cookie.session_id is None else None
    fresh = fresh or Cookie.anonymous()
    response = console.render(
        "login.html",
        {
            "csrf": console.sessions.csrf(fresh),
            "next": next_path,
            "username": name,
            "error": error,
        },
        status=status,
        request=request,
    )
    _set_cookie(console, response, request, fresh)
    return response


def logout(console: Console, view: View) -> Response:
    console.sessions.end(view.cookie)  # the cookie is worth nothing from now on
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


PAGES = (Page("/logout", logout, post=True),)
