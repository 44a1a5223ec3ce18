"""``ekinerja-sync ledger``: read, export and verify the append-only audit ledger.

Every command here only reads: ``show`` (a teacher's, a school's or a period's history),
``export`` (CSV for a spreadsheet, JSONL for tools), ``verify`` (the hash chain, optionally
against a head written down earlier) and ``head`` (the hash and count to write down);
``prove``, ``check-proof`` and ``check-seal`` (one teacher's proof under a period's seal, a
seal and the earlier one it extends) are in ``proofs``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text
from sqlmodel import Session

from mappings.model import Period
from state import ledger
from state.ledger import LedgerEntry
from sync.bootstrap import build_store
from sync.cli.options import console, err_console
from sync.cli.progress import progress_bars
from sync.cli.proofs import check_proof_command, check_seal_command, prove
from sync.operations.known_periods import require_known
from sync.operations.ledger_export import (
    CSV_COLUMNS,
    WIB,
    csv_row,
    export_record,
    jsonl_line,
    pretty_json,
    wib_time,
)

__all__ = ["ledger_app"]

ledger_app = typer.Typer(
    help=(
        "The audit ledger: what was sent to e-Kinerja, when, under which mapping version, "
        "and what it answered; append-only and hash-chained."
    ),
    no_args_is_help=True,
)

# Asia/Jakarta keeps UTC+7 all year (no daylight saving since 1964): a fixed offset needs no
# time-zone database on the server.
_HEAD = re.compile(r"([0-9a-fA-F]{64})@([0-9]+)")
# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): = + - @, tab, CR.

NipFilter = Annotated[str | None, typer.Option("--nip", help="one employee (18-digit NIP)")]
NpsnFilter = Annotated[str | None, typer.Option("--npsn", help="one school (NPSN)")]
PeriodFilter = Annotated[
    str | None, typer.Option("--period", "-p", help="a year (2026) or a semester (2024-2)")
]
SinceFilter = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="from this date or time, inclusive: 2025-01-01 (midnight WIB) or RFC 3339 "
        "(2025-01-01T08:00:00+07:00)",
    ),
]
UntilFilter = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="up to this date (the whole day, WIB) or RFC 3339 time (exclusive)",
    ),
]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class _Filters:
    nip: str | None
    npsn: str | None
    period: str | None
    since: dt.datetime | None
    until: dt.datetime | None

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("NIP", self.nip),
                ("NPSN", self.npsn),
                ("period", self.period),
                ("since", self.since and self.since.astimezone(WIB).isoformat()),
                ("until", self.until and self.until.astimezone(WIB).isoformat()),
            )
            if value
        ]
        return ", ".join(parts) or "no filter"


def _instant(value: str | None, option: str, *, end_of_day: bool) -> dt.datetime | None:
    """A date (midnight WIB; with ``end_of_day`` the next midnight) or an RFC 3339 time (a
    time without an offset is read as WIB)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end_of_day else 0)
            moment = dt.datetime.combine(day, dt.time(), WIB)
        else:
            moment = dt.datetime.fromisoformat(value)
            moment = moment.replace(tzinfo=WIB) if moment.tzinfo is None else moment
        moment.astimezone(dt.UTC)  # the ledger keeps UTC: the first and last day cannot be
    except OverflowError:
        raise typer.BadParameter(
            f"{value!r} is outside what the ledger can hold (0001-01-02 to 9999-12-30)",
            param_hint=option,
        ) from None
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (2025-01-31) or an RFC 3339 time (2025-01-31T08:00:00+07:00)",
            param_hint=option,
        ) from None
    return moment


def _filters(
    nip: str | None, npsn: str | None, period: str | None, since: str | None, until: str | None
) -> _Filters:
    if period is not None:
        try:
            Period.parse(period)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--period") from None
    return _Filters(
        nip=nip,
        npsn=npsn,
        period=period,
        since=_instant(since, "--since", end_of_day=False),
        until=_instant(until, "--until", end_of_day=True),
    )


@contextmanager
def _reading(ctx: typer.Context, period: str | None = None) -> Iterator[Session]:
    """A read-only session on the state store of the settings (one snapshot on PostgreSQL)."""

    settings = ctx.obj.settings()
    # No store there: an error naming the path (opening it would create an empty store whose
    # empty ledger "verifies"); see build_store.
    store = build_store(settings, create=False)
    try:
        if period is not None:  # a period it does not know lists those it does, not "0 entries"
            require_known(store, period)
        with Session(store.engine) as session:
            if store.engine.dialect.name == "postgresql":
                session.connection().exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
            yield session  # never committed; closing it ends the transaction
    finally:
        store.engine.dispose()


def _err(message: str) -> None:

    err_console.print(message, markup=False, highlight=False)


def _entries(session: Session, filters: _Filters, limit: int | None) -> Iterator[LedgerEntry]:
    return ledger.query(
        session,
        nip=filters.nip,
        npsn=filters.npsn,
        period=filters.period,
        since=filters.since,
        until=filters.until,
        limit=limit,
    )


# -- show ------------------------------------------------------------------------------------


@ledger_app.command()
def show(
    ctx: typer.Context,
    nip: NipFilter = None,
    npsn: NpsnFilter = None,
    period: PeriodFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many entries")] = None,
    full: Annotated[
        bool, typer.Option("--full", help="also print each request and answer body")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON (every field)")] = False,
) -> None:
    """Entries, oldest first: who sent what, when, and what e-Kinerja answered.

    Times are shown in WIB (Asia/Jakarta, UTC+7). --full adds each request and answer body.
    """
    filters = _filters(nip, npsn, period, since, until)
    with _reading(ctx, filters.period) as session:
        if as_json:
            out = typer.get_text_stream("stdout")
            out.write("[")
            for n, entry in enumerate(_entries(session, filters, limit)):
                out.write(
                    ("," if n else "") + "\n" + json.dumps(export_record(entry), ensure_ascii=False)
                )
            out.write("\n]\n")
            return
        entries = list(_entries(session, filters, limit))
    if not entries:
        _err(f"No ledger entries match ({filters.describe()}).")
        return
    _print_table(entries, filters)
    if full:
        for entry in entries:
            _print_bodies(entry)


def _print_table(entries: list[LedgerEntry], filters: _Filters) -> None:

    table = Table(
        title=f"Ledger: {len(entries)} entries ({filters.describe()}); times in WIB (UTC+7)",
        title_justify="left",
        box=box.SIMPLE,
    )
    for column, justify in (
        ("#", "right"),
        ("time (WIB)", "left"),
        ("actor", "left"),
        ("action", "left"),
        ("outcome", "left"),
        ("period", "left"),
        ("NPSN", "left"),
        ("NIP", "left"),
        ("kind", "left"),
        ("mapping", "left"),
        ("HTTP", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in entries:
        cells = (
            str(e.seq),
            wib_time(e.at),
            e.actor,
            e.action,
            e.outcome,
            e.period,
            e.npsn,
            e.nip,
            e.kind,
            e.mapping_version,
            str(e.http_status) if e.http_status is not None else None,
        )
        table.add_row(*(Text(cell or "") for cell in cells))  # Text: data is never markup
    console.print(table)


def _print_bodies(entry: LedgerEntry) -> None:

    lines = [
        f"#{entry.seq}  {wib_time(entry.at)} WIB  {entry.actor}  {entry.action} -> {entry.outcome}",
        f"  run {entry.run_id or '-'}, idempotency key {entry.idempotency_key or '-'}, "
        f"{entry.duration_ms if entry.duration_ms is not None else '-'} ms, hash {entry.hash}",
    ]
    if entry.employee_name:
        lines.append(f"  employee: {entry.employee_name}")
    if entry.detail:
        lines.append(f"  detail: {entry.detail}")
    lines.append("  request as sent:")
    lines.append(_indent(pretty_json(entry.request_body, missing="(none)")))
    status = f" (HTTP {entry.http_status})" if entry.http_status is not None else ""
    lines.append(f"  answer{status}:")
    lines.append(_indent(pretty_json(entry.answer_body, missing="(none)")))
    console.print("\n".join(lines) + "\n", markup=False, highlight=False, soft_wrap=True)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


# -- export ----------------------------------------------------------------------------------


@ledger_app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[
        ExportFormat,
        typer.Option("--format", "-f", help="csv (for a spreadsheet) or jsonl (for tools)"),
    ] = ExportFormat.CSV,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="write here (default: stdout)")
    ] = None,
    redact: Annotated[
        bool,
        typer.Option("--redact", help='mask personal names ("Siti Aminah" -> "S*** A***")'),
    ] = False,
    nip: NipFilter = None,
    npsn: NpsnFilter = None,
    period: PeriodFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
) -> None:
    """Export entries to CSV (for a spreadsheet) or JSONL (for tools), oldest first.

    CSV opens cleanly in a spreadsheet: UTF-8 with a BOM, a header row, one row per entry,
    times in UTC (`at`, as hashed) and WIB (`time_wib`); a cell that a spreadsheet would run
    as a formula starts with an apostrophe. JSONL holds each entry exactly as hashed, so an
    export can be checked with another tool (docs/auditors/index.md, "Checking with your own tool").
    """

    filters = _filters(nip, npsn, period, since, until)
    with (
        _reading(ctx, filters.period) as session,
        _open_output(output, bom=fmt is ExportFormat.CSV) as out,
        progress_bars(err_console) as progress,
    ):
        entries = _counted(_entries(session, filters, None), progress)
        if fmt is ExportFormat.CSV:
            count = _write_csv(out, entries, redact=redact)
        else:
            count = _write_jsonl(out, entries, redact=redact)
    if output is not None:
        _err(f"exported {count} ledger entries ({filters.describe()}) to {output}")


def _counted(
    entries: Iterator[LedgerEntry], progress: Callable[[str, int], None] | None
) -> Iterator[LedgerEntry]:
    for entry in entries:
        yield entry
        if progress is not None:
            progress("export", 1)


@contextmanager
def _open_output(output: Path | None, *, bom: bool) -> Iterator[IO[str]]:
    """UTF-8 text with no newline translation (CSV rows end in CRLF, as RFC 4180 says)."""
    encoding = "utf-8-sig" if bom else "utf-8"
    if output is not None:
        with output.open("w", encoding=encoding, newline="") as handle:
            yield handle
        return
    stream = io.TextIOWrapper(
        typer.get_binary_stream("stdout"), encoding=encoding, newline="", write_through=True
    )
    try:
        yield stream
        stream.flush()
    finally:
        stream.detach()  # leave stdout open for whoever owns it


def _write_csv(out: IO[str], entries: Iterator[LedgerEntry], *, redact: bool) -> int:
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for entry in entries:
        writer.writerow(csv_row(entry, redacted=redact))
        count += 1
    return count


def _write_jsonl(out: IO[str], entries: Iterator[LedgerEntry], *, redact: bool) -> int:
    count = 0
    for entry in entries:
        out.write(jsonl_line(entry, redacted=redact))
        count += 1
    return count


# -- verify and head -------------------------------------------------------------------------


def _parse_head(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    match = _HEAD.fullmatch(value.strip())
    if match is None:
        raise typer.BadParameter(
            f"{value!r} is not HASH@N (64 hex digits, '@', the count), as `ledger head` prints",
            param_hint="--against",
        )
    return match[1].lower(), int(match[2])


@ledger_app.command()
def verify(
    ctx: typer.Context,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="HASH@N",
            help="a head written down earlier (`ledger head`): entry N must still have HASH",
        ),
    ] = None,
) -> None:
    """Check that no entry was edited, removed, inserted or reordered.

    Exit 0: every entry is as written ("ledger OK: N entries, head HASH"). Exit 1: names the
    first bad entry and what is wrong with it ("ledger BROKEN at entry #N: ...").
    """
    head = _parse_head(against)
    with _reading(ctx) as session:
        result = ledger.verify(session, against=head)
    if result.ok:
        typer.echo(f"ledger OK: {result.count} entries, head {result.head_hash}")
        if head is not None:
            typer.echo(f"matches the head written down: entry #{head[1]} is {head[0]}")
        if result.count == 0:
            _err("note: the ledger is empty: is this the right state store?")
        return
    typer.echo(f"ledger BROKEN at entry #{result.bad_seq}: {result.problem}")
    if result.count:
        typer.echo(
            f"the chain holds from entry #1 to #{result.count} "
            f"(head {result.head_hash}@{result.count})"
        )
    raise typer.Exit(1)


@ledger_app.command()
def head(ctx: typer.Context) -> None:
    """Print the ledger's head as HASH@COUNT, to write down outside the database.

    Later, `ledger verify --against HASH@COUNT` proves the first COUNT entries are unchanged.
    """
    with _reading(ctx) as session:
        digest, count = ledger.head(session)
    typer.echo(f"{digest}@{count}")


ledger_app.command("prove")(prove)
ledger_app.command("check-proof")(check_proof_command)
ledger_app.command("check-seal")(check_seal_command)
