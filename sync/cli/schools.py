"""``schools``: each school's action list (what only the school can fix before the deadline),
its contacts, and the messages that told it.

- ``schools actions --period P [--npsn N] [--json|--csv] [--send]``
- ``schools contacts import FILE.csv | list | set NPSN ...``
- ``schools messages --period P [--npsn N]``: who was told what, and when.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from sqlmodel import Session

from state.notices import notices_of
from state.store import StateStore
from state.waiting import period_schools
from sync.bootstrap import build_store
from sync.cli.options import NpsnOption, PeriodOption, check_period, console, err_console
from sync.cli.output import EXIT_FAILED, fail
from sync.cli.school_contacts import ActorOption, actor_name, contacts_app
from sync.notify.build import build_notifier, channel_problems
from sync.notify.told import Told, told
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
from sync.settings import ConfigError
from sync.who_acts import ACTOR_LABELS

__all__ = ["schools_app"]

schools_app = typer.Typer(
    help="Each school's action list, its contacts, and the messages that told it.",
    no_args_is_help=True,
)
schools_app.add_typer(contacts_app, name="contacts")

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
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="tell each school whose list changed since its last message (e-mail, "
            "webhook: [notify]); then send what waits in the outbox",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="with --send: say who would be told, send nothing")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """What waits on each school (by who acts: guru, kepala sekolah as penilai, the school's
    operator), the days left to batas_penilaian, and what waits on the dinas instead.
    With --send, each school whose list changed is told (once per change)."""

    period = check_period(period)
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--csv")
    if dry_run and not send:
        raise typer.BadParameter("--dry-run goes with --send", param_hint="--dry-run")
    schools = list(npsn or [])
    store = _store(ctx, period, schools)
    if send:
        _send(ctx, store, period, schools, _today(as_of), actor=actor, dry_run=dry_run)
        return
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


# -- sending and who was told --------------------------------------------------------------


def _send(
    ctx: typer.Context,
    store: StateStore,
    period: str,
    schools: list[str],
    today: dt.date,
    *,
    actor: str | None,
    dry_run: bool,
) -> None:
    settings = ctx.obj.settings()
    for problem in channel_problems(settings):
        err_console.print(f"note: {problem}", highlight=False)
    try:
        with build_notifier(settings, store, actor=actor_name(actor)) as notifier:
            if not notifier.channels:
                fail("no channel to send by: set [notify.smtp] host, or the webhook secret")
            plan = notifier.plan(period, today, schools, dry_run=dry_run)
            sent = None if dry_run else notifier.send_due([period], schools)
    except ConfigError as exc:
        fail(str(exc))
    said = "would be sent (a dry run: nothing written, nothing sent)" if dry_run else "to send"
    console.print(
        f"{period}: {len(plan.messages)} new messages {said}: a school's list changed or "
        f"emptied, or a reminder is due ({plan.superseded} unsent ones replaced)",
        highlight=False,
    )
    for npsn, channel, kind, recipient in plan.messages:
        console.print(f"  {npsn}  {channel:<7}  {kind:<9}  {recipient}", highlight=False)
    if plan.no_contact:
        err_console.print(
            f"{len(plan.no_contact)} schools have something to fix but no contact: "
            f"{', '.join(plan.no_contact)} (`ekinerja-sync schools contacts set NPSN --email ...`)",
            highlight=False,
        )
    if sent is None:
        return
    parts = [f"{o} {n} by {c}" for (c, o), n in sorted(sent.counts.items())]
    console.print(
        f"sent: {', '.join(parts) or 'nothing was due'}; waiting for a later send: {sent.waiting}",
        highlight=False,
    )
    if sent.total("failed") or sent.total("uncertain") or sent.waiting:
        err_console.print(
            "some messages did not go: `ekinerja-sync schools messages --period "
            f"{period}` shows the answers; those waiting go with the next send (or the daemon)",
            highlight=False,
        )
        raise typer.Exit(EXIT_FAILED)


@schools_app.command("messages")
def messages(
    ctx: typer.Context,
    period: PeriodOption,
    npsn: NpsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """The messages the schools were sent (or are to be), newest first, with the answers."""

    period = check_period(period)
    store = build_store(ctx.obj.settings(), create=False)
    with Session(store.engine) as session:
        rows = notices_of(session, period, list(npsn or []))
    if as_json:
        payload = [
            {
                "id": r.id,
                "npsn": r.npsn,
                "channel": r.channel,
                "kind": r.kind,
                "items": r.items,
                "state": r.state,
                "to": r.recipient,
                "content_hash": r.list_hash,
                "message_id": r.message_id,
                "created_at": r.created_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "attempts": r.attempts,
                "answer": r.last_answer,
            }
            for r in rows
        ]
        console.print_json(json.dumps(payload, ensure_ascii=False))
        return
    if not rows:
        console.print(f"No message to a school in {period} yet.")
        return
    table = Table(title=f"Messages to schools, {period} ({len(rows)})", title_justify="left")
    for column in ("time (WIB)", "NPSN", "channel", "kind", "items", "state", "to", "answer"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            (r.finished_at or r.created_at).astimezone(WIB).strftime("%Y-%m-%d %H:%M"),
            r.npsn,
            r.channel,
            r.kind,
            str(r.items),
            r.state,
            r.recipient,
            (r.last_answer or "")[:80],
        )
    console.print(table)


def schools_told(
    store: StateStore, period: str, today: dt.date, npsns: Sequence[str] = ()
) -> list[Told]:
    """Per school: when it was last told, and what changed in its list since (``status``)."""
    return told(store, action_report(store, period, today, npsns), npsns)


def print_told(rows: list[Told]) -> None:
    """The table ``status`` ends with: when each school was last told, what changed since
    (nothing when no school was ever messaged: the dinas does not use messages)."""
    if not any(row.newest_state for row in rows):
        return
    table = Table(
        title="Schools told (their action lists: `ekinerja-sync schools actions`)",
        title_justify="left",
    )
    for column in ("NPSN", "last told (WIB)", "by", "on the list now", "since then", "newest"):
        table.add_column(column)
    for row in rows:
        since = f"+{row.added} new, -{row.resolved} resolved" if row.changed else "no change"
        table.add_row(
            row.npsn,
            row.last_at.astimezone(WIB).strftime("%Y-%m-%d %H:%M") if row.last_at else "never",
            ", ".join(row.channels) or "-",
            str(row.items_now),
            since if row.last_at else "-",
            row.newest_state or "-",
        )
    console.print(table)
