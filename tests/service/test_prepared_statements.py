"""The prepared statements (``state.store.prepared``) write and read what the ORM and Core
statements they replace did, byte for byte, on both databases (issue 28).

The statements as they were (an ORM ``UPDATE`` with an IN list for the claim, Core
``SELECT``s for the page, the delivery contexts and the source lookups, a batch of answers
written in a session) are kept here as the reference. The claim is compared column by column
in its stored text (a UTC timestamp written from an aware time in another offset included);
the reads are compared value by value and type by type; and the same world is run through
the reference and through the prepared path on two fresh stores: every stored column of the
outbox, the deliverables, the source records and the ledger is the same (timestamps, made of
the time of each run, in the same form), and both ledgers verify.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, insert, literal, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from connectors.sandbox import generate_world
from state import ledger
from state.db import make_engine
from state.models import (
    DeliveryKind,
    OutboxAction,
    OutboxEntry,
    OutboxState,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.schema import upgrade
from state.store import (
    DeliverableHead,
    Deliverables,
    Outbox,
    OutboxHead,
    SourceHead,
    Sources,
    StateStore,
)
from state.store.claims import Claims, _claim
from state.store.heads import DELIVERABLE_HEAD_COLUMNS, OUTBOX_HEAD_COLUMNS
from state.types import UTCDateTime
from sync.delivery.answers import AnswerWriter
from tests.service.harness import InProcessSandbox, app_for

Box = Callable[..., InProcessSandbox]
PERIOD = "2026"
T0 = dt.datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)
WIB = dt.timezone(dt.timedelta(hours=7))
LEASE = dt.timedelta(minutes=5, microseconds=7)
_OUTBOX: Table = OutboxEntry.__table__  # type: ignore[attr-defined]
_SYNC: Table = SyncRecord.__table__  # type: ignore[attr-defined]
_SOURCE: Table = SourceRecord.__table__  # type: ignore[attr-defined]

# -- the statements as they were (the reference) -------------------------------------------


def _orm_claim(
    engine: Engine, entry_ids: Collection[int], worker: str, *, now: dt.datetime, lease: Any
) -> set[int]:
    ids = list(entry_ids)
    with Session(engine) as session:
        taken = session.execute(
            update(OutboxEntry)
            .values(claimed_by=worker, claimed_until=now + lease)
            .where(
                col(OutboxEntry.id).in_(ids),
                col(OutboxEntry.state) == OutboxState.PENDING,
                or_(
                    col(OutboxEntry.claimed_until).is_(None),
                    col(OutboxEntry.claimed_until) < now,
                    col(OutboxEntry.claimed_by) == worker,
                ),
            )
            .returning(col(OutboxEntry.id))
        )
        mine = set(taken.scalars())
        session.commit()
    return mine


def _core_pending_page(
    session: Session | Connection,
    period: str,
    npsns: Sequence[str] = (),
    *,
    kind: DeliveryKind,
    assessors: bool | None = None,
    after_id: int = 0,
    up_to_id: int | None = None,
    limit: int = 500,
) -> list[OutboxHead]:
    o, r = _OUTBOX, _SYNC
    query = (
        sa_select(*(o.c[name] for name in OUTBOX_HEAD_COLUMNS), r.c.npsn)
        .join(r, (r.c.nip == o.c.nip) & (r.c.period == o.c.period) & (r.c.kind == o.c.kind))
        .where(
            o.c.state == OutboxState.PENDING,
            o.c.period == period,
            o.c.kind == kind,
            o.c.id > after_id,
        )
        .order_by(o.c.id)
        .limit(limit)
    )
    if npsns:
        query = query.where(r.c.npsn.in_(list(npsns)))
    if up_to_id is not None:
        query = query.where(o.c.id <= up_to_id)
    if assessors is not None:
        penilai = r.alias("penilai")
        is_penilai = (
            sa_select(literal(1))
            .where(penilai.c.period == period, penilai.c.assessor_nip == o.c.nip)
            .exists()
        )
        query = query.where(is_penilai if assessors else ~is_penilai)
    return [OutboxHead(*row) for row in session.execute(query)]


def _core_deliverable_heads(
    session: Session | Connection, period: str, nips: Collection[str]
) -> dict[tuple[str, DeliveryKind], DeliverableHead]:
    if not nips:
        return {}
    t = _SYNC
    query = sa_select(*(t.c[name] for name in DELIVERABLE_HEAD_COLUMNS)).where(
        t.c.period == period, t.c.nip.in_(list(nips))
    )
    heads = (DeliverableHead(*row) for row in session.execute(query))
    return {(head.nip, head.kind): head for head in heads}


def _core_hashes(session: Session | Connection, ids: Collection[str]) -> dict[str, Any]:
    if not ids:
        return {}
    t = _SOURCE
    rows = session.execute(
        sa_select(t.c.id, t.c.content_hash, t.c.nip).where(t.c.id.in_(list(ids)))
    )
    return {row.id: (row.content_hash, row.nip) for row in rows}


def _core_source_heads(
    session: Session | Connection, period: str, nips: Collection[str]
) -> dict[str, list[SourceHead]]:
    found: dict[str, list[SourceHead]] = defaultdict(list)
    if not nips:
        return found
    t = _SOURCE
    query = sa_select(
        t.c.id, t.c.nip, t.c.updated_at, t.c.cancelled, t.c.status, t.c.seen_at
    ).where(t.c.period == period, t.c.nip.in_(list(nips)))
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


def _core_bodies(session: Session | Connection, ids: Collection[str]) -> dict[str, Any]:
    if not ids:
        return {}
    t = _SOURCE
    rows = session.execute(sa_select(t.c.id, t.c.body).where(t.c.id.in_(list(ids))))
    return {row.id: row.body for row in rows}


def _reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store reads and claims through the reference statements."""

    def claim_entries(self: Claims, entry_ids: Collection[int], worker: str, **kw: Any) -> set[int]:
        kw.pop("orphaned", None)  # no other worker in these runs
        return _orm_claim(self.engine, entry_ids, worker, **kw)

    monkeypatch.setattr(Claims, "claim_entries", claim_entries)
    # A batch of answers was written in a session (the same Core statements).
    monkeypatch.setattr(AnswerWriter, "_batch_transaction", lambda self: self.store.unit_of_work())
    monkeypatch.setattr(Outbox, "pending_page", staticmethod(_core_pending_page))
    monkeypatch.setattr(Deliverables, "heads", staticmethod(_core_deliverable_heads))
    monkeypatch.setattr(Sources, "hashes", staticmethod(_core_hashes))
    monkeypatch.setattr(Sources, "heads", staticmethod(_core_source_heads))
    monkeypatch.setattr(Sources, "bodies", staticmethod(_core_bodies))


# -- stores ----------------------------------------------------------------------------------


@pytest.fixture
def second_url(state_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Another fresh, empty store of the same kind as ``state_url``."""
    if state_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    databases = request.getfixturevalue("_pg_databases")
    name = databases.take()
    try:
        yield f"{state_url.rsplit('/', 1)[0]}/{name}"
    finally:
        databases.give_back(name)


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def _raw(engine: Engine, table: Table, order: str) -> list[dict[str, Any]]:
    """Every row as stored: the text SQLite holds; on PostgreSQL each column ``::text``, a
    timestamp (held as a number) as its instant in UTC to the microsecond."""
    postgres = engine.dialect.name == "postgresql"
    names = [c.name for c in table.columns]

    def as_text(column: Any) -> str:
        if not postgres:
            return str(column.name)
        if isinstance(column.type, UTCDateTime):  # every digit of the instant, in UTC
            return f"to_char({column.name} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        return f"{column.name}::text"

    columns = ", ".join(as_text(c) for c in table.columns)
    with engine.connect() as connection:
        sql = f"SELECT {columns} FROM {table.name} ORDER BY {order}"  # noqa: S608 (names)
        rows = connection.exec_driver_sql(sql)
        return [dict(zip(names, row, strict=True)) for row in rows]


# -- the claim -------------------------------------------------------------------------------


def _entries(engine: Engine, group: str, n: int) -> list[int]:
    with engine.begin() as connection:
        connection.execute(
            insert(_OUTBOX),
            [
                {
                    "nip": f"1980010120050110{i:02d}",
                    "period": f"{group}",
                    "kind": DeliveryKind.SKP,
                    "action": OutboxAction.CREATE_SKP,
                    "body": '{"nama":"Ni Luh Putu Ayu Dewi Sekar Arum ✓"}',
                    "payload_hash": f"{i:064x}",
                    "idempotency_key": f"eks-{group}-{i}",
                    "mapping_version": "2026.2",
                    "created_at": T0,
                    # The last one is done already: never claimed.
                    "state": OutboxState.DONE if i == n - 1 else OutboxState.PENDING,
                }
                for i in range(n)
            ],
        )
        ids = connection.execute(
            sa_select(_OUTBOX.c.id).where(_OUTBOX.c.period == group).order_by(_OUTBOX.c.id)
        )
        return list(ids.scalars())


def test_the_claim_writes_the_bytes_the_orm_wrote(state_url: str) -> None:
    with _engine(state_url) as engine:
        store = StateStore(engine)
        old, new = _entries(engine, "2026", 6), _entries(engine, "2027", 6)
        # The same claims, by the ORM statement on one group and the prepared one on the other:
        # a worker takes four (from a time in WIB), another finds three of them held, one
        # renews its own, a third takes what expired.
        steps: list[tuple[slice, str, dt.datetime]] = [
            (slice(0, 4), "a", T0.astimezone(WIB)),
            (slice(2, 6), "b", T0 + dt.timedelta(seconds=1)),
            (slice(0, 2), "a", T0 + dt.timedelta(minutes=1, microseconds=1)),
            (slice(0, 6), "c", T0 + dt.timedelta(minutes=9)),
        ]
        for part, worker, now in steps:
            by_orm = _orm_claim(engine, old[part], worker, now=now, lease=LEASE)
            prepared = store.claims.claim_entries(new[part], worker, now=now, lease=LEASE)
            assert [old.index(i) for i in sorted(by_orm)] == [
                new.index(i) for i in sorted(prepared)
            ]
            rows = {str(row["id"]): row for row in _raw(engine, _OUTBOX, "id")}
            for a, b in zip(old, new, strict=True):
                for column in ("claimed_by", "claimed_until", "state"):
                    assert rows[str(a)][column] == rows[str(b)][column], column
        stored = _raw(engine, _OUTBOX, "id")
        assert any(row["claimed_until"] for row in stored)


def test_sqlite_claims_a_page_by_primary_key(tmp_path: Path) -> None:
    """Not by walking every unsent entry of the store (ix_outbox_pending_page by state), which
    SQLite's planner chose for ``state = ?`` beside ``id IN (SELECT ... json_each(?))``."""
    with _engine(f"sqlite:///{tmp_path / 'plan.db'}") as engine:
        claim = _claim(engine.dialect)
        params = {name: None for name, _convert in claim.binds} | {"ids": "[1,2]"}
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {claim.sql}", params).all()
        assert "SEARCH outbox USING INTEGER PRIMARY KEY (rowid=?)" in [row[-1] for row in plan]


# -- the reads -------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> None:
    """Equal, and of the same types field by field (an enum stays an enum, a time aware)."""
    assert a == b
    assert repr(a) == repr(b)


def test_the_reads_return_what_the_core_statements_returned(sandbox: Box, state_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=8, seed=13, periods=[PERIOD])
    box = sandbox(world)
    with app_for(box, state_url, target={"concurrency": 1}) as app:
        # Read and planned, not sent: the outbox holds every request.
        app.engine.deliverer.deliver = lambda *_args, **_kw: []  # type: ignore[method-assign]
        app.engine.run(PERIOD)
        store = app.store
        with store.engine.connect() as connection:
            npsns = sorted({r["sekolah"]["npsn"] for r in world.records(PERIOD)})
            for kind in DeliveryKind:
                for assessors in (None, True, False):
                    for schools in ((), npsns[:2]):
                        for up_to in (None, 10**6, 5):
                            for after, limit in ((0, 500), (3, 4)):
                                options: dict[str, Any] = {
                                    "kind": kind,
                                    "assessors": assessors,
                                    "after_id": after,
                                    "up_to_id": up_to,
                                    "limit": limit,
                                }
                                _same(
                                    _core_pending_page(connection, PERIOD, schools, **options),
                                    store.outbox.pending_page(
                                        connection, PERIOD, schools, **options
                                    ),
                                )
            nips = {r["pegawai"]["nip"] for r in world.records(PERIOD)}
            nips |= {r["penilai"]["nip"] for r in world.records(PERIOD)} | {"nobody"}
            _same(
                _core_deliverable_heads(connection, PERIOD, nips),
                store.deliverables.heads(connection, PERIOD, nips),
            )
            ids = {str(r["id"]) for r in world.records(PERIOD)} | {"nothing"}
            _same(_core_hashes(connection, ids), store.sources.hashes(connection, ids))
            _same(_core_bodies(connection, ids), store.sources.bodies(connection, ids))
            _same(
                _core_source_heads(connection, PERIOD, nips),
                store.sources.heads(connection, PERIOD, nips),
            )
            assert store.sources.bodies(connection, ids)  # the comparison saw rows


# -- a whole run -----------------------------------------------------------------------------

_SHAPE = re.compile(r"[0-9]")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _stored(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """The tables a run writes, as stored. What each run makes of its own time and name is
    compared by its form: a timestamp digit by digit, the ledger's hashes (the times are
    hashed) as 64 hex digits, a request's duration, the run's id and the claiming worker by
    whether there is one (``ledger.verify`` checks the hashes themselves)."""
    tables = {
        "outbox": (_OUTBOX, "id"),
        "sync_record": (_SYNC, "nip, kind"),
        "source_record": (_SOURCE, "id"),
        "ledger_entry": (ledger.LedgerEntry.__table__, "seq"),  # type: ignore[attr-defined]
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for name, (table, order) in tables.items():
        times = {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}
        rows = _raw(engine, table, order)
        for row in rows:
            for column in times:
                value = row[column]
                row[column] = None if value is None else _SHAPE.sub("9", str(value))
            if name == "outbox":  # the worker that claimed it (each app is another worker)
                row["claimed_by"] = row["claimed_by"] is not None
            if name == "ledger_entry":
                row["run_id"] = row["run_id"] is not None
                row["duration_ms"] = row["duration_ms"] is not None
                for column in ("prev_hash", "hash"):
                    row[column] = bool(_HEX64.fullmatch(row[column]))
        found[name] = rows
    return found


def test_a_run_through_the_prepared_statements_stores_what_the_reference_stored(
    sandbox: Box, state_url: str, second_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    def run_twice(url: str) -> dict[str, list[dict[str, Any]]]:
        world = generate_world(schools=3, teachers_per_school=10, seed=17, periods=[PERIOD])
        changed = world.records(PERIOD)[0]
        box = sandbox(world)
        # One sending thread: the same requests in the same order, so the same ledger.
        with app_for(box, url, target={"concurrency": 1}) as app:
            first = app.engine.run(PERIOD)
            assert first.requests_sent > 0
            world.update_record(changed["id"], lambda r: r["pegawai"].update(nama="Nama Baru"))
            app.engine.run(PERIOD)
            with Session(app.store.engine) as session:
                assert ledger.verify(session).ok
            return _stored(app.store.engine)

    with monkeypatch.context() as patched:
        _reference_path(patched)
        reference = run_twice(state_url)
    prepared = run_twice(second_url)
    for table, rows in reference.items():
        assert len(rows) == len(prepared[table]), table
        for old, new in zip(rows, prepared[table], strict=True):
            assert old == new, table
