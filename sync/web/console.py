"""What the pages share, and what a page is.

``Console`` holds what every page and the login use (the settings, the store, the clock, the
sessions, the login throttle, the templates) and renders a template or the error page with
the user, the CSRF token and the path filled in. ``Page`` is one address of a page group
(``sync.web.pages``): its handler and who may use it. ``create_web_app`` builds both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from state.store import StateStore
from state.users import Role
from sync.operations.actions import AppBuilder
from sync.settings import Settings
from sync.web.auth import Clock, Devices, LoginLimiter, Passwords, Sessions
from sync.web.guard import View
from sync.web.keys import ConsoleKey

__all__ = ["Console", "Page", "PageHandler"]


@dataclass(frozen=True, eq=False)
class Console:
    """What the pages share. ``build``: how a replay builds the engine."""

    settings: Settings
    store: StateStore
    clock: Clock
    passwords: Passwords
    limiter: LoginLimiter
    build: AppBuilder
    key: ConsoleKey
    sessions: Sessions
    devices: Devices
    env: Environment = field(repr=False)

    def render(
        self,
        name: str,
        context: dict[str, Any],
        *,
        status: int = 200,
        view: View | None = None,
        request: Request | None = None,
    ) -> HTMLResponse:
        if view is not None:
            context.setdefault("user", view.user)
            context.setdefault("csrf", view.csrf)
            context.setdefault("path", view.request.url.path)
        elif request is not None:
            context.setdefault("path", request.url.path)
        html = self.env.get_template(name).render(context)
        return HTMLResponse(html, status_code=status)

    def error(
        self, status: int, title: str, message: str, *, view: View | None = None
    ) -> HTMLResponse:
        return self.render(
            "error.html",
            {"status": status, "title": title, "message": message},
            status=status,
            view=view,
        )


PageHandler = Callable[[Console, View], Response]


@dataclass(frozen=True)
class Page:
    """One address of a page: GET, or POST with the session's CSRF token when ``post``;
    ``role`` ``OPERATOR`` refuses auditors (``sync.web.guard.Gate``)."""

    path: str
    handler: PageHandler
    role: Role = Role.AUDITOR
    post: bool = False
