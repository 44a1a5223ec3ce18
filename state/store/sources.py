"""The stored source records (PMM's rows as read), in the caller's transaction."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlmodel import Session, col, select

from state.models import SourceRecord, SourceStatus
from state.store.heads import SourceHead
from state.store.prepared import IdList, Prepared, connection_of, prepare

__all__ = ["Sources"]

_SOURCE: Table = SourceRecord.__table__  # type: ignore[attr-defined]


class Sources:
    """Reads of the stored source records: whole rows, content hashes, heads, bodies."""

    @staticmethod
    def records(session: Session, ids: Collection[str]) -> dict[str, SourceRecord]:
        """{id: row} of the stored source records among ``ids``."""
        if not ids:
            return {}
        rows = session.exec(select(SourceRecord).where(col(SourceRecord.id).in_(list(ids))))
        return {row.id: row for row in rows}

    @staticmethod
    def hashes(session: Session | Connection, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """{id: (content_hash, nip)} of the stored source records among ``ids``: all the
        ingest needs to tell new, changed and unchanged rows apart (no body is read)."""
        if not ids:
            return {}
        connection = connection_of(session)
        rows = _hashes(connection.dialect).run(connection, ids=list(ids))
        return {id_: (content_hash, nip) for id_, content_hash, nip in rows}

    @staticmethod
    def heads(
        session: Session | Connection, period: str, nips: Collection[str]
    ) -> dict[str, list[SourceHead]]:
        """Every stored source record of these teachers in the period (all schools), without
        the bodies: what choosing the effective record needs (``bodies`` reads the body of
        the one chosen when it is not at hand)."""
        found: dict[str, list[SourceHead]] = defaultdict(list)
        if not nips:
            return found
        connection = connection_of(session)
        rows = _heads(connection.dialect).run(connection, period=period, nips=list(nips))
        for id_, nip, updated_at, cancelled, status, seen_at in rows:
            found[nip].append(
                SourceHead(id_, nip, updated_at, bool(cancelled), SourceStatus(status), seen_at)
            )
        return found

    @staticmethod
    def bodies(session: Session | Connection, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """{id: body} of the stored source records among ``ids``."""
        if not ids:
            return {}
        connection = connection_of(session)
        rows = _bodies(connection.dialect).run(connection, ids=list(ids))
        return {id_: body for id_, body in rows}


# The lookups of the ingest and of planning, one prepared statement each (a page's ids as one
# parameter: ``state.store.prepared``).


@functools.lru_cache(maxsize=64)
def _hashes(dialect: Dialect) -> Prepared:
    t = _SOURCE.c
    return prepare(
        dialect,
        "SELECT id, content_hash, nip FROM source_record WHERE {in:id:ids}",
        {"ids": IdList("text")},
        [t.id.type, t.content_hash.type, t.nip.type],
    )


@functools.lru_cache(maxsize=64)
def _heads(dialect: Dialect) -> Prepared:
    t = _SOURCE.c
    names = ("id", "nip", "updated_at", "cancelled", "status", "seen_at")
    return prepare(
        dialect,
        f"SELECT {', '.join(names)} FROM source_record"  # noqa: S608
        " WHERE period = :period AND {in:nip:nips}",
        {"period": t.period.type, "nips": IdList("text")},
        [t[name].type for name in names],
    )


@functools.lru_cache(maxsize=64)
def _bodies(dialect: Dialect) -> Prepared:
    t = _SOURCE.c
    return prepare(
        dialect,
        "SELECT id, body FROM source_record WHERE {in:id:ids}",
        {"ids": IdList("text")},
        [t.id.type, t.body.type],
    )
