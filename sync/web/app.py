"""Assembles the console: a Starlette application of server-rendered pages (Jinja2, autoescaped).

``create_web_app(settings, store)`` builds it; nothing is built at import time. It puts
together what the other modules define: the login (``login``), the page groups
(``pages.GROUPS``) each behind the gate (``guard.Gate``), the templates, and the middleware
(``guard.Guard``; the proxy headers when ``web.trusted_proxies`` is set). Every page needs a
logged-in user; ``auditor`` reads, exports and verifies; ``operator`` may also replay and
discard.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from state.store import StateStore
from sync.bootstrap import build_app
from sync.operations.actions import AppBuilder, failure_id
from sync.operations.ledger_export import pretty_json
from sync.settings import Settings
from sync.web import login, pages
from sync.web._labels import (
    actor_label,
    cause_label,
    ledger_action,
    ledger_outcome,
    outbox_state,
    period_label,
    request_state,
)
from sync.web._words import explain, kind_label, status_label, wib
from sync.web.auth import Clock, Devices, LoginLimiter, LoginPolicy, Passwords, Sessions
from sync.web.console import Console, Page
from sync.web.guard import Gate, Guard, error_handlers
from sync.web.keys import ConsoleKey, console_key

__all__ = ["create_web_app"]

_HERE = Path(__file__).parent


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html", "svg"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        status_label=status_label,
        kind_label=kind_label,
        explain=explain,
        wib=wib,
        failure_id=failure_id,
        pretty_json=pretty_json,
        cause_label=cause_label,
        ledger_action=ledger_action,
        ledger_outcome=ledger_outcome,
        outbox_state=outbox_state,
        request_state=request_state,
        actor_label=actor_label,
        period_label=period_label,
    )
    return env


def _route(console: Console, gate: Gate, page: Page) -> Route:
    endpoint = gate.page(partial(page.handler, console), role=page.role, post=page.post)
    return Route(page.path, endpoint, methods=["POST" if page.post else "GET"])


def create_web_app(
    settings: Settings,
    store: StateStore,
    *,
    clock: Clock = _utcnow,
    passwords: Passwords | None = None,
    login_policy: LoginPolicy | None = None,
    build: AppBuilder | None = None,
    key: ConsoleKey | None = None,
) -> Starlette:
    """The console's ASGI application over ``store``.

    ``clock`` (sessions, the login throttle, the deadline view), ``passwords`` (the hasher),
    ``login_policy`` (login limits and backoff) and ``build`` (how a replay builds the
    engine; default ``sync.bootstrap.build_app``) are seams for tests. ``key`` is the
    console's key (``sync.web.keys.console_key``: from the settings, never from the store).
    The client's address is taken from ``X-Forwarded-For`` only when the connection comes
    from one of ``web.trusted_proxies``.
    """
    key = key or console_key(settings)
    sessions = Sessions(
        store.engine,
        key,
        clock=clock,
        max_age_s=settings.web.session_max_age_s,
        idle_s=settings.web.session_idle_s,
    )
    console = Console(
        settings=settings,
        store=store,
        clock=clock,
        passwords=passwords or Passwords(),
        limiter=LoginLimiter(store.engine, clock=clock, policy=login_policy),
        build=build or build_app,
        key=key,
        sessions=sessions,
        devices=Devices(key),
        env=_templates(),
    )
    gate = Gate(sessions, console.error)
    routes: list[BaseRoute] = [
        *login.routes(console),
        *(_route(console, gate, page) for page in login.PAGES),
        *(_route(console, gate, page) for group in pages.GROUPS for page in group),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(console.error))
    app.state.console = console
    app.add_middleware(Guard, render=console.error)
    if settings.web.trusted_proxies:
        # uvicorn's own middleware (run outermost): the client is the right-most address of
        # X-Forwarded-For that is not a trusted proxy; X-Forwarded-Proto too. Only when the
        # peer is trusted; uvicorn's default trust of 127.0.0.1 is off (server.py).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.web.trusted_proxies))
    return app
