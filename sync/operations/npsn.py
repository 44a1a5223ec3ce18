"""Is an NPSN one the sync can act on? Checked before a command runs on it, so a typo is an
error naming it instead of a run that reads nothing and reports success.

An NPSN is 8 digits or capital letters (``20212345``, ``P1234567``, ``K7654321``); nothing
more is assumed of its structure. ``run`` asks the source which schools it serves; the
commands that work offline (``status``, ``replay``, ``reset``) can only ask the state store
what it has read from the source, and say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import union
from sqlmodel import Session, col, select

from connectors.pmm import PmmClient
from state.models import Cursor, SourceRecord, SyncRecord
from state.store import StateStore

__all__ = ["NpsnError", "check_format", "check_in_source", "check_in_store"]

_NPSN = re.compile(r"[0-9A-Z]{8}")


class NpsnError(Exception):
    """An NPSN the command cannot act on; the message names it and where it was looked up."""


def check_format(npsns: Iterable[str], where: str = "--npsn") -> None:
    bad = [n for n in npsns if not _NPSN.fullmatch(n)]
    if bad:
        raise NpsnError(
            f"{where}: {', '.join(repr(n) for n in bad)} "
            f"{'is not an NPSN' if len(bad) == 1 else 'are not NPSNs'} "
            "(8 digits or capital letters, e.g. 20212345 or P1234567)"
        )


def check_in_source(source: PmmClient, npsns: Sequence[str], where: str = "--npsn") -> None:
    """Every NPSN must be a school the source serves (one walk of its school list)."""
    check_format(npsns, where)
    if not npsns:
        return
    served = {str(school.get("npsn")) for school in source.schools()}
    unknown = [n for n in npsns if n not in served]
    if unknown:
        raise NpsnError(
            f"{where}: PMM serves no school with NPSN {', '.join(unknown)} "
            f"(it serves {len(served)} schools): check the number"
        )


def check_in_store(
    store: StateStore, npsns: Sequence[str], period: str | None, where: str = "--npsn"
) -> None:
    """Every NPSN must be a school the state store has read from the source (for ``period``,
    or any period); offline commands cannot ask the source."""
    check_format(npsns, where)
    if not npsns:
        return
    queries = []
    for table in (Cursor, SourceRecord, SyncRecord):
        query = select(col(table.npsn)).where(col(table.npsn).in_(list(npsns)))
        if period is not None:
            query = query.where(col(table.period) == period)
        queries.append(query)
    with Session(store.engine) as session:
        known = {row[0] for row in session.execute(union(*queries))}
    unknown = [n for n in npsns if n not in known]
    if unknown:
        scope = f"of {period}" if period else "of any period"
        raise NpsnError(
            f"{where}: the state store holds no records {scope} for NPSN "
            f"{', '.join(unknown)} (checked against the state store, which knows the schools "
            "`run` has read from PMM, not against PMM): check the number, or run first"
        )
