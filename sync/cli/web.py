"""``ekinerja-sync web``: serve the web console."""

from __future__ import annotations

from typing import Annotated

import typer

from state.users import user_count
from sync.bootstrap import build_store
from sync.cli.options import err_console
from sync.settings import ConfigError
from sync.web.keys import console_key, is_loopback, require_lasting_key
from sync.web.server import serve

__all__ = ["web"]


def web(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="bind address (default: web.host, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="port (default: web.port, 8080)")
    ] = None,
) -> None:
    """Serve the web console for operators and auditors until Ctrl-C.

    Create users first: ekinerja-sync users add NAME --role auditor|operator.
    """

    settings = ctx.obj.settings()
    bind_host = host or settings.web.host
    bind_port = settings.web.port if port is None else port
    try:
        key = console_key(settings)
        require_lasting_key(key, bind_host)
    except ConfigError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if not key.lasting:
        err_console.print(
            "note: no web.secret_key or web.secret_key_file: sessions end when this stops",
            highlight=False,
        )
    store = build_store(settings, create=False)
    if user_count(store.engine) == 0:
        err_console.print(
            "note: no users yet; add one: ekinerja-sync users add NAME --role operator",
            highlight=False,
        )
    if not is_loopback(bind_host):
        err_console.print(
            f"note: serving on {bind_host}, beyond this machine: put it behind HTTPS "
            "(a reverse proxy) on the office network",
            highlight=False,
        )
    shown = f"[{bind_host}]" if ":" in bind_host else bind_host
    err_console.print(f"web console on http://{shown}:{bind_port}/ ; Ctrl-C stops", highlight=False)
    try:
        serve(settings, store, host=bind_host, port=bind_port)
    finally:
        store.engine.dispose()
