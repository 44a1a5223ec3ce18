"""``state.bulk.execute_many`` writes exactly what SQLAlchemy's ``execute`` writes, on SQLite
and PostgreSQL: enums as their names, JSON, aware datetimes through ``UTCDateTime``, None,
non-ASCII text, scalar defaults of columns the rows leave out, and the literals of a
statement (``mark_delivered``'s CASE)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    cast,
    delete,
    insert,
    select,
)
from sqlmodel import Session

from state.bulk import _compile, execute_many, insert_many
from state.canonical import canonical_json
from state.models import (
    DeliveryKind,
    OutboxAction,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store import close_entries, mark_delivered

WIB = dt.timezone(dt.timedelta(hours=7))
T0 = dt.datetime(2025, 6, 30, 23, 59, 58, 123456, tzinfo=WIB)


def _source_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": f"pmm-{i}",
            "period": "2025",
            "npsn": "20100001",
            "nip": f"19800101200501100{i}",
            "schema_version": 2 if i else None,
            "updated_at": T0 + dt.timedelta(seconds=i),
            "cancelled": bool(i % 2),
            "content_hash": f"{i:064x}",
            "body": {"nama": "Dédé Ñurhayati", "nilai": [1, 2.5, None], "i": i},
            "status": SourceStatus.VALID if i else SourceStatus.QUARANTINED,
            "reason_code": None,
            "reason": "alasan: ✓" if i else None,
            "seen_at": T0.astimezone(dt.UTC),
        }
        for i in range(3)
    ]


def _sync_rows() -> list[dict[str, Any]]:
    return [
        {
            "nip": f"19800101200501100{i}",
            "period": "2025",
            "kind": kind,
            "npsn": "20100001",
            "source_id": f"pmm-{i}",
            "assessor_nip": "197001011995011001",
            "status": RecordStatus.PENDING,
            "mapping_version": "2026.2",
            "payload_hash": f"{i:064x}",
            "changed_at": T0,
        }
        for i in range(3)
        for kind in DeliveryKind
    ]


def _outbox_rows() -> list[dict[str, Any]]:
    # state, attempts and the rest are left to the columns' defaults.
    return [
        {
            "nip": f"19800101200501100{i}",
            "period": "2025",
            "kind": DeliveryKind.SKP,
            "action": OutboxAction.CREATE_SKP,
            "body": '{"nama":"Dédé"}',
            "payload_hash": f"{i:064x}",
            "idempotency_key": f"eks-{i}",
            "if_match": None,
            "mapping_version": "2026.2",
            "created_at": T0,
        }
        for i in range(3)
    ]


def _read(engine: Engine, table: Table) -> list[tuple[Any, ...]]:
    columns = [c for c in table.c if c.name != "id"]  # ids are new each time
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(*columns).order_by(*columns[:3]))]


@pytest.mark.parametrize(
    ("model", "rows"),
    [(SourceRecord, _source_rows), (SyncRecord, _sync_rows), (OutboxEntry, _outbox_rows)],
    ids=["source_record", "sync_record", "outbox"],
)
def test_an_insert_writes_what_execute_writes(engine: Engine, model: Any, rows: Any) -> None:
    table: Table = model.__table__
    statement = insert(table)
    with engine.begin() as connection:
        connection.execute(statement, rows())
    expected = _read(engine, table)
    with engine.begin() as connection:
        connection.execute(delete(table))
        insert_many(connection, table, rows())
    assert _read(engine, table) == expected
    assert _compile(statement, engine.dialect, tuple(rows()[0])) is not None  # not the fallback


def test_the_updates_of_delivery_write_what_execute_writes(engine: Engine) -> None:
    now = dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(insert(SyncRecord.__table__), _sync_rows())  # type: ignore[attr-defined]
        connection.execute(insert(OutboxEntry.__table__), _outbox_rows())  # type: ignore[attr-defined]
    with Session(engine) as session:
        ids = list(session.execute(select(OutboxEntry.__table__.c.id)).scalars())  # type: ignore[attr-defined]
        close_entries(
            session,
            [
                {
                    "id": entry_id,
                    "state": OutboxState.DONE,
                    "finished_at": now,
                    "last_status": 201,
                    "last_answer": '{"id_skp":"x"}',
                }
                for entry_id in ids
            ],
        )
        mark_delivered(
            session,
            [
                {
                    "nip": f"19800101200501100{i}",
                    "period": "2025",
                    "kind": DeliveryKind.SKP,
                    # the second changed since it was sent: it stays pending
                    "payload_hash": f"{i:064x}" if i != 1 else "stale",
                    "mapping_version": "2026.2",
                    "skp_id": f"skp-{i}",
                    "skp_version": 1,
                }
                for i in range(3)
            ],
            at=now,
        )
        session.commit()
    with engine.connect() as connection:
        entries = connection.execute(
            select(OutboxEntry.__table__.c["state", "attempts", "finished_at", "last_status"])  # type: ignore[attr-defined]
        ).all()
        skps = connection.execute(
            select(SyncRecord.__table__.c["nip", "status", "skp_id", "delivered_at"])  # type: ignore[attr-defined]
            .where(SyncRecord.__table__.c.kind == DeliveryKind.SKP)  # type: ignore[attr-defined]
            .order_by(SyncRecord.__table__.c.nip)  # type: ignore[attr-defined]
        ).all()
    assert [tuple(row) for row in entries] == [(OutboxState.DONE, 1, now, 201)] * 3
    assert [(row.status, row.skp_id, row.delivered_at) for row in skps] == [
        (RecordStatus.DELIVERED, "skp-0", now),
        (RecordStatus.PENDING, "skp-1", now),
        (RecordStatus.DELIVERED, "skp-2", now),
    ]


def test_a_default_computed_per_row_is_left_to_execute(engine: Engine) -> None:
    table = Table(
        "bulk_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("name", String(16)),
        Column("made", String(16), default=lambda: "per-row"),
    )
    table.create(engine)
    statement = insert(table)
    assert _compile(statement, engine.dialect, ("name",)) is None
    with engine.begin() as connection:
        execute_many(connection, statement, [{"name": "a"}, {"name": "b"}])
    with engine.connect() as connection:
        assert sorted(connection.execute(select(table.c.name, table.c.made))) == [
            ("a", "per-row"),
            ("b", "per-row"),
        ]


def test_rows_go_in_in_their_order(engine: Engine) -> None:
    """Outbox ids are given in the order of the rows (delivery order follows them)."""
    rows = [
        {**_outbox_rows()[0], "nip": f"1980010120050110{i:02d}", "idempotency_key": f"k{i}"}
        for i in reversed(range(60))
    ]
    with engine.begin() as connection:
        insert_many(connection, OutboxEntry.__table__, rows)  # type: ignore[attr-defined]
        table = OutboxEntry.__table__  # type: ignore[attr-defined]
        nips = list(connection.execute(select(table.c.nip).order_by(table.c.id)).scalars())
    assert nips == [row["nip"] for row in rows]


def test_an_update_naming_one_key_twice_applies_both_rows(engine: Engine) -> None:
    """Each row is one execution, as with ``execute``: a key named twice is changed twice."""
    with engine.begin() as connection:
        connection.execute(insert(OutboxEntry.__table__), _outbox_rows()[:1])  # type: ignore[attr-defined]
    now = dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC)
    with Session(engine) as session:
        (entry_id,) = session.execute(select(OutboxEntry.__table__.c.id)).scalars()  # type: ignore[attr-defined]
        row = {"id": entry_id, "state": OutboxState.DONE, "finished_at": now}
        close_entries(
            session,
            [{**row, "last_status": status, "last_answer": "{}"} for status in (500, 201)],
        )
        session.commit()
    with engine.connect() as connection:
        table = OutboxEntry.__table__  # type: ignore[attr-defined]
        assert connection.execute(select(table.c.attempts, table.c.last_status)).one() == (2, 201)


def test_json_columns_hold_canonical_json(engine: Engine) -> None:
    """A source record's body is stored as its canonical JSON (``make_engine``'s serializer,
    orjson's speed) and read back as the value written, on both databases."""
    rows = _source_rows()
    with engine.begin() as connection:
        insert_many(connection, SourceRecord.__table__, rows)  # type: ignore[attr-defined]
        table = SourceRecord.__table__  # type: ignore[attr-defined]
        stored = connection.execute(
            select(table.c.id, cast(table.c.body, Text), table.c.body).order_by(table.c.id)
        ).all()
    assert [(text, body) for _, text, body in stored] == [
        (canonical_json(row["body"]), row["body"]) for row in rows
    ]
