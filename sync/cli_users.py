"""``ekinerja-sync users``: the people who may use the web console, and their roles."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from state.users import Role, UserError
from sync.ledger_export import wib_time

__all__ = ["users_app"]

users_app = typer.Typer(
    help=(
        "Web console users: auditor (reads, exports, verifies) or operator (also replays "
        "and discards)."
    ),
    no_args_is_help=True,
)


def _engine(ctx: typer.Context) -> Engine:
    from sync.bootstrap import build_store

    return build_store(ctx.obj.settings(), create=False).engine


def _fail(message: str) -> typer.Exit:
    from sync.cli_output import report_error

    report_error(message, exit_code=1)
    return typer.Exit(1)


def _read_password(from_stdin: bool) -> str:
    from sync.web.auth import password_problem

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
        again = typer.prompt("Password again", hide_input=True)
        if password != again:
            raise _fail("the two passwords differ; nothing was changed")
    problem = password_problem(password)
    if problem is not None:
        raise _fail(f"{problem}; nothing was changed")
    return password


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="user name: lowercase letters, digits, . _ -")],
    role: Annotated[Role, typer.Option("--role", help="auditor or operator")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="read the password from the first line of stdin"),
    ] = False,
) -> None:
    """Add a user; asks for the password twice (or reads it with --password-stdin)."""
    from state.users import NAME_PATTERN, add_user, get_user
    from sync.cli import console
    from sync.web.auth import Passwords

    if not NAME_PATTERN.fullmatch(name):
        raise _fail(f"{name!r} is not a user name: 1-64 lowercase letters, digits, '.', '_' or '-'")
    engine = _engine(ctx)
    try:
        if get_user(engine, name) is not None:
            raise _fail(f"user {name!r} exists already")
        password = _read_password(password_stdin)
        try:
            add_user(engine, name, role, Passwords().hash(password))
        except UserError as exc:
            raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"added {name} ({role.value})", highlight=False)


@users_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every user, with role, creation time and whether disabled."""
    from state.users import list_users
    from sync.cli import console

    engine = _engine(ctx)
    try:
        users = list_users(engine)
    finally:
        engine.dispose()
    if not users:
        console.print("No users yet: ekinerja-sync users add NAME --role auditor|operator")
        return
    table = Table(title=f"Console users ({len(users)})", title_justify="left")
    for column in ("name", "role", "created (WIB)", "state"):
        table.add_column(column)
    for user in users:
        table.add_row(
            user.name,
            user.role.value,
            wib_time(user.created_at),
            "disabled" if user.disabled else "active",
        )
    console.print(table)


@users_app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the user to disable")],
) -> None:
    """Disable a user: their sessions end at once and they cannot log in."""
    from state.users import set_disabled
    from sync.cli import console

    engine = _engine(ctx)
    try:
        set_disabled(engine, name)
    except UserError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"disabled {name}", highlight=False)
