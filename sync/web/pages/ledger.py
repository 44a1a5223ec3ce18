"""The ledger: the page with search, the export (CSV or JSONL, the same bytes as
``ekinerja-sync ledger export`` with the same filters) and its verification."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func
from sqlmodel import Session, select
from starlette.responses import Response, StreamingResponse

from state import ledger as ledger_chain
from state.ledger import LedgerEntry
from state.store import StateStore
from sync.operations.ledger_export import CSV_COLUMNS, csv_row, jsonl_line
from sync.web import _queries as q
from sync.web._periods import chosen_period, period_choices
from sync.web._words import WIB, wib
from sync.web.console import Console, Page
from sync.web.guard import NIP, NPSN, PERIOD, View, bad

__all__ = ["FIRST_DAY", "LAST_DAY", "LEDGER_PAGE", "PAGES"]

LEDGER_PAGE = 100
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HEAD = re.compile(r"([0-9a-fA-F]{64})@([0-9]{1,12})")
# The days a ledger filter may name: any later or earlier would not fit a datetime once
# turned into UTC (0001-01-01 WIB is in year 0 UTC; the day after 9999-12-31 is year 10000).
FIRST_DAY = dt.date(1, 1, 2)
LAST_DAY = dt.date(9999, 12, 30)


def _day(value: str | None, name: str, *, end_of_day: bool) -> dt.datetime | None:
    """The day ``value`` (YYYY-MM-DD) as the start of that day (or of the next) in WIB;
    ``FieldError`` when it is not a day the ledger can be searched by."""
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise FieldError(name, "bukan tanggal (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise FieldError(
            name,
            f"di luar rentang yang dapat dicari ({FIRST_DAY.isoformat()} sampai "
            f"{LAST_DAY.isoformat()})",
        )
    if end_of_day:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), WIB)


class FieldError(Exception):
    """A filter field that cannot be used: its name and why, in Indonesian."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(why)
        self.name = name
        self.why = why


def _filters(view: View, errors: dict[str, str] | None = None) -> q.LedgerFilters:
    """The page's filters. A bad date goes into ``errors`` (shown beside its field) when
    given, else it ends the request with a 400 page (the export)."""
    days: dict[str, dt.datetime | None] = {}
    for name in ("since", "until"):
        text = view.request.query_params.get(name, "").strip() or None
        try:
            if text is not None and not _DATE.fullmatch(text):
                raise FieldError(name, "bukan tanggal (YYYY-MM-DD)")
            days[name] = _day(text, name, end_of_day=name == "until")
        except FieldError as exc:
            if errors is None:
                raise bad(name, exc.why) from None
            errors[name] = f"Tanggal {exc.why}."
            days[name] = None
    return q.LedgerFilters(
        nip=view.param("nip", NIP, max_len=18),
        npsn=view.param("npsn", NPSN, max_len=16),
        period=view.param("period", PERIOD, max_len=6),
        since=days["since"],
        until=days["until"],
        text=view.param("q", max_len=100),
    )


def ledger(console: Console, view: View) -> Response:
    errors: dict[str, str] = {}
    filters = _filters(view, errors)
    before_text = view.param("before", re.compile(r"[0-9]{1,12}"), max_len=12)
    before = int(before_text) if before_text else None
    entries: list[LedgerEntry] = []
    total = 0
    if not errors:
        entries, total = q.ledger_page(
            console.store.engine, filters, before=before, size=LEDGER_PAGE
        )
    raw = {
        name: view.request.query_params.get(name, "")
        for name in ("nip", "npsn", "period", "since", "until", "q")
    }
    query = {k: v for k, v in raw.items() if v}
    more = None
    if len(entries) == LEDGER_PAGE:
        more = "/ledger?" + urlencode({**query, "before": entries[-1].seq})
    choices = period_choices(console.store)
    return console.render(
        "ledger.html",
        {
            "entries": entries,
            "total": total,
            "f": raw,
            "errors": errors,
            "choices": choices,
            "choice": chosen_period(view, choices, required=False),
            "export_query": urlencode(query),
            "more": more,
            "nav": "ledger",
        },
        view=view,
        status=400 if errors else 200,
    )


def ledger_export(console: Console, view: View) -> Response:
    filters = _filters(view)
    fmt = view.param("format", re.compile(r"csv|jsonl"), max_len=5) or "csv"
    redact = view.param("redact", re.compile(r"[01]"), max_len=1) == "1"
    stamp = console.clock().astimezone(WIB).strftime("%Y%m%d-%H%M%S")
    chunks = _export_chunks(console.store, filters, fmt=fmt, redact=redact)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="ledger-{stamp}.{fmt}"',
        },
    )


def _head_check(session: Session, against: tuple[str, int], count: int) -> tuple[str, str]:
    """How the head an auditor typed compares with the ledger: ("match" | "mismatch" |
    "missing", in words). Apart from the chain's own check: a mistyped head says nothing
    about the chain."""
    digest, n = against
    if n == 0:
        ok = digest == ledger_chain.GENESIS_HASH
        return (
            ("match", "")
            if ok
            else (
                "mismatch",
                "head yang dimasukkan tidak cocok dengan awal ledger (head entri #0: 64 nol)",
            )
        )
    recorded = session.exec(select(LedgerEntry.hash).where(LedgerEntry.seq == n)).first()
    if recorded is None:
        return (
            "missing",
            f"head yang dimasukkan menyebut entri #{n}, tetapi ledger hanya berisi {count} entri",
        )
    if recorded != digest:
        return ("mismatch", f"head yang dimasukkan tidak cocok dengan entri #{n}")
    return ("match", f"head yang dimasukkan cocok dengan entri #{n}")


def ledger_verify(console: Console, view: View) -> Response:
    typed = view.request.query_params.get("against", "").strip()
    against = None
    error = None
    if typed:
        match = _HEAD.fullmatch(typed) if len(typed) <= 80 else None
        if match is None:
            error = "Bentuk head: 64 huruf heksadesimal, @, nomor entri (HASH@N)."
        else:
            against = (match[1].lower(), int(match[2]))
    started = time.monotonic()
    with Session(console.store.engine) as session:
        result = ledger_chain.verify(session)
        count = int(session.exec(select(func.count()).select_from(LedgerEntry)).one())
        head = _head_check(session, against, count) if against is not None else None
    return console.render(
        "verify.html",
        {
            "result": result,
            "against": typed,
            "head": head,
            "errors": {"against": error} if error else {},
            "seconds": round(time.monotonic() - started, 2),
            "checked_at": wib(console.clock()),
            "nav": "verify",
        },
        view=view,
        status=400 if error else 200,
    )


def _export_chunks(
    store: StateStore, filters: q.LedgerFilters, *, fmt: str, redact: bool
) -> Iterator[str]:
    """The export, as ``ekinerja-sync ledger export`` writes it (same columns, same escaping
    of spreadsheet formulas, CSV with a BOM and CRLF), a few hundred entries at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    if fmt == "csv":
        buffer.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
    with Session(store.engine) as session:
        for n, entry in enumerate(q.ledger_entries(session, filters), start=1):
            _write_entry(buffer, writer, entry, fmt=fmt, redact=redact)
            if n % 200 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _write_entry(
    out: io.StringIO, writer: Any, entry: LedgerEntry, *, fmt: str, redact: bool
) -> None:
    if fmt == "csv":
        writer.writerow(csv_row(entry, redacted=redact))
    else:
        out.write(jsonl_line(entry, redacted=redact))


PAGES = (
    Page("/ledger", ledger),
    Page("/ledger/export", ledger_export),
    Page("/ledger/verify", ledger_verify),
)
