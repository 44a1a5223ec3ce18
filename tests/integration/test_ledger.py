"""The audit ledger on SQLite and PostgreSQL: append, head, verify, query; the triggers that
refuse UPDATE and DELETE; tampering behind the triggers' back, which ``verify`` must catch and
name; 10,000 entries; appends from many threads and processes at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, exc, insert, select, text
from sqlmodel import Session, SQLModel

from state import ledger
from state.db import create_schema
from state.ledger import GENESIS_HASH, LedgerEvent, VerifyResult
from state.ledger_guards import install_guards

T0 = dt.datetime(2025, 3, 1, 1, 2, 3, 456789, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]


def _event(i: int, **fields: Any) -> LedgerEvent:
    values: dict[str, Any] = {
        "actor": "daemon",
        "action": "create_skp",
        "outcome": "delivered",
        "run_id": "run-1",
        "period": "2025-1",
        "npsn": f"2010{i % 3:04d}",
        "nip": f"19800101200501{i % 5:04d}",
        "employee_name": "Siti Aminah" if i % 2 else "Dédé Ñurhayati",
        "kind": "skp",
        "mapping_version": "2025.1",
        "idempotency_key": f"eks-create_skp-{i:064x}",
        "request_body": json.dumps({"nip": "x", "i": i}, separators=(",", ":")),
        "http_status": 201,
        "answer_body": f'{{"id":"skp-{i}"}}',
        "duration_ms": 12 + i,
    }
    values.update(fields)
    return LedgerEvent(**values)


def _fill(engine: Engine, n: int, start: int = 0) -> list[ledger.LedgerEntry]:
    with Session(engine, expire_on_commit=False) as session:
        entries = [
            ledger.append(session, _event(i), at=T0 + dt.timedelta(minutes=i))
            for i in range(start, start + n)
        ]
        session.commit()
    return entries


def _verify(engine: Engine, **kwargs: Any) -> VerifyResult:
    with Session(engine) as session:
        return ledger.verify(session, **kwargs)


def _head(engine: Engine) -> tuple[str, int]:
    with Session(engine) as session:
        return ledger.head(session)


def _tamper(
    engine: Engine, *statements: str, params: dict[str, Any] | list[dict[str, Any]] | None = None
) -> None:
    """Run raw SQL behind the guards' back (as a database owner could), then restore them."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER ledger_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER ledger_entry_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE ledger_entry DISABLE TRIGGER ALL")
        for statement in statements:
            conn.execute(text(statement), params)
    install_guards(engine)


def _rows(engine: Engine) -> list[dict[str, Any]]:
    """Every row as stored, read through the table's types (``at`` comes back aware)."""
    table = SQLModel.metadata.tables["ledger_entry"]
    with engine.connect() as conn:
        result = conn.execute(select(table).order_by(table.c.seq))
        return [dict(row) for row in result.mappings()]


# -- basics ----------------------------------------------------------------------------------


def test_empty_ledger(engine: Engine) -> None:
    assert _head(engine) == (GENESIS_HASH, 0)
    assert _verify(engine) == VerifyResult(True, GENESIS_HASH, 0)
    assert _verify(engine, against=(GENESIS_HASH, 0)).ok


def test_append_chains_entries_and_head_names_the_last(engine: Engine) -> None:
    entries = _fill(engine, 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash
    assert entries[2].prev_hash == entries[1].hash
    assert _head(engine) == (entries[2].hash, 3)
    result = _verify(engine)
    assert result == VerifyResult(True, entries[2].hash, 3)
    assert _verify(engine, against=(entries[1].hash, 2)).ok  # an older head still matches

    stored = _rows(engine)
    assert [r["hash"] for r in stored] == [e.hash for e in entries]
    with Session(engine) as session:
        again = list(ledger.query(session))
    assert again[1].at == T0 + dt.timedelta(minutes=1)  # aware, UTC, microseconds kept
    assert again[1].at.tzinfo is not None
    assert again[0].employee_name == "Dédé Ñurhayati"


def test_hash_recipe_is_the_documented_one(engine: Engine) -> None:
    """An auditor's independent recomputation, from the module docstring's recipe."""
    _fill(engine, 2)
    with Session(engine) as session:
        first, second = ledger.query(session)
    prev = GENESIS_HASH
    for entry in (first, second):
        content = entry.model_dump(exclude={"hash"})
        content["at"] = entry.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        text_ = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert entry.prev_hash == prev
        assert hashlib.sha256((prev + text_).encode("utf-8")).hexdigest() == entry.hash
        prev = entry.hash


def test_hashed_fields_are_every_column_but_hash() -> None:
    columns = [c.name for c in SQLModel.metadata.tables["ledger_entry"].columns]
    assert set(ledger.HASHED_FIELDS) == set(columns) - {"hash"}


def test_append_takes_dict_bodies_and_float_durations(engine: Engine) -> None:
    with Session(engine) as session:
        entry = ledger.append(
            session,
            LedgerEvent(
                actor="operator:budi",
                action="replay",
                outcome="done",
                request_body={"b": 1, "a": "é"},
                duration_ms=12.6,
            ),
            at=T0.astimezone(dt.timezone(dt.timedelta(hours=7))),
        )
        session.commit()
        assert entry.request_body == '{"a":"é","b":1}'
        assert entry.duration_ms == 13
        assert entry.at == T0
    assert _verify(engine).ok


def test_append_refuses_a_naive_time(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValueError, match="naive"):
        ledger.append(session, _event(0), at=dt.datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_body", '{"access_token":"eyJhbGciOi"}'),
        ("answer_body", '{"token_type":"Bearer","ACCESS_TOKEN":"x"}'),
        ("detail", "Authorization: Bearer eyJhbGciOi"),
        ("request_body", "grant_type=client_credentials&client_secret=s3cr3t"),
        ("detail", "retry after header Bearer abc"),
    ],
)
def test_secrets_are_refused_and_nothing_is_written(engine: Engine, field: str, value: str) -> None:
    _fill(engine, 1)
    before = _head(engine)
    with Session(engine) as session:
        with pytest.raises(ValueError, match=f"{field} contains") as raised:
            ledger.append(session, _event(1, **{field: value}), at=T0)
        assert "s3cr3t" not in str(raised.value)
        assert "eyJ" not in str(raised.value)
        session.rollback()
    assert _head(engine) == before


def test_query_filters_in_seq_order(engine: Engine) -> None:
    _fill(engine, 30)
    with Session(engine) as session:
        nip = "198001012005010003"
        by_nip = list(ledger.query(session, nip=nip, batch=2))
        assert [e.seq for e in by_nip] == [4, 9, 14, 19, 24, 29]
        assert {e.nip for e in by_nip} == {nip}
        both = list(ledger.query(session, nip=nip, npsn="20100000", batch=2))
        assert [e.seq for e in both] == [4, 19]
        assert list(ledger.query(session, period="2024-2")) == []
        window = list(
            ledger.query(
                session,
                since=T0 + dt.timedelta(minutes=10),
                until=T0 + dt.timedelta(minutes=13),
            )
        )
        assert [e.seq for e in window] == [11, 12, 13]  # since inclusive, until exclusive
        assert [e.seq for e in ledger.query(session, limit=5, batch=2)] == [1, 2, 3, 4, 5]
        assert [e.seq for e in ledger.query(session, nip=nip, limit=3, batch=2)] == [4, 9, 14]


# -- the guards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET answer_body = 'nicer' WHERE seq = 2",
        "UPDATE ledger_entry SET seq = seq + 100",
        "DELETE FROM ledger_entry WHERE seq = 3",
        "DELETE FROM ledger_entry",
    ],
)
def test_the_database_refuses_update_and_delete(engine: Engine, statement: str) -> None:
    _fill(engine, 3)
    before = _rows(engine)
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    assert _rows(engine) == before
    assert _verify(engine).ok


def test_postgres_refuses_truncate_even_as_a_replica(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _fill(engine, 2)
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE ledger_entry")
    with engine.begin() as conn:  # replication mode skips ordinary triggers, not ALWAYS ones
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        with pytest.raises(exc.DBAPIError, match="append-only"):
            conn.exec_driver_sql("DELETE FROM ledger_entry")
    assert _head(engine)[1] == 2


def test_install_guards_is_idempotent_and_restores_a_dropped_guard(engine: Engine) -> None:
    install_guards(engine)
    create_schema(engine)  # again: nothing changes, nothing fails
    _fill(engine, 2)
    _tamper(engine)  # drops or disables the guards, then install_guards puts them back
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_entry")
    with engine.begin() as conn:  # inside a caller's transaction too
        install_guards(conn)
    assert _head(engine)[1] == 2


# -- tampering behind the guards' back -------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        'UPDATE ledger_entry SET answer_body = \'{"id":"forged"}\' WHERE seq = 5',
        "UPDATE ledger_entry SET http_status = 200 WHERE seq = 5",
        "UPDATE ledger_entry SET employee_name = NULL WHERE seq = 5",
        "UPDATE ledger_entry SET hash = 'f' || substr(hash, 2) WHERE seq = 5",
    ],
)
def test_an_edited_entry_is_named(engine: Engine, statement: str) -> None:
    _fill(engine, 10)
    _tamper(engine, statement)
    result = _verify(engine)
    assert not result.ok
    assert result.bad_seq == 5
    assert result.problem is not None
    assert result.problem.startswith("entry #5 was edited")
    assert result.count == 4  # entries 1..4 are sound
    assert result.head_hash == _rows(engine)[3]["hash"]


def test_an_edited_entry_with_its_hash_recomputed_is_named(engine: Engine) -> None:
    _fill(engine, 10)
    row = _rows(engine)[4]
    row["answer_body"] = '{"id":"forged"}'
    _tamper(
        engine,
        "UPDATE ledger_entry SET answer_body = :body, hash = :hash WHERE seq = 5",
        params={"body": row["answer_body"], "hash": ledger.entry_hash(row)},
    )
    result = _verify(engine)
    assert (result.ok, result.bad_seq) == (False, 5)
    assert result.problem is not None
    assert "entry #5 was replaced" in result.problem


@pytest.mark.parametrize("seq", [1, 5, 9])
def test_a_deleted_entry_is_named(engine: Engine, seq: int) -> None:
    _fill(engine, 10)
    _tamper(engine, "DELETE FROM ledger_entry WHERE seq = :seq", params={"seq": seq})
    result = _verify(engine)
    assert (result.ok, result.bad_seq, result.count) == (False, seq, seq - 1)
    assert result.problem is not None
    assert result.problem.startswith(f"entry #{seq} is missing")


def test_a_deleted_entry_with_the_rest_renumbered_is_named(engine: Engine) -> None:
    _fill(engine, 10)
    _tamper(
        engine,
        "DELETE FROM ledger_entry WHERE seq = 5",
        "UPDATE ledger_entry SET seq = -seq WHERE seq > 5",
        "UPDATE ledger_entry SET seq = -seq - 1 WHERE seq < 0",
    )
    result = _verify(engine)
    assert (result.ok, result.bad_seq) == (False, 5)
    assert result.problem is not None
    assert "entry #5 is out of order" in result.problem
    assert "removed" in result.problem


def test_two_swapped_entries_are_named(engine: Engine) -> None:
    _fill(engine, 10)
    _tamper(
        engine,
        "UPDATE ledger_entry SET seq = -1 WHERE seq = 4",
        "UPDATE ledger_entry SET seq = 4 WHERE seq = 5",
        "UPDATE ledger_entry SET seq = 5 WHERE seq = -1",
    )
    result = _verify(engine)
    assert (result.ok, result.bad_seq, result.count) == (False, 4, 3)
    assert result.problem is not None
    assert result.problem.startswith("entry #4 is out of order")
    assert "swapped" in result.problem


def _forged_row(engine: Engine, seq: int, prev_hash: str) -> dict[str, Any]:
    row = dict(_rows(engine)[0])
    row.update(seq=seq, prev_hash=prev_hash, answer_body='{"id":"never-sent"}', nip="1")
    row["hash"] = ledger.entry_hash(row)
    return row


def test_an_inserted_entry_is_named(engine: Engine) -> None:
    """A forger renumbers the entries after #5 and slips in a well-formed, chained #6."""
    _fill(engine, 10)
    forged = _forged_row(engine, 6, _rows(engine)[4]["hash"])
    _tamper(
        engine,
        "UPDATE ledger_entry SET seq = -seq WHERE seq > 5",
        "UPDATE ledger_entry SET seq = -seq + 1 WHERE seq < 0",
    )
    with engine.begin() as conn:  # INSERT is allowed: appending is what the table is for
        conn.execute(insert(SQLModel.metadata.tables["ledger_entry"]), [forged])
    result = _verify(engine)
    assert (result.ok, result.bad_seq, result.count) == (False, 6, 5)
    assert result.problem is not None
    assert result.problem.startswith("entry #6 was inserted")


def test_an_entry_inserted_before_the_first_is_named(engine: Engine) -> None:
    _fill(engine, 3)
    with engine.begin() as conn:
        conn.execute(
            insert(SQLModel.metadata.tables["ledger_entry"]),
            [_forged_row(engine, 0, GENESIS_HASH)],
        )
    result = _verify(engine)
    assert (result.ok, result.bad_seq) == (False, 0)
    assert result.problem is not None
    assert "inserted" in result.problem


def test_a_cut_tail_is_caught_against_the_head_written_down(engine: Engine) -> None:
    _fill(engine, 10)
    written_down = _head(engine)
    _tamper(engine, "DELETE FROM ledger_entry WHERE seq > 7")
    assert _verify(engine).ok  # alone, a shorter chain is a sound chain...
    result = _verify(engine, against=written_down)
    assert (result.ok, result.bad_seq, result.count) == (False, 8, 7)  # ...but not that one
    assert result.problem is not None
    assert result.problem.startswith("entry #8 is missing")
    assert "tail was cut" in result.problem
    assert _verify(engine, against=(_rows(engine)[6]["hash"], 7)).ok


def test_a_rewritten_chain_is_caught_against_the_head_written_down(engine: Engine) -> None:
    """Edit #3 and recompute every hash after it: only a head kept outside catches that."""
    _fill(engine, 10)
    written_down = _head(engine)
    rows = _rows(engine)
    rows[2]["answer_body"] = '{"id":"forged"}'
    prev = rows[1]["hash"]
    for row in rows[2:]:
        row["prev_hash"] = prev
        row["hash"] = prev = ledger.entry_hash(row)
    _tamper(
        engine,
        "UPDATE ledger_entry SET answer_body = :answer_body, prev_hash = :prev_hash, "
        "hash = :hash WHERE seq = :seq",
        params=rows[2:],
    )
    assert _verify(engine).ok
    result = _verify(engine, against=written_down)
    assert (result.ok, result.bad_seq) == (False, 10)
    assert result.problem is not None
    assert "rewritten" in result.problem


def test_against_takes_a_valid_head_only(engine: Engine) -> None:
    with pytest.raises(ValueError, match="hex"):
        _verify(engine, against=("xyz", 3))
    assert not _verify(engine, against=("1" * 64, 0)).ok


# -- volume and concurrency ------------------------------------------------------------------


def test_ten_thousand_entries_verify(engine: Engine) -> None:
    n = 10_000
    rows, prev = [], GENESIS_HASH
    for i in range(n):
        event = _event(i)
        row = {**event.__dict__, "seq": i + 1, "at": T0 + dt.timedelta(seconds=i)}
        row["prev_hash"] = prev
        row["hash"] = prev = ledger.entry_hash(row)
        rows.append(row)
    table = SQLModel.metadata.tables["ledger_entry"]
    with engine.begin() as conn:
        conn.execute(insert(table), rows)
    started = time.perf_counter()
    result = _verify(engine)
    elapsed = time.perf_counter() - started
    assert result == VerifyResult(True, prev, n)
    assert elapsed < 10, elapsed
    assert _verify(engine, against=(rows[4999]["hash"], 5000), batch=997).ok
    entry = _fill(engine, 1, start=n)[0]  # appends carry on from the bulk
    assert (entry.seq, entry.prev_hash) == (n + 1, prev)
    assert _verify(engine, against=(prev, n)).ok


def test_concurrent_appends_from_threads_keep_one_chain(engine: Engine) -> None:
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with Session(engine) as session:
                    ledger.append(
                        session,
                        _event(i, actor=f"operator:w{worker}"),
                        at=dt.datetime.now(dt.UTC),
                    )
                    session.commit()
        except BaseException as error:  # reported below, with the worker's traceback
            errors.append(error)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert errors == []
    total = threads * per_thread
    assert [r["seq"] for r in _rows(engine)] == list(range(1, total + 1))
    result = _verify(engine)
    assert (result.ok, result.count) == (True, total), result.problem
    actors = [r["actor"] for r in _rows(engine)]
    assert all(actors.count(f"operator:w{w}") == per_thread for w in range(threads))


_WORKER = """
import datetime as dt, sys
from sqlmodel import Session
from state import ledger
from state.db import make_engine
engine = make_engine(sys.argv[1])
for i in range(int(sys.argv[3])):
    with Session(engine) as session:
        ledger.append(
            session,
            ledger.LedgerEvent(actor="daemon", action="create_skp", outcome="delivered",
                               run_id=sys.argv[2], detail=str(i)),
            at=dt.datetime.now(dt.UTC),
        )
        session.commit()
"""


def test_concurrent_appends_from_processes_keep_one_chain(state_url: str, engine: Engine) -> None:
    processes, per_process = 4, 40
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, state_url, f"p{p}", str(per_process)], env=env
        )
        for p in range(processes)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0] * processes
    total = processes * per_process
    assert [r["seq"] for r in _rows(engine)] == list(range(1, total + 1))
    result = _verify(engine)
    assert (result.ok, result.count) == (True, total), result.problem
