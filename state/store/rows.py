"""Writes of many rows at once (Core statements, no ORM object per row): what the set-based
ingest and delivery write a page or a batch at a time."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, Update, bindparam, case, func, literal, null, update
from sqlmodel import Session, SQLModel

from state.bulk import execute_many, insert_many
from state.models import OutboxEntry, RecordStatus, SyncRecord
from state.store.prepared import connection_of

_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]


def insert_rows(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """INSERTs of plain rows, one executemany (no ORM object or bulk-ORM step per row)."""
    if rows:
        session.flush()  # what the session holds goes first, as ``session.execute`` would
        insert_many(session.connection(), model.__table__, rows)  # type: ignore[attr-defined]


def update_rows(
    session: Session, model: type[SQLModel], keys: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """UPDATEs by primary key, one executemany for the lot: each row names its key columns
    and the columns it sets; every row sets the same columns."""
    if not rows:
        return
    statement = _update_by_key(model.__table__, tuple(keys))  # type: ignore[attr-defined]
    params = [
        {(f"key_{name}" if name in keys else name): value for name, value in row.items()}
        for row in rows
    ]
    session.flush()  # what the session holds goes first, as ``session.execute`` would
    execute_many(session.connection(), statement, params)


@functools.cache
def _update_by_key(table: Table, keys: tuple[str, ...]) -> Update:
    return update(table).where(*(table.c[key] == bindparam(f"key_{key}") for key in keys))


@functools.cache
def _close_entries() -> Update:
    """The statement of ``close_entries`` (built once: building it costs more than a row)."""
    t = _OUTBOX
    return (
        update(t)
        .where(t.c.id == bindparam("key_id"))
        .values(
            state=bindparam("new_state"),
            finished_at=bindparam("new_finished_at"),
            attempts=t.c.attempts + 1,
            last_status=bindparam("new_last_status"),
            last_answer=bindparam("new_last_answer"),
        )
    )


@functools.cache
def _mark_delivered() -> Update:
    """The statement of ``mark_delivered``, built once."""
    t = _SYNC
    current = t.c.payload_hash == bindparam("sent_hash")
    return (
        update(t)
        .where(
            t.c.nip == bindparam("key_nip"),
            t.c.period == bindparam("key_period"),
            t.c.kind == bindparam("key_kind"),
        )
        .values(
            skp_id=func.coalesce(bindparam("new_skp_id", type_=t.c.skp_id.type), t.c.skp_id),
            skp_version=func.coalesce(
                bindparam("new_skp_version", type_=t.c.skp_version.type), t.c.skp_version
            ),
            delivered_hash=bindparam("sent_hash"),
            delivered_mapping_version=bindparam("sent_mapping_version"),
            delivered_at=bindparam("at", type_=t.c.delivered_at.type),
            changed_at=bindparam("at", type_=t.c.changed_at.type),
            status=case(
                (current, literal(RecordStatus.DELIVERED, t.c.status.type)), else_=t.c.status
            ),
            reason=case((current, null()), else_=t.c.reason),
            reason_code=case((current, null()), else_=t.c.reason_code),
        )
    )


def close_entries(session: Session | Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Close outbox entries after an answer, one executemany: each row gives ``id``,
    ``state``, ``finished_at``, ``last_status`` and ``last_answer``; ``attempts`` counts one
    more in the statement itself (nothing is read first)."""
    if not rows:
        return
    execute_many(
        connection_of(session),
        _close_entries(),
        [
            {
                "key_id": row["id"],
                "new_state": row["state"],
                "new_finished_at": row["finished_at"],
                "new_last_status": row["last_status"],
                "new_last_answer": row["last_answer"],
            }
            for row in rows
        ],
    )


def mark_delivered(
    session: Session | Connection, rows: Sequence[dict[str, Any]], *, at: dt.datetime
) -> None:
    """Record what the target accepted, one executemany: each row gives the deliverable's key
    (``nip``, ``period``, ``kind``), the ``payload_hash`` and ``mapping_version`` sent, and the
    ``skp_id`` and ``skp_version`` the target answered (None: keep the known ones).

    The deliverable becomes delivered unless its source changed meanwhile (a newer payload is
    planned: it stays as it is, to be sent). Decided in the statement, so nothing is read
    first and a change committed by another worker in between is not overwritten."""
    if not rows:
        return
    execute_many(
        connection_of(session),
        _mark_delivered(),
        [
            {
                "key_nip": row["nip"],
                "key_period": row["period"],
                "key_kind": row["kind"],
                "sent_hash": row["payload_hash"],
                "sent_mapping_version": row["mapping_version"],
                "new_skp_id": row["skp_id"],
                "new_skp_version": row["skp_version"],
                "at": at,
            }
            for row in rows
        ],
    )
