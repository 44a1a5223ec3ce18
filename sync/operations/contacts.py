"""Managing the school contacts: checked where they enter, saved with a ledger entry each.

- ``import_csv``: a file with the header ``npsn,email,webhook_url`` (the last column may be
  left out; names in any case and order). A cell may hold several addresses separated by
  ``;``, and several rows may name one school: its addresses add up. Each school the file
  names gets exactly the file's addresses (and webhook URL). A bad row is refused with its
  line number and why; the rest of the file still loads.
- ``set_contact`` / ``remove_contact``: one school, from ``schools contacts set``.

An e-mail address is checked for its shape (and never holds a line break: it goes into a mail
header); a webhook URL must be ``https://`` (``http://`` only to this machine's loopback).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlmodel import Session

from mappings.identifiers import check_npsn
from state import schools
from state.store import StateStore
from sync.settings import is_loopback_url

__all__ = [
    "ContactError",
    "ImportResult",
    "RefusedRow",
    "check_email",
    "check_webhook_url",
    "import_csv",
    "parse_csv",
    "remove_contact",
    "set_contact",
]

# A conservative shape: what mail systems accept, nothing that could break a header.
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_SPLIT = re.compile(r"[;\s]+")
MAX_EMAILS = 10
MAX_FILE_BYTES = 5 * 1024 * 1024
COLUMNS = ("npsn", "email", "webhook_url")

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ContactError(ValueError):
    """A contact (or a contacts file) cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class RefusedRow:
    line: int
    why: str


@dataclass
class ImportResult:
    """What an import did: schools per outcome (added, changed, unchanged) and rows refused."""

    changes: list[schools.ContactChange] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for c in self.changes if c.outcome == outcome)


def check_email(value: str) -> str:
    address = value.strip()
    if not _EMAIL.fullmatch(address):
        raise ContactError(f"{address[:80]!r} is not an e-mail address")
    return address


def check_webhook_url(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ContactError(f"{url[:80]!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_url(url):
        raise ContactError(
            "a webhook URL is https:// (http:// only on this machine's loopback): the message "
            "names teachers"
        )
    if parts.username or parts.password:
        raise ContactError("a webhook URL carries no user or password (the message is signed)")
    return url


def _npsn(value: str) -> str:
    npsn = value.strip()
    if (why := check_npsn(npsn)) is not None:
        raise ContactError(why)
    return npsn


def _emails(cell: str) -> list[str]:
    return [check_email(part) for part in _SPLIT.split(cell.strip()) if part]


@dataclass
class _Draft:
    emails: list[str] = field(default_factory=list)
    webhook_url: str | None = None


def parse_csv(text: str) -> tuple[dict[str, _Draft], list[RefusedRow]]:
    """The contacts a file names (NPSN -> addresses, webhook), and the rows refused."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise ContactError("the file is empty: the first line is the header npsn,email") from None
    except csv.Error as exc:
        raise ContactError(f"line 1: {exc}") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or "npsn" not in header or "email" not in header or len(set(header)) < len(header):
        raise ContactError(
            f"line 1 is the header npsn,email,webhook_url (the last may be left out), not "
            f"{','.join(header)[:120]!r}"
        )
    where = {name: header.index(name) for name in header}
    drafts: dict[str, _Draft] = {}
    refused: list[RefusedRow] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            refused.append(RefusedRow(reader.line_num, str(exc)))
            continue
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        line = reader.line_num
        try:
            if len(row) > len(header):
                raise ContactError(f"{len(row)} cells, the header names {len(header)}")
            cells = {name: (row[i] if i < len(row) else "") for name, i in where.items()}
            npsn = _npsn(cells["npsn"])
            emails = _emails(cells["email"])
            hook = cells.get("webhook_url", "").strip()
            webhook = check_webhook_url(hook) if hook else None
            if not emails and webhook is None:
                raise ContactError("no e-mail address and no webhook URL")
            draft = drafts.get(npsn, _Draft())
            if webhook and draft.webhook_url and webhook != draft.webhook_url:
                raise ContactError(f"a second webhook URL for NPSN {npsn} (one per school)")
            merged = draft.emails + [e for e in emails if e not in draft.emails]
            if len(merged) > MAX_EMAILS:
                raise ContactError(f"more than {MAX_EMAILS} addresses for NPSN {npsn}")
        except ContactError as exc:
            refused.append(RefusedRow(line, str(exc)))
            continue
        draft.emails = merged
        draft.webhook_url = webhook or draft.webhook_url
        drafts[npsn] = draft
    return drafts, refused


def import_csv(store: StateStore, text: str, *, actor: str, clock: Clock = _utcnow) -> ImportResult:
    """Load a contacts file: each school it names gets exactly its addresses and webhook (a
    change written to the ledger); refused rows are reported, the rest loads."""
    drafts, refused = parse_csv(text)
    result = ImportResult(refused=refused)
    with store.unit_of_work() as session:
        for npsn, draft in sorted(drafts.items()):
            result.changes.append(
                schools.save_contact(
                    session,
                    npsn,
                    emails=draft.emails,
                    webhook_url=draft.webhook_url,
                    actor=actor,
                    at=clock(),
                    how="import",
                )
            )
    return result


def set_contact(
    store: StateStore,
    npsn: str,
    *,
    emails: Sequence[str] | None,
    webhook_url: str | None,
    keep_webhook: bool,
    actor: str,
    clock: Clock = _utcnow,
) -> schools.ContactChange:
    """Set one school's contact: ``emails`` replace its addresses (None: keep them); the
    webhook is ``webhook_url`` unless ``keep_webhook``."""
    npsn = _npsn(npsn)
    checked = None if emails is None else [a for e in emails for a in _emails(e)]
    hook = check_webhook_url(webhook_url) if webhook_url else None
    with store.unit_of_work() as session:
        current = session.get(schools.SchoolContact, npsn)
        new_emails = checked if checked is not None else (list(current.emails) if current else [])
        new_hook = (current.webhook_url if current else None) if keep_webhook else hook
        if not new_emails and not new_hook:
            raise ContactError(
                f"NPSN {npsn} would have no e-mail address and no webhook URL: give --email "
                "(or remove the contact with --remove)"
            )
        if len(new_emails) > MAX_EMAILS:
            raise ContactError(f"more than {MAX_EMAILS} addresses")
        return schools.save_contact(
            session, npsn, emails=new_emails, webhook_url=new_hook, actor=actor, at=clock()
        )


def remove_contact(store: StateStore, npsn: str, *, actor: str, clock: Clock = _utcnow) -> bool:
    with store.unit_of_work() as session:
        return schools.remove_contact(session, npsn, actor=actor, at=clock())


def all_contacts(session: Session, npsns: Iterable[str] = ()) -> list[schools.SchoolContact]:
    return schools.contacts(session, list(npsns))
