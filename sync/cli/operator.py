"""Operator commands: find what failed, read why, replay it; see the quarantine."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlmodel import Session

from connectors.errors import FatalError, RetriableError
from mappings.model import Period
from state import ledger
from state.models import DeliveryKind, RecordStatus, SourceRecord, SyncRecord
from state.store import StateStore
from sync.bootstrap import build_app, build_store
from sync.cli.options import check_period, console, err_console
from sync.cli.output import EXIT_FAILED, EXIT_UNREACHABLE, fail
from sync.cli.progress import progress_bars
from sync.operations import actions
from sync.operations.actions import failure_id
from sync.operations.known_periods import require_known
from sync.operations.ledger_export import wib_time
from sync.operations.npsn import check_in_store
from sync.pipeline.engine import ReplayOutcome

__all__ = ["discard", "failures_app", "quarantine_app", "replay", "reset"]

failures_app = typer.Typer(
    help="Records e-Kinerja refused for good, or locked.", no_args_is_help=True
)
quarantine_app = typer.Typer(
    help="Source records with bad data, kept out of the sync.", no_args_is_help=True
)


def _period_code(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Period.parse(value).code
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None


PeriodFilter = Annotated[
    str | None,
    typer.Option(
        "--period",
        "-p",
        metavar="PERIOD",
        help="a year (2026) or a semester (2024-2)",
        callback=_period_code,
    ),
]
NpsnFilter = Annotated[
    list[str] | None, typer.Option("--npsn", metavar="NPSN", help="school (repeatable)")
]
ReasonFilter = Annotated[
    str | None,
    typer.Option("--reason", help="the answer's code (e.g. NIP_TIDAK_DITEMUKAN) or words of it"),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print as JSON")]


def parse_failure_id(value: str) -> tuple[str, str, DeliveryKind]:
    try:
        return actions.parse_failure_id(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (see `ekinerja-sync failures list`)") from None


def _store(ctx: typer.Context, period: str | None = None) -> StateStore:
    """The state store; with ``period``, one it knows (else an error listing those it does)."""
    store = build_store(ctx.obj.settings(), create=False)
    if period is not None:
        require_known(store, period)
    return store


def _record_json(r: SyncRecord) -> dict[str, Any]:
    return {
        "id": failure_id(r),
        "period": r.period,
        "npsn": r.npsn,
        "nip": r.nip,
        "kind": r.kind.value,
        "status": r.status.value,
        "reason_code": r.reason_code,
        "reason": r.reason,
        "changed_at": r.changed_at.isoformat() if r.changed_at else None,
    }


@failures_app.command("list")
def failures_list(
    ctx: typer.Context,
    period: PeriodFilter = None,
    npsn: NpsnFilter = None,
    reason: ReasonFilter = None,
    as_json: JsonFlag = False,
) -> None:
    """Dead (failed) and locked records, with the reason."""

    rows = _store(ctx, period).reports.failures(
        period=period, npsns=list(npsn or []), reason=reason
    )
    if as_json:
        console.print_json(json.dumps([_record_json(r) for r in rows]))
        return
    if not rows:
        console.print("No failures.")
        return
    table = Table(title=f"Failures ({len(rows)})", title_justify="left")
    for column in ("ID", "NPSN", "status", "code", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(failure_id(r), r.npsn, r.status.value, r.reason_code or "", r.reason or "")
    console.print(table)
    console.print(
        "Read one: ekinerja-sync failures show ID; after the fix: ekinerja-sync replay ID"
    )


@failures_app.command("show")
def failures_show(
    ctx: typer.Context,
    failure: Annotated[str, typer.Argument(help="ID from `failures list`")],
    as_json: JsonFlag = False,
) -> None:
    """One failure: the record, the reason, the request as sent, every answer."""

    period, nip, kind = parse_failure_id(failure)
    store = _store(ctx, period)
    record = store.reports.record(period, nip, kind)
    if record is None:
        fail(f"No record {failure} in the state store.", 1)
    requests = store.reports.outbox_of(period, nip, kind)
    attempts = _attempts(store, record)
    if as_json:
        payload = _record_json(record) | {
            "requests": [
                {
                    "action": e.action.value,
                    "state": e.state.value,
                    "idempotency_key": e.idempotency_key,
                    "body": json.loads(e.body),
                    "attempts": e.attempts,
                    "last_status": e.last_status,
                    "last_answer": e.last_answer,
                }
                for e in requests
            ],
            "attempts": attempts,
        }
        console.print_json(json.dumps(payload))
        return
    console.print(f"[bold]{failure_id(record)}[/bold]  school {record.npsn}")
    console.print(f"status: {record.status.value}   code: {record.reason_code or '-'}")
    console.print(f"reason: {record.reason or '-'}", highlight=False)
    if requests:
        last = requests[-1]
        console.print(f"\nrequest as sent ({last.action.value}, key {last.idempotency_key}):")
        console.print_json(last.body)
    if attempts:
        table = Table(title="Every attempt; times in WIB (UTC+7)", title_justify="left")
        for column in ("time (WIB)", "action", "outcome", "HTTP", "answer"):
            table.add_column(column, overflow="fold")
        for a in attempts:
            table.add_row(
                wib_time(dt.datetime.fromisoformat(a["at"])),
                a["action"],
                a["outcome"],
                str(a["http_status"] or ""),
                a["answer"] or "",
            )
        console.print(table)
    else:
        table = Table(title="Requests", title_justify="left")
        for column in ("action", "state", "attempts", "HTTP", "last answer"):
            table.add_column(column, overflow="fold")
        for e in requests:
            table.add_row(
                e.action.value,
                e.state.value,
                str(e.attempts),
                str(e.last_status or ""),
                e.last_answer or "",
            )
        console.print(table)


def _attempts(store: StateStore, record: SyncRecord) -> list[dict[str, Any]]:
    """Every attempt the ledger holds for the record (empty without a ledger)."""
    with Session(store.engine) as session:
        return [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "outcome": e.outcome,
                "http_status": e.http_status,
                "answer": e.answer_body,
            }
            for e in ledger.query(session, nip=record.nip, period=record.period)
            if e.kind == record.kind.value
        ]


def replay(
    ctx: typer.Context,
    ids: Annotated[
        list[str] | None, typer.Argument(help="failure IDs from `failures list`")
    ] = None,
    period: PeriodFilter = None,
    npsn: NpsnFilter = None,
    reason: ReasonFilter = None,
    all_: Annotated[bool, typer.Option("--all", help="every failed record")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed")] = False,
    actor: Annotated[
        str | None, typer.Option("--actor", help="who replays (for the ledger); default: you")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay failed records: read them from PMM again, then the normal pipeline.

    Choose them by ID, or by --period [--npsn] [--reason], or --all.
    """

    chosen_by = sum([bool(ids), bool(period), all_])
    if chosen_by != 1 or ((npsn or reason) and not period):
        raise typer.BadParameter(
            "give failure IDs, or --period [--npsn] [--reason], or --all (one of them)"
        )
    settings = ctx.obj.settings()
    who = actor or f"operator:{getpass.getuser()}"
    with build_app(settings, actor=who, create_store=False) as application:
        store = application.store
        if period is not None:
            require_known(store, period)
        check_in_store(store, list(npsn or []), period)
        if ids:
            targets = []
            for value in ids:
                parsed = parse_failure_id(value)
                require_known(store, parsed[0], value)
                record = store.reports.record(*parsed)
                if record is None:
                    fail(f"No record {value} in the state store.", 1)
                targets.append(record)
        else:
            targets = store.reports.failures(
                period=period,
                npsns=list(npsn or []),
                reason=reason,
                statuses=(RecordStatus.FAILED,),
            )
        locked = [t for t in targets if t.status is not RecordStatus.FAILED]
        targets = [t for t in targets if t.status is RecordStatus.FAILED]
        for t in locked:
            err_console.print(
                f"{failure_id(t)} is {t.status.value}, not failed: replay cannot help "
                f"({t.reason or ''})",
                highlight=False,
            )
        if not targets:
            console.print("Nothing to replay.")
            return
        if not dry_run:
            try:  # a closed period takes a replay from two operators, a sealed one none
                actions.require_replayable(store, targets)
            except actions.PeriodLocked as exc:
                fail(exc.message, EXIT_FAILED)
        with progress_bars(err_console) as progress:
            try:
                outcomes = application.engine.replay(
                    targets, actor=who, dry_run=dry_run, progress=progress
                )
            except FatalError as exc:  # e.g. credentials refused
                fail(exc.message, 1)
            except RetriableError as exc:  # PMM's: replay reads the schools again first
                fail(
                    f"PMM ({settings.source.base_url}) did not answer: {exc.message}; the replay "
                    "stopped: run it again once PMM answers",
                    EXIT_UNREACHABLE,
                    problem="source_unreachable",
                )
        outage = application.engine.deliverer.outage
    _print_replay(outcomes, dry_run=dry_run, as_json=as_json)
    if outage:
        fail(
            f"e-Kinerja ({settings.target.base_url}) was unreachable ({outage}); the "
            "replayed records stay pending and go on the next run",
            EXIT_UNREACHABLE,
            problem="target_unreachable",
        )


def _print_replay(outcomes: list[ReplayOutcome], *, dry_run: bool, as_json: bool) -> None:

    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "id": f"{o.period}/{o.nip}/{o.kind.value}",
                        "before": o.before.value,
                        "after": o.after.value if o.after else None,
                        "reason": o.reason,
                    }
                    for o in outcomes
                ]
            )
        )
        return
    table = Table(title="Replay" + (" (dry run)" if dry_run else ""), title_justify="left")
    for column in ("ID", "was", "now", "reason"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        now = o.after.value if o.after else "-"
        table.add_row(f"{o.period}/{o.nip}/{o.kind.value}", o.before.value, now, o.reason or "")
    console.print(table)


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    period: PeriodFilter = None,
    npsn: NpsnFilter = None,
    reason: ReasonFilter = None,
    as_json: JsonFlag = False,
) -> None:
    """Source records kept out for bad data, with the reason; fix them in PMM/Dapodik and the
    next run reads them again."""

    rows: list[SourceRecord] = _store(ctx, period).reports.quarantine(
        period=period, npsns=list(npsn or []), reason=reason
    )
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "source_id": q.id,
                        "period": q.period,
                        "npsn": q.npsn,
                        "nip": q.nip,
                        "code": q.reason_code,
                        "reason": q.reason,
                    }
                    for q in rows
                ]
            )
        )
        return
    if not rows:
        console.print("Nothing in quarantine.")
        return
    table = Table(title=f"Quarantine ({len(rows)})", title_justify="left")
    for column in ("period", "NPSN", "NIP", "code", "reason", "source id"):
        table.add_column(column, overflow="fold")
    for q in rows:
        table.add_row(q.period, q.npsn, q.nip, q.reason_code or "", q.reason or "", q.id)
    console.print(table)


def _who(actor: str | None) -> str:
    return (actor or getpass.getuser()).removeprefix("operator:")


ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who does it (for the ledger); default: you")
]


def discard(
    ctx: typer.Context,
    failure: Annotated[str, typer.Argument(help="failure ID from `failures list`")],
    why: Annotated[str, typer.Option("--why", help="why it is not to be sent (for the ledger)")],
    actor: ActorOption = None,
) -> None:
    """Stop chasing a failed record without sending it (written to the ledger)."""

    period = parse_failure_id(failure)[0]
    try:
        row = actions.discard(_store(ctx, period), failure, user_name=_who(actor), why=why)
    except actions.ActionRefused as exc:
        fail(exc.message, 1)
    console.print(f"{failure_id(row)}: {row.status.value} ({row.reason})", highlight=False)


def reset(
    ctx: typer.Context,
    period: Annotated[
        str, typer.Option("--period", "-p", help="a year (2026) or a semester (2024-2)")
    ],
    npsn: NpsnFilter = None,
    actor: ActorOption = None,
) -> None:
    """Forget where reading PMM stopped, so the next run reads the period's records again from
    the start (e.g. after PMM restored data); written to the ledger. Nothing is re-sent
    unless it changed."""

    store = _store(ctx, check_period(period))
    check_in_store(store, list(npsn or []), period)
    try:
        schools = actions.reset_cursors(store, period, list(npsn or []), user_name=_who(actor))
    except actions.PeriodLocked as exc:
        fail(exc.message, EXIT_FAILED)
    console.print(
        f"{period}: reading starts again from the beginning for {len(schools)} school(s)"
        + (f": {', '.join(schools)}" if schools else ""),
        highlight=False,
    )
