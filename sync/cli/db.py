"""``ekinerja-sync db``: the state store's schema.

``upgrade`` brings it to this release after a new release is installed (back the database up
first); ``current`` shows where it is and where this release needs it; ``check`` answers for
scripts by its exit code: 0 at head, 1 an upgrade is needed, 2 this release cannot use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from sqlalchemy import Engine

from state.db import open_engine, safe_url
from state.schema import (
    SchemaAhead,
    SchemaBehind,
    SchemaError,
    SchemaState,
    check,
    current_revision,
    head_revision,
    upgrade,
)
from sync.cli.options import console
from sync.cli.output import fail

__all__ = ["db_app"]

db_app = typer.Typer(
    help=(
        "The state store's schema: run `db upgrade` after installing a new release "
        "(back the database up first)."
    ),
    no_args_is_help=True,
)


@contextmanager
def _engine(ctx: typer.Context, *, create: bool = False) -> Iterator[tuple[Engine, str]]:
    """The state store's engine, and its URL without a password (to print). Only ``create``
    (``db upgrade``) makes a SQLite file that is not there; an unusable store is
    ``StoreUnusable`` (one line, exit 2: ``sync.cli_output``)."""

    url = ctx.obj.settings().state.url
    engine = open_engine(url, create=create)
    try:
        yield engine, safe_url(url)
    finally:
        engine.dispose()


def _fail(exc: SchemaError, code: int = 2) -> NoReturn:

    fail(str(exc), code, problem="schema")


@db_app.command("upgrade")
def upgrade_command(
    ctx: typer.Context,
    revision: Annotated[
        str, typer.Option("--revision", help="the revision to reach (default: this release's)")
    ] = "head",
) -> None:
    """Bring the state store's schema up to this release (back the database up first)."""

    with _engine(ctx, create=True) as (engine, where):
        try:
            before, after = upgrade(engine, revision)
        except SchemaError as exc:
            _fail(exc)
    if before == after:
        console.print(f"{where}: the schema is already at {after}", highlight=False)
    else:
        console.print(
            f"{where}: schema upgraded from {before or 'nothing'} to {after}", highlight=False
        )


@db_app.command("current")
def current_command(ctx: typer.Context) -> None:
    """The schema revision of the state store, and the one this release needs."""

    with _engine(ctx) as (engine, where):
        current = current_revision(engine)
        state = check(engine)
    console.print(
        f"state store: {where}\ncurrent:     {current or 'none'}\n"
        f"this release: {head_revision()}\nstate:       {state.value}",
        highlight=False,
    )


@db_app.command("check")
def check_command(ctx: typer.Context) -> None:
    """Exit 0 when the schema is this release's, 1 when `db upgrade` is needed, 2 when this
    release cannot use it (a newer release upgraded it, or unknown tables)."""

    with _engine(ctx) as (engine, _where):
        state = check(engine)
        current = current_revision(engine)
    head = head_revision()
    if state is SchemaState.CURRENT:
        console.print(f"the state store's schema is at {head}, as this release needs")
        return
    if state is SchemaState.AHEAD:
        assert current is not None
        _fail(SchemaAhead(current, head))
    _fail(SchemaBehind(current, head, empty=state is SchemaState.FRESH), code=1)
