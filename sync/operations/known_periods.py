"""Which periods the state store knows. A period it does not know is an error that lists the
ones it does, never an empty answer ("No failures.", a deadline worked out from the code)
that reads like good news.

A period is known when the source listed it (the listing every run keeps, ``period`` table),
the store holds records of it (read from PMM, or planned for e-Kinerja), or the ledger has
entries of it (an auditor's store may keep the ledger of a period whose records are gone).
The commands that work offline (``status``, ``failures``, ``quarantine``, ``replay``, ``reset``,
``ledger``, ``mappings diff``, ``reconcile``) ask here; ``run`` asks the source itself.
"""

from __future__ import annotations

from sqlalchemy import CompoundSelect, union
from sqlmodel import Session, col, select

from mappings.model import Period
from state.ledger import LedgerEntry
from state.models import ListedPeriod, SourceRecord, SyncRecord
from state.store import StateStore

__all__ = ["UnknownPeriod", "known_periods", "require_known"]


class UnknownPeriod(Exception):
    """A period the state store does not know; the message lists the ones it does."""


def _oldest_first(code: str) -> tuple[int, int, str]:
    try:
        period = Period.parse(code)
    except ValueError:  # not a code this release reads: last
        return (1 << 30, 0, code)
    return (period.start.toordinal(), period.end.toordinal(), code)


def known_periods(store: StateStore) -> list[str]:
    """Every period the source listed, the store holds records of or the ledger names, oldest
    first."""
    query: CompoundSelect[tuple[str | None]] = union(
        select(col(ListedPeriod.code)),
        select(col(SyncRecord.period)).distinct(),
        select(col(SourceRecord.period)).distinct(),
        select(col(LedgerEntry.period)).where(col(LedgerEntry.period).is_not(None)).distinct(),
    )
    with Session(store.engine) as session:
        found = {str(row[0]) for row in session.execute(query)}
    return sorted(found, key=_oldest_first)


def require_known(store: StateStore, code: str, where: str = "--period") -> None:
    """``UnknownPeriod`` naming the known periods unless ``code`` is one of them."""
    known = known_periods(store)
    if code in known:
        return
    if not known:
        raise UnknownPeriod(
            f"{where}: unknown period {code}: the state store knows no period yet (none "
            "listed by PMM, no records): run `ekinerja-sync run` first, or check state.url"
        )
    raise UnknownPeriod(
        f"{where}: unknown period {code}; known: {', '.join(known)} (the periods PMM listed "
        "and those the state store holds records of)"
    )
