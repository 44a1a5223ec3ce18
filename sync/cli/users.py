"""``ekinerja-sync users``: the people who may use the web console, and their roles.

Every change (add, disable, enable, role, passwd) is written to the audit ledger by name and
role, never with password material; disable, role and passwd end the user's sessions at
once. ``list`` shows a name whose logins are backing off after failed attempts.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Engine

from state.login_throttle import login_throttles
from state.users import (
    NAME_PATTERN,
    Role,
    UserError,
    add_user,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
)
from sync.bootstrap import build_store
from sync.cli.options import console
from sync.cli.output import report_error
from sync.operations.ledger_export import wib_time
from sync.web.auth import Passwords, password_problem

__all__ = ["users_app"]

users_app = typer.Typer(
    help=(
        "Web console users: auditor (reads, exports, verifies) or operator (also replays "
        "and discards)."
    ),
    no_args_is_help=True,
)


@contextmanager
def _users(ctx: typer.Context) -> Iterator[Engine]:
    """The state store's engine for a user command; a refused change is one line, exit 1."""
    engine = build_store(ctx.obj.settings(), create=False).engine
    try:
        yield engine
    except UserError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()


def _fail(message: str) -> typer.Exit:
    report_error(message, exit_code=1)
    return typer.Exit(1)


def _read_password(from_stdin: bool, name: str) -> str:
    """The new password of ``name``, typed twice or read from stdin; refused (exit 1) when it
    breaks the rules (``password_problem``)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
        again = typer.prompt("Password again", hide_input=True)
        if password != again:
            raise _fail("the two passwords differ; nothing was changed")
    problem = password_problem(password, name)
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
    """Add a user; asks for the password twice (or reads it with --password-stdin): at least
    12 characters, without the user name."""

    if not NAME_PATTERN.fullmatch(name):
        raise _fail(f"{name!r} is not a user name: 1-64 lowercase letters, digits, '.', '_' or '-'")
    with _users(ctx) as engine:
        if get_user(engine, name) is not None:
            raise _fail(f"user {name!r} exists already")
        add_user(engine, name, role, Passwords().hash(_read_password(password_stdin, name)))
    console.print(f"added {name} ({role.value})", highlight=False)


@users_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every user, with role, creation time, whether disabled, and failed logins."""

    with _users(ctx) as engine:
        users = list_users(engine)
        throttles = login_throttles(engine, [f"user:{user.name}" for user in users])
    now = dt.datetime.now(dt.UTC)
    if not users:
        console.print("No users yet: ekinerja-sync users add NAME --role auditor|operator")
        return
    table = Table(title=f"Console users ({len(users)})", title_justify="left")
    for column in ("name", "role", "created (WIB)", "state", "logins"):
        table.add_column(column)
    for user in users:
        throttle = throttles.get(f"user:{user.name}")
        logins = "-"
        if throttle is not None and throttle.attempts:
            logins = f"{throttle.attempts} recent attempt(s)"
            if throttle.blocked_until is not None and throttle.blocked_until > now:
                until = wib_time(throttle.blocked_until)
                logins = f"backing off until {until} WIB ({throttle.attempts} attempts)"
        table.add_row(
            user.name,
            user.role.value,
            wib_time(user.created_at),
            "disabled" if user.disabled else "active",
            logins,
        )
    console.print(table)


@users_app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the user to disable")],
) -> None:
    """Disable a user: their sessions end at once and they cannot log in."""

    with _users(ctx) as engine:
        set_disabled(engine, name)
    console.print(f"disabled {name}", highlight=False)


@users_app.command("enable")
def enable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the user to enable again")],
) -> None:
    """Enable a disabled user again."""

    with _users(ctx) as engine:
        set_disabled(engine, name, False)
    console.print(f"enabled {name}", highlight=False)


@users_app.command("role")
def role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the user")],
    new_role: Annotated[Role, typer.Option("--role", help="auditor or operator")],
) -> None:
    """Give a user another role; their sessions end at once (they log in again)."""

    with _users(ctx) as engine:
        set_role(engine, name, new_role)
    console.print(f"{name} is now {new_role.value}", highlight=False)


@users_app.command("passwd")
def passwd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the user")],
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="read the password from the first line of stdin"),
    ] = False,
) -> None:
    """Set a user's password (asked twice, or --password-stdin; at least 12 characters,
    without the user name); their sessions end at once and the failed logins counted against
    the name are forgotten."""

    with _users(ctx) as engine:
        if get_user(engine, name) is None:
            raise _fail(f"no user {name!r}")
        set_password(engine, name, Passwords().hash(_read_password(password_stdin, name)))
    console.print(f"new password set for {name}; their sessions have ended", highlight=False)
