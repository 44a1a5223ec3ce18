"""School contacts: where a school's action list is sent (PMM serves no e-mail address).

``SchoolContact``: one row per school (NPSN): one or more e-mail addresses and, optionally, a
webhook URL. Every change (set, replaced by an import, removed) is written to the audit ledger
in the same transaction as the change, naming who made it; an import that changes nothing
writes nothing. A webhook URL may carry a token in its path (many chat and automation hooks
do), so the ledger keeps its origin and a fingerprint, never the URL itself
(``webhook_fingerprint``).

Plain functions over the caller's ``Session``; the caller commits. What is a valid address
is ``sync.operations.contacts``'s business: this module stores what it is given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the table)
from state import ledger
from state.types import UTCDateTime

__all__ = [
    "ContactChange",
    "SchoolContact",
    "contacts",
    "remove_contact",
    "save_contact",
    "webhook_fingerprint",
]


class SchoolContact(SQLModel, table=True):
    """Where one school is told: its e-mail addresses (a list) and a webhook URL, or none."""

    __tablename__ = "school_contact"

    npsn: str = Field(primary_key=True, max_length=16)
    emails: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    webhook_url: str | None = Field(default=None, sa_column=Column(Text))
    changed_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    changed_by: str = Field(max_length=128)


@dataclass(frozen=True, slots=True)
class ContactChange:
    """What a save did: ``added``, ``changed``, ``unchanged`` or ``removed``."""

    npsn: str
    outcome: str
    emails: tuple[str, ...]
    webhook_url: str | None


def webhook_fingerprint(url: str | None) -> str:
    """``https://hooks.example.org/… (sha256 1a2b3c4d5e6f)``: the URL's origin and the start
    of its SHA-256, enough to tell two URLs apart without writing a token down."""
    if not url:
        return "none"
    parts = urlsplit(url)
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/… (sha256 {digest})"


def _detail(emails: Sequence[str], webhook_url: str | None) -> str:
    return f"e-mail: {', '.join(emails) or 'none'}; webhook: {webhook_fingerprint(webhook_url)}"


def contacts(session: Session, npsns: Sequence[str] = ()) -> list[SchoolContact]:
    """Every school's contact (or those of ``npsns``), by NPSN."""
    query = select(SchoolContact).order_by(col(SchoolContact.npsn))
    if npsns:
        query = query.where(col(SchoolContact.npsn).in_(list(npsns)))
    return list(session.exec(query))


def save_contact(
    session: Session,
    npsn: str,
    *,
    emails: Sequence[str],
    webhook_url: str | None,
    actor: str,
    at: dt.datetime,
    how: str = "set",
) -> ContactChange:
    """Set a school's contact to exactly ``emails`` and ``webhook_url``; a change is written
    to the ledger (action ``contact_<how>``: ``set`` or ``import``) with the old and new
    values, in the caller's transaction. The same values again change and write nothing."""
    row = session.get(SchoolContact, npsn)
    new = (list(emails), webhook_url or None)
    if row is not None and (list(row.emails), row.webhook_url) == new:
        return ContactChange(npsn, "unchanged", tuple(emails), webhook_url or None)
    before = "none" if row is None else _detail(row.emails, row.webhook_url)
    outcome = "added" if row is None else "changed"
    if row is None:
        row = SchoolContact(npsn=npsn, changed_at=at, changed_by=actor)
    row.emails, row.webhook_url = new
    row.changed_at, row.changed_by = at, actor
    session.add(row)
    session.flush()
    _write(
        session, actor, f"contact_{how}", npsn, f"{outcome}: {_detail(*new)} (was: {before})", at
    )
    return ContactChange(npsn, outcome, tuple(emails), webhook_url or None)


def remove_contact(session: Session, npsn: str, *, actor: str, at: dt.datetime) -> bool:
    """Remove a school's contact (the ledger keeps what it was); False when it had none."""
    row = session.get(SchoolContact, npsn)
    if row is None:
        return False
    detail = f"removed (was: {_detail(row.emails, row.webhook_url)})"
    session.delete(row)
    session.flush()
    _write(session, actor, "contact_remove", npsn, detail, at)
    return True


def _write(session: Session, actor: str, action: str, npsn: str, detail: str, at: Any) -> None:
    ledger.append(
        session,
        ledger.LedgerEvent(actor=actor, action=action, outcome="done", npsn=npsn, detail=detail),
        at=at,
    )
