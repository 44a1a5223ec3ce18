"""``schools contacts``: where each school's action list goes (``import``, ``list``, ``set``);
every change is written to the ledger (``sync.operations.contacts``)."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from sqlmodel import Session

from state.schools import webhook_fingerprint
from state.store import StateStore
from sync.bootstrap import build_store
from sync.cli.options import NpsnOption, console, err_console
from sync.cli.output import EXIT_FAILED, fail
from sync.operations.contacts import (
    MAX_FILE_BYTES,
    ContactError,
    all_contacts,
    import_csv,
    remove_contact,
    set_contact,
)
from sync.operations.school_actions import WIB

__all__ = ["ActorOption", "actor_name", "contacts_app"]

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who does it (for the ledger); default: you")
]


def actor_name(actor: str | None) -> str:
    """``operator:<name>``: ``--actor``, else the user running the command."""
    return f"operator:{(actor or getpass.getuser()).removeprefix('operator:')}"


contacts_app = typer.Typer(
    help="Where each school's action list goes: e-mail addresses and a webhook URL per NPSN.",
    no_args_is_help=True,
)


def _contacts_store(ctx: typer.Context) -> StateStore:
    return build_store(ctx.obj.settings(), create=False)


@contacts_app.command("import")
def contacts_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header npsn,email[,webhook_url]")],
    actor: ActorOption = None,
) -> None:
    """Load contacts from a CSV file (header npsn,email,webhook_url; the last column may be
    left out; several addresses in a cell separated by ';'). Each school the file names gets
    exactly its addresses; a bad row is refused with its line number and the rest loads
    (exit code 1 then). Every change is written to the ledger."""

    try:
        if file.stat().st_size > MAX_FILE_BYTES:
            fail(f"{file} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not a contacts file")
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{file} does not exist")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text: save it as CSV UTF-8")
    except OSError as exc:
        fail(f"{file} cannot be read: {exc.strerror}")
    store = _contacts_store(ctx)
    try:
        result = import_csv(store, text, actor=actor_name(actor))
    except ContactError as exc:
        fail(f"{file}: {exc}")
    console.print(
        f"contacts of {len(result.changes)} schools read from {file}: "
        f"{result.count('added')} added, {result.count('changed')} changed, "
        f"{result.count('unchanged')} unchanged",
        highlight=False,
    )
    for row in result.refused:
        err_console.print(f"line {row.line} refused: {row.why}", highlight=False)
    if result.refused:
        err_console.print(
            f"{len(result.refused)} rows refused; correct them and import the file again",
            highlight=False,
        )
        raise typer.Exit(EXIT_FAILED)


@contacts_app.command("list")
def contacts_list(
    ctx: typer.Context,
    npsn: NpsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Every school's contact (a webhook URL shown by its origin and a fingerprint: it may
    hold a token)."""

    store = _contacts_store(ctx)
    with Session(store.engine) as session:
        rows = all_contacts(session, npsn or [])
    if as_json:
        payload = [
            {
                "npsn": r.npsn,
                "emails": list(r.emails),
                "webhook": webhook_fingerprint(r.webhook_url) if r.webhook_url else None,
                "changed_at": r.changed_at.isoformat(),
                "changed_by": r.changed_by,
            }
            for r in rows
        ]
        console.print_json(json.dumps(payload, ensure_ascii=False))
        return
    if not rows:
        console.print("No school contacts yet: `ekinerja-sync schools contacts import FILE.csv`.")
        return
    table = Table(title=f"School contacts ({len(rows)})", title_justify="left", box=box.SIMPLE)
    for column in ("NPSN", "e-mail", "webhook", "changed (WIB)", "by"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.npsn,
            "\n".join(r.emails) or "-",
            webhook_fingerprint(r.webhook_url) if r.webhook_url else "-",
            r.changed_at.astimezone(WIB).strftime("%Y-%m-%d %H:%M"),
            r.changed_by,
        )
    console.print(table)


@contacts_app.command("set")
def contacts_set(
    ctx: typer.Context,
    npsn: Annotated[str, typer.Argument(metavar="NPSN", help="the school")],
    email: Annotated[
        list[str] | None,
        typer.Option("--email", help="an address (repeatable); replaces the school's addresses"),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="https URL that gets the list as JSON")
    ] = None,
    no_webhook: Annotated[bool, typer.Option("--no-webhook", help="drop the webhook URL")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="remove the school's contact")] = False,
    actor: ActorOption = None,
) -> None:
    """Set one school's contact (what is not given is kept), or remove it. Written to the
    ledger."""

    store = _contacts_store(ctx)
    who = actor_name(actor)
    if remove:
        if email or webhook_url or no_webhook:
            raise typer.BadParameter("--remove takes no other option", param_hint="--remove")
        if not remove_contact(store, npsn, actor=who):
            fail(f"NPSN {npsn} has no contact", EXIT_FAILED)
        console.print(f"contact of {npsn} removed")
        return
    if webhook_url and no_webhook:
        raise typer.BadParameter("give --webhook-url or --no-webhook", param_hint="--no-webhook")
    if not email and not webhook_url and not no_webhook:
        raise typer.BadParameter("give --email, --webhook-url, --no-webhook or --remove")
    try:
        change = set_contact(
            store,
            npsn,
            emails=email or None,
            webhook_url=webhook_url,
            keep_webhook=not (webhook_url or no_webhook),
            actor=who,
        )
    except ContactError as exc:
        fail(str(exc))
    hook = webhook_fingerprint(change.webhook_url) if change.webhook_url else "no webhook"
    console.print(
        f"contact of {npsn} {change.outcome}: {', '.join(change.emails) or 'no e-mail'}; {hook}",
        highlight=False,
    )
