"""The stored source records (PMM's rows as read), in the caller's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from state.models import SourceRecord, SourceStatus
from state.store.heads import SourceHead

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
    def hashes(session: Session, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """{id: (content_hash, nip)} of the stored source records among ``ids``: all the
        ingest needs to tell new, changed and unchanged rows apart (no body is read)."""
        if not ids:
            return {}
        table = _SOURCE
        rows = session.execute(
            sa_select(table.c.id, table.c.content_hash, table.c.nip).where(
                table.c.id.in_(list(ids))
            )
        )
        return {row.id: (row.content_hash, row.nip) for row in rows}

    @staticmethod
    def heads(session: Session, period: str, nips: Collection[str]) -> dict[str, list[SourceHead]]:
        """Every stored source record of these teachers in the period (all schools), without
        the bodies: what choosing the effective record needs (``bodies`` reads the body of
        the one chosen when it is not at hand)."""
        found: dict[str, list[SourceHead]] = defaultdict(list)
        if not nips:
            return found
        table = _SOURCE
        query = sa_select(
            table.c.id,
            table.c.nip,
            table.c.updated_at,
            table.c.cancelled,
            table.c.status,
            table.c.seen_at,
        ).where(table.c.period == period, table.c.nip.in_(list(nips)))
        for row in session.execute(query):
            found[row.nip].append(
                SourceHead(
                    row.id,
                    row.nip,
                    row.updated_at,
                    bool(row.cancelled),
                    SourceStatus(row.status),
                    row.seen_at,
                )
            )
        return found

    @staticmethod
    def bodies(session: Session, ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """{id: body} of the stored source records among ``ids``."""
        if not ids:
            return {}
        table = _SOURCE
        rows = session.execute(sa_select(table.c.id, table.c.body).where(table.c.id.in_(list(ids))))
        return {row.id: row.body for row in rows}
