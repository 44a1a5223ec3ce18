"""``schools``: each school's action list (what only the school can fix before the deadline),
its contacts, and the messages that told it.

- ``schools actions --period P [--npsn N] [--json|--csv] [--send]``
- ``schools contacts import FILE.csv | list | set NPSN ...``
- ``schools messages --period P [--npsn N]``: who was told what, and when.
"""

from __future__ import annotations

import csv
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from sqlmodel import Session

from state.schools import webhook_fingerprint
from state.store import StateStore
from state.waiting import period_schools
from sync.bootstrap import build_store
from sync.cli.options import NpsnOption, PeriodOption, check_period, console, err_console
from sync.cli.output import EXIT_FAILED, fail
from sync.operations.contacts import (
    MAX_FILE_BYTES,
    ContactError,
    all_contacts,
    import_csv,
    remove_contact,
    set_contact,
)
from sync.operations.deadline import today_in_jakarta
from sync.operations.ledger_export import safe_cell
from sync.operations.npsn import check_in_store
from sync.operations.school_actions import (
    WIB,
    ActionItem,
    ActionReport,
    SchoolActions,
    action_report,
    date_words,
    days_left_words,
)
from sync.who_acts import ACTOR_LABELS

__all__ = ["schools_app"]

schools_app = typer.Typer(
    help="Each school's action list, its contacts, and the messages that told it.",
    no_args_is_help=True,
)

CSV_COLUMNS = (
    "period",
    "npsn",
    "school_name",
    "deadline",
    "days_left",
    "who",
    "nip",
    "name",
    "kind",
    "code",
    "todo",
    "since",
)


def _store(ctx: typer.Context, period: str, npsns: list[str]) -> StateStore:
    store = build_store(ctx.obj.settings(), create=False)
    check_in_store(store, npsns, period)
    with Session(store.engine) as session:
        known = period_schools(session, period)
    if not known:
        fail(
            f"the state store holds no records of {period}: run `ekinerja-sync run --period "
            f"{period}` first",
            problem="period",
        )
    return store


def _today(as_of: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(as_of) if as_of else today_in_jakarta()
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of"
        ) from None


def print_school(school: SchoolActions) -> None:
    """One school's list, in Bahasa Indonesia (what the school itself is sent)."""
    title = school.school_name or f"NPSN {school.npsn}"
    console.print(
        f"[bold]{title}[/bold] (NPSN {school.npsn}), periode {school.period}: batas penilaian "
        f"{date_words(school.deadline)}, {days_left_words(school.days_left)}",
        highlight=False,
    )
    for actor, items in school.groups():
        table = Table(
            title=ACTOR_LABELS[actor], title_justify="left", box=box.SIMPLE, show_edge=False
        )
        for column in ("Nama", "NIP", "Yang harus dilakukan", "Menunggu sejak"):
            table.add_column(column, overflow="fold")
        for item in items:
            table.add_row(
                item.name or "-",
                item.nip or "-",
                item.todo,
                date_words(item.since.astimezone(WIB).date()),
            )
        console.print(table)


def print_dinas(items: tuple[ActionItem, ...]) -> None:
    if not items:
        return
    table = Table(
        title=f"For the dinas, not the schools ({len(items)}): failures to decide, held "
        "penilaian, records no school can fix",
        title_justify="left",
    )
    for column in ("NPSN", "name", "NIP", "kind", "code", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(item.npsn, item.name, item.nip, item.kind, item.code, item.advice)
    console.print(table)


def write_csv(report: ActionReport, out: object) -> int:
    """The lists as CSV (the dinas's rows with ``who`` = ``dinas``); cells a spreadsheet
    would run are neutralised (``safe_cell``, as the ledger export does). Returns rows."""
    writer = csv.writer(out)  # type: ignore[arg-type]
    writer.writerow(CSV_COLUMNS)
    rows = 0
    names = {s.npsn: s.school_name for s in report.schools}
    for school in report.schools:
        for item in school.items:
            writer.writerow(
                safe_cell(v) for v in _csv_row(report, school.school_name, item, item.todo)
            )
            rows += 1
    for item in report.dinas:
        writer.writerow(
            safe_cell(v) for v in _csv_row(report, names.get(item.npsn, ""), item, item.advice)
        )
        rows += 1
    return rows


def _csv_row(report: ActionReport, school_name: str, item: ActionItem, todo: str) -> list[object]:
    return [
        report.period,
        item.npsn,
        school_name,
        report.deadline.isoformat(),
        report.days_left,
        item.actor.value,
        item.nip,
        item.name,
        item.kind,
        item.code,
        todo,
        item.since.astimezone(WIB).strftime("%Y-%m-%d %H:%M"),
    ]


@schools_app.command("actions")
def actions(
    ctx: typer.Context,
    period: PeriodOption,
    npsn: NpsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="print as CSV (a spreadsheet opens it safely)")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="the date to count the days left from (WIB)")
    ] = None,
) -> None:
    """What waits on each school (by who acts: guru, kepala sekolah as penilai, the school's
    operator), the days left to batas_penilaian, and what waits on the dinas instead."""

    period = check_period(period)
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--csv")
    schools = list(npsn or [])
    store = _store(ctx, period, schools)
    report = action_report(store, period, _today(as_of), schools)
    if as_json:
        console.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    if as_csv:
        write_csv(report, sys.stdout)
        return
    if not report.schools:
        console.print(
            f"Nothing waits on a school in {period}"
            + (f" (NPSN {', '.join(schools)})" if schools else "")
            + "."
        )
    for school in report.schools:
        print_school(school)
        console.print()
    print_dinas(report.dinas)


# -- contacts ------------------------------------------------------------------------------

contacts_app = typer.Typer(
    help="Where each school's action list goes: e-mail addresses and a webhook URL per NPSN.",
    no_args_is_help=True,
)
schools_app.add_typer(contacts_app, name="contacts")

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who makes the change (for the ledger); default: you")
]


def _actor(actor: str | None) -> str:
    return f"operator:{(actor or getpass.getuser()).removeprefix('operator:')}"


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
        result = import_csv(store, text, actor=_actor(actor))
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
    who = _actor(actor)
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
