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

from sqlmodel import Session
from starlette.responses import Response, StreamingResponse

from state import ledger as ledger_chain
from state.ledger import LedgerEntry
from state.store import StateStore
from sync.operations.ledger_export import CSV_COLUMNS, csv_row, jsonl_line
from sync.web import _queries as q
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
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise bad(name, "bukan tanggal (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise bad(
            name,
            f"di luar rentang yang dapat dicari ({FIRST_DAY.isoformat()} sampai "
            f"{LAST_DAY.isoformat()})",
        )
    if end_of_day:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), WIB)


def _filters(view: View) -> q.LedgerFilters:
    since = view.param("since", _DATE, max_len=10)
    until = view.param("until", _DATE, max_len=10)
    return q.LedgerFilters(
        nip=view.param("nip", NIP, max_len=18),
        npsn=view.param("npsn", NPSN, max_len=16),
        period=view.param("period", PERIOD, max_len=6),
        since=_day(since, "since", end_of_day=False),
        until=_day(until, "until", end_of_day=True),
        text=view.param("q", max_len=100),
    )


def ledger(console: Console, view: View) -> Response:
    filters = _filters(view)
    before_text = view.param("before", re.compile(r"[0-9]{1,12}"), max_len=12)
    before = int(before_text) if before_text else None
    entries, total = q.ledger_page(console.store.engine, filters, before=before, size=LEDGER_PAGE)
    raw = {
        name: view.request.query_params.get(name, "")
        for name in ("nip", "npsn", "period", "since", "until", "q")
    }
    query = {k: v for k, v in raw.items() if v}
    more = None
    if len(entries) == LEDGER_PAGE:
        more = "/ledger?" + urlencode({**query, "before": entries[-1].seq})
    return console.render(
        "ledger.html",
        {
            "entries": entries,
            "total": total,
            "f": raw,
            "export_query": urlencode(query),
            "more": more,
            "nav": "ledger",
        },
        view=view,
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


def ledger_verify(console: Console, view: View) -> Response:
    against_text = view.param("against", _HEAD, max_len=80)
    against = None
    if against_text:
        match = _HEAD.fullmatch(against_text)
        assert match is not None
        against = (match[1].lower(), int(match[2]))
    started = time.monotonic()
    with Session(console.store.engine) as session:
        result = ledger_chain.verify(session, against=against)
    return console.render(
        "verify.html",
        {
            "result": result,
            "against": against_text,
            "seconds": round(time.monotonic() - started, 2),
            "checked_at": wib(console.clock()),
            "nav": "verify",
        },
        view=view,
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
