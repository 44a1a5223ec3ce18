"""Serving the console with uvicorn: in the foreground (``ekinerja-sync web``) or in a
background thread (the daemon, the browser tests).

Beyond a loopback address the console needs a configured key (``sync.web.keys``): both ways
of serving refuse to start without one. uvicorn's reading of ``X-Forwarded-For`` (which it
believes from 127.0.0.1 by default) is off: the application reads it itself, from the
proxies in ``web.trusted_proxies`` only.
"""

from __future__ import annotations

import time
from typing import Any

import uvicorn
from starlette.applications import Starlette

from connectors.thread_server import ThreadServer
from state.store import StateStore
from sync.settings import Settings
from sync.web.app import create_web_app
from sync.web.keys import console_key, is_loopback, require_lasting_key

__all__ = ["RunningConsole", "is_loopback", "serve", "start_in_thread"]

_START_TIMEOUT_S = 10.0


def _config(app: Starlette, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # the ledger records what matters; query strings may hold NIPs
        lifespan="off",
        http="h11",
        ws="none",
        timeout_graceful_shutdown=3,
        server_header=False,
        proxy_headers=False,  # web.trusted_proxies decides, in the application
    )


def _app(
    settings: Settings, store: StateStore, app: Starlette | None, host: str, **options: Any
) -> Starlette:
    if app is not None:
        return app
    key = console_key(settings)
    require_lasting_key(key, host)
    return create_web_app(settings, store, key=key, **options)


def serve(
    settings: Settings,
    store: StateStore,
    *,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the console until Ctrl-C / SIGTERM (uvicorn handles the signals)."""
    bind_host = host or settings.web.host
    app = _app(settings, store, None, bind_host)
    config = _config(
        app,
        host=bind_host,
        port=settings.web.port if port is None else port,
        log_level=log_level,
    )
    uvicorn.Server(config).run()


# A console served from a background thread: ``url`` says where, ``stop()`` ends it.
RunningConsole = ThreadServer


def start_in_thread(
    settings: Settings,
    store: StateStore,
    *,
    host: str | None = None,
    port: int | None = None,
    app: Starlette | None = None,
    log_level: str = "warning",
) -> RunningConsole:
    """Serve the console from a daemon thread and return once it accepts connections.

    Port 0 picks a free port (``url`` tells which). ``app`` serves a prepared application
    (tests pass one built with a fake clock); otherwise one is built from the settings.
    Signals stay with the caller (the daemon): call ``stop()`` on the way out.
    """
    bind_host = host or settings.web.host
    bind_port = settings.web.port if port is None else port
    prepared = _app(settings, store, app, bind_host)  # before binding: it may refuse
    served = ThreadServer(
        _config(prepared, host=bind_host, port=bind_port, log_level=log_level),
        bind_host,
        bind_port,
        label="the web console",
        thread_name="web-console",
    )
    served.start()
    try:
        served.wait_started(time.monotonic() + _START_TIMEOUT_S)
    except (RuntimeError, TimeoutError):
        served.request_stop()
        served.socket.close()
        raise
    return served
