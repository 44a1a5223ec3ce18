"""How a ledger entry is exported and shown, one place for the CLI and the web console alike.

CSV opens cleanly in a spreadsheet (a cell a spreadsheet could run gets a leading apostrophe,
per OWASP's CSV-injection guidance: ``safe_cell``; times in UTC as hashed and in WIB); JSONL
holds each entry exactly as hashed, so an export can be checked with another tool. ``redact``
masks personal names, nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from typing import Any

from state import ledger
from state.ledger import LedgerEntry

__all__ = [
    "CSV_COLUMNS",
    "WIB",
    "csv_row",
    "export_record",
    "jsonl_line",
    "mask_name",
    "pretty_json",
    "redact",
    "safe_cell",
    "wib_time",
]

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")
CSV_COLUMNS = ("seq", "at", "time_wib", *ledger.HASHED_FIELDS[2:], "hash")
# What a spreadsheet would run as a formula (= + - @), as a DDE command (|) or a macro
# reference (%), once any leading blanks and control characters are skipped; full-width and
# other compatibility forms (＝ ＋ － ＠ ｜ ％) count as their plain characters (NFKC).
_TRIGGERS = frozenset("=+-@|%")


def mask_name(name: str) -> str:
    """``"Siti Aminah"`` -> ``"S*** A***"``: the initials stay, the rest is masked."""
    return " ".join(f"{word[0]}***" for word in name.split())


def redact(record: dict[str, Any]) -> dict[str, Any]:
    """Mask the personal names of an exported record (the employee's, an operator's)."""
    if record.get("employee_name"):
        record["employee_name"] = mask_name(record["employee_name"])
    actor = record.get("actor") or ""
    if actor.startswith("operator:"):
        record["actor"] = "operator:" + mask_name(actor.removeprefix("operator:"))
    return record


def export_record(entry: LedgerEntry, *, redacted: bool = False) -> dict[str, Any]:
    """An entry as exported: the hashed fields in column order (``at`` as hashed) + ``hash``."""
    record = {**ledger.entry_content(entry.model_dump()), "hash": entry.hash}
    return redact(record) if redacted else record


def wib_time(moment: dt.datetime) -> str:
    return moment.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")


def pretty_json(text: str | None, *, missing: str = "") -> str:
    """A stored request or answer body indented for a person (the CLI's ``ledger show``, the
    console's teacher page); a body that is not JSON as it is, ``missing`` for none."""
    if text is None:
        return missing
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def _blank(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def safe_cell(value: Any) -> Any:
    """Neutralise a cell a spreadsheet could run: prefix it with ``'`` (OWASP CSV injection).

    That is a cell starting with a control character (tab, CR, LF, ...), or whose first
    character after any blanks and control characters is one of ``= + - @ | %`` in any
    width. Other cells, and every non-string value, are kept as they are.
    """
    if not isinstance(value, str) or not value:
        return value
    if unicodedata.category(value[0]) in ("Cc", "Cf"):
        return "'" + value
    first = next((c for c in value if not _blank(c)), "")
    if first and unicodedata.normalize("NFKC", first)[:1] in _TRIGGERS:
        return "'" + value
    return value


def csv_row(entry: LedgerEntry, *, redacted: bool = False) -> list[Any]:
    record = export_record(entry, redacted=redacted)
    record["time_wib"] = wib_time(entry.at)
    return [safe_cell(record[column]) for column in CSV_COLUMNS]


def jsonl_line(entry: LedgerEntry, *, redacted: bool = False) -> str:
    record = export_record(entry, redacted=redacted)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
