"""The audit ledger: every delivery attempt and its answer, and every operator action,
append-only and hash-chained (docs/design.md, invariant 5).

One row of ``ledger_entry`` per event. Entries are numbered ``seq`` = 1, 2, 3, ... with no
gaps, and each one carries the hash of the one before it (``prev_hash``) and its own
(``hash``), so editing, removing, inserting or reordering an entry breaks the chain, and
``verify`` says where. The database refuses ``UPDATE`` and ``DELETE`` on the table (and
``TRUNCATE`` on PostgreSQL) through triggers (``install_guards``); the chain catches what is
done behind the triggers' back, and a head written down outside the database
(``head`` -> ``verify(against=...)``) catches a tail cut off or a chain rewritten wholesale.

How an entry's hash is made (recompute it with any tool)
--------------------------------------------------------
1. Take every column of the entry except ``hash``, by name: ``seq``, ``at``, ``run_id``,
   ``actor``, ``action``, ``outcome``, ``period``, ``npsn``, ``nip``, ``employee_name``,
   ``kind``, ``mapping_version``, ``idempotency_key``, ``request_body``, ``http_status``,
   ``answer_body``, ``duration_ms``, ``detail``, ``prev_hash``.
2. Write them as one JSON object: keys sorted, no whitespace between tokens
   (``","`` and ``":"`` separators), non-ASCII characters as themselves (not ``\\u`` escapes),
   a missing value as ``null``, ``seq``/``http_status``/``duration_ms`` as integers, every
   other value as a string. ``at`` is UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six
   digits of microseconds). ``request_body`` and ``answer_body`` are strings holding the
   bodies exactly as sent and received (JSON text inside a JSON string).
   In Python: ``json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
   (``state.canonical`` writes exactly these bytes, faster, and says why they are the same).
3. Prefix that text with ``prev_hash`` (64 lowercase hex digits; the first entry's is 64
   zeros), encode as UTF-8, and take the SHA-256: ``hash`` is its lowercase hex digest.

An entry is sound when its recomputed hash equals its ``hash`` and its ``prev_hash`` equals
the ``hash`` of the entry numbered one less. ``ledger export --format jsonl`` writes exactly
these fields, so an export can be checked with a few lines of any language.

Appends are serialized so the chain never forks, whatever the number of threads and
processes: on PostgreSQL ``append`` takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock(LOCK_KEY)``) before it reads the head; on SQLite it first makes the
transaction the database's one writer (a write statement that changes no row), so the head it
reads is the latest and nobody else can append until the caller's transaction ends. The
primary key on ``seq`` is the last line of defence: two appends that read the same head could
not both commit. The triggers that guard the table are in ``state.ledger_guards``.

This module is longer than 500 lines on purpose: the hash's definition (above), the appends
that compute it and ``verify`` that checks it are one contract, kept in one place so that a
change to one is made in sight of the others.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Integer, RowMapping, Table, Text, text
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the table)
from state.bulk import insert_many
from state.canonical import canonical_json, canonical_json_bytes
from state.types import UTCDateTime

__all__ = [
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "LOCK_KEY",
    "LedgerEntry",
    "LedgerEvent",
    "VerifyResult",
    "append",
    "entry_content",
    "entry_hash",
    "format_at",
    "head",
    "query",
    "verify",
]

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key of ledger appends: the first 8 bytes of sha256("ekinerja-sync
# ledger append"), as a signed 64-bit integer. Any constant works; it must only be the same
# for every process that appends.
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"ekinerja-sync ledger append").digest()[:8], "big", signed=True
)

# The hashed content, by name: every column except ``hash`` (a test keeps this equal to the table).
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "run_id",
    "actor",
    "action",
    "outcome",
    "period",
    "npsn",
    "nip",
    "employee_name",
    "kind",
    "mapping_version",
    "idempotency_key",
    "request_body",
    "http_status",
    "answer_body",
    "duration_ms",
    "detail",
    "prev_hash",
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
# Case-insensitive: a token or a client secret must never land in an append-only table.
_SECRET_MARKERS = ("access_token", "client_secret", "bearer ")


class LedgerEntry(SQLModel, table=True):
    """One ledger entry; written only by ``append``, never changed."""

    __tablename__ = "ledger_entry"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    run_id: str | None = Field(default=None, max_length=64)
    actor: str = Field(sa_column=Column(Text, nullable=False))
    action: str = Field(max_length=64)
    outcome: str = Field(max_length=64)
    period: str | None = Field(default=None, max_length=16, index=True)
    npsn: str | None = Field(default=None, max_length=64, index=True)
    nip: str | None = Field(default=None, max_length=64, index=True)
    employee_name: str | None = Field(default=None, sa_column=Column(Text))
    kind: str | None = Field(default=None, max_length=32)
    mapping_version: str | None = Field(default=None, max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=200)
    request_body: str | None = Field(default=None, sa_column=Column(Text))
    http_status: int | None = Field(default=None, sa_column=Column(Integer))
    answer_body: str | None = Field(default=None, sa_column=Column(Text))
    duration_ms: int | None = Field(default=None, sa_column=Column(Integer))
    detail: str | None = Field(default=None, sa_column=Column(Text))
    prev_hash: str = Field(min_length=64, max_length=64)
    hash: str = Field(min_length=64, max_length=64)


@dataclass(frozen=True)
class LedgerEvent:
    """What a caller records. ``actor`` is ``"daemon"``, ``"cli"`` or ``"operator:<name>"``;
    ``action`` what was done (``create_skp``, ``update_skp``, ``create_assessment``,
    ``replay``, ``discard``, ``reset``, ...); ``outcome`` how it ended (``delivered``,
    ``rejected``, ``retry``, ``held``, ``locked``, ``error``, ``done``, ...).

    ``request_body`` is the body exactly as sent (a dict is written as canonical JSON);
    ``answer_body`` the answer as received. Secrets are refused (``append`` raises).
    """

    actor: str
    action: str
    outcome: str
    run_id: str | None = None
    period: str | None = None
    npsn: str | None = None
    nip: str | None = None
    employee_name: str | None = None
    kind: str | None = None
    mapping_version: str | None = None
    idempotency_key: str | None = None
    request_body: str | dict[str, Any] | list[Any] | None = None
    http_status: int | None = None
    answer_body: str | dict[str, Any] | list[Any] | None = None
    duration_ms: int | float | None = None
    detail: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``.

    When ``ok``: ``head_hash`` and ``count`` are the ledger's head. When not: they are those of
    the last sound entry before the problem (entries 1..count are sound), ``bad_seq`` names the
    first bad entry and ``problem`` says, in words, what is wrong with it.
    """

    ok: bool
    head_hash: str
    count: int
    bad_seq: int | None = None
    problem: str | None = None


# -- the hash ------------------------------------------------------------------------------


def format_at(at: dt.datetime) -> str:
    """``at`` as hashed and exported: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: the ledger takes aware datetimes only")
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def entry_content(values: Mapping[Any, Any]) -> dict[str, Any]:
    """The hashed content of an entry (every column but ``hash``), ``at`` formatted."""
    content = {name: values.get(name) for name in HASHED_FIELDS}
    at = content["at"]
    if isinstance(at, dt.datetime):
        content["at"] = format_at(at)
    return content


def entry_hash(values: Mapping[Any, Any]) -> str:
    """SHA-256 hex of ``prev_hash`` + the canonical JSON of the content (module docstring)."""
    content = entry_content(values)
    # UTF-8 of a concatenation is the concatenation of the UTF-8s: the JSON's bytes as they are.
    material = str(content["prev_hash"]).encode("utf-8") + canonical_json_bytes(content)
    return hashlib.sha256(material).hexdigest()


# -- appending -----------------------------------------------------------------------------


def _body_text(value: str | dict[str, Any] | list[Any] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return canonical_json(value)


def _int_or_none(name: str, value: int | float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"ledger {name} must be a number, not {type(value).__name__}")
    return round(value)


def _refuse_secrets(values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        lowered = value.lower()
        for marker in _SECRET_MARKERS:
            if marker in lowered:
                # The message names the field and the marker, never the value.
                raise ValueError(
                    f"refusing to write a secret into the append-only ledger: "
                    f"{name} contains {marker.strip()!r}"
                )


def _connection(session: Session | Connection) -> Connection:
    """The caller's transaction: a session's connection, or a connection (delivery's batch of
    answers is written on one, without a session)."""
    return session.connection() if isinstance(session, Session) else session


def _serialize_appends(session: Session | Connection) -> None:
    """Make this transaction the only one that can append until it ends (module docstring)."""
    connection = _connection(session)
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    elif dialect == "sqlite":
        # A write statement takes SQLite's write lock (waiting out the busy timeout) and holds
        # it until the transaction ends; it matches no row, so no guard trigger fires. Taken
        # as the transaction's first write, it also gives a read snapshot that is the latest.
        connection.execute(text("UPDATE ledger_entry SET seq = seq WHERE 0"))
    else:  # pragma: no cover - the project supports these two
        raise NotImplementedError(f"ledger appends are not serialized on {dialect}")


def append(session: Session, event: LedgerEvent, *, at: dt.datetime) -> LedgerEntry:
    """Append one entry inside the caller's transaction (the caller commits); ``append_many``
    says how. Returns the entry as written."""
    return LedgerEntry(**append_many(session, [event], at=at)[0])


def append_many(
    session: Session | Connection, events: Sequence[LedgerEvent], *, at: dt.datetime
) -> list[dict[str, Any]]:
    """Append entries, in order, inside the caller's transaction (the caller commits);
    returns their columns as written.

    ``at`` must be aware; it is stored in UTC. Raises ``ValueError`` if any text of an event
    holds what looks like a secret (``access_token``, ``client_secret``, ``Bearer ``): a bug
    upstream must not write a secret into a table nobody can clean. Nothing is written then.

    The transaction then holds the ledger's append lock until it commits or rolls back, so
    append last, just before the commit, and never hold the transaction across an HTTP call
    (an append followed by more row locks can deadlock with another worker). On SQLite the
    transaction must not have read before its first write in an explicit ``BEGIN`` (the
    project's engines begin on the first write, so it cannot); on PostgreSQL it must run at
    READ COMMITTED (the default). Otherwise a concurrent append makes this one fail on the
    ``seq`` primary key; the chain itself cannot fork.
    """
    format_at(at)  # refuses a naive datetime before anything is written
    rows = [_row(event, at) for event in events]
    if not rows:
        return rows
    _serialize_appends(session)
    last_hash, last_seq = head(session)
    for row in rows:
        last_seq += 1
        row["seq"], row["prev_hash"] = last_seq, last_hash
        row["hash"] = last_hash = entry_hash(row)
    # One executemany, written while the append lock is held.
    insert_many(_connection(session), _table(), rows)
    return rows


def _row(event: LedgerEvent, at: dt.datetime) -> dict[str, Any]:
    """The columns of an event, checked (every column but seq, prev_hash and hash)."""
    values: dict[str, Any] = {
        "at": at.astimezone(dt.UTC),
        "run_id": event.run_id,
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome,
        "period": event.period,
        "npsn": event.npsn,
        "nip": event.nip,
        "employee_name": event.employee_name,
        "kind": event.kind,
        "mapping_version": event.mapping_version,
        "idempotency_key": event.idempotency_key,
        "request_body": _body_text(event.request_body),
        "http_status": _int_or_none("http_status", event.http_status),
        "answer_body": _body_text(event.answer_body),
        "duration_ms": _int_or_none("duration_ms", event.duration_ms),
        "detail": event.detail,
    }
    for name in ("actor", "action", "outcome"):
        if not values[name]:
            raise ValueError(f"ledger {name} is required")
    _refuse_secrets(values)
    return values


def _table() -> Table:
    return SQLModel.metadata.tables["ledger_entry"]


# -- reading -------------------------------------------------------------------------------


def head(session: Session | Connection) -> tuple[str, int]:
    """``(hash, count)`` of the last entry; ``(GENESIS_HASH, 0)`` when the ledger is empty.

    In a sound ledger the count is the last entry's ``seq``. Written down outside the database,
    it is what ``verify(against=...)`` checks later.
    """
    table = _table()
    last = (
        _connection(session)
        .execute(sa_select(table.c.hash, table.c.seq).order_by(table.c.seq.desc()).limit(1))
        .first()
    )
    return (str(last[0]), int(last[1])) if last else (GENESIS_HASH, 0)


def _stream(session: Session, batch: int) -> Iterator[RowMapping]:
    """Every entry in ``seq`` order, ``batch`` rows at a time (memory stays flat)."""
    table = _table()
    connection = session.connection()
    after: int | None = None
    while True:
        statement = sa_select(table).order_by(table.c.seq).limit(batch)
        if after is not None:
            statement = statement.where(table.c.seq > after)
        rows = connection.execute(statement).mappings().all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]


def _short(value: object) -> str:
    return f"{str(value)[:16]}…"


def verify(
    session: Session, *, against: tuple[str, int] | None = None, batch: int = 2000
) -> VerifyResult:
    """Walk the whole chain in ``seq`` order and report the first bad entry.

    Detects an entry edited (its content no longer gives its hash), removed (a gap in
    ``seq``, or a broken link where later entries were renumbered), inserted, swapped or moved
    (its ``prev_hash`` is not the hash of the entry before it), replaced with a recomputed hash
    (the intact entry after it was chained to something else), and, with ``against=(hash, n)``
    (a head written down earlier), a cut tail (entry n missing) or a chain rewritten up to n
    (entry n's hash differs). Memory stays flat: entries are read ``batch`` at a time.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if against is not None and (against[1] < 0 or not _HEX64.fullmatch(against[0])):
        raise ValueError("against must be (64 lowercase hex digits, count >= 0)")
    if against is not None and against[1] == 0 and against[0] != GENESIS_HASH:
        return VerifyResult(False, GENESIS_HASH, 0, 0, "a head of 0 entries is 64 zeros")
    # The last two sound entries: (seq, hash) of #count and of #count - 1.
    count, last_hash = 0, GENESIS_HASH
    before_last = GENESIS_HASH
    for row in _stream(session, batch):
        seq, expected = row["seq"], count + 1
        if seq > expected:
            gap = f"#{expected}" if seq == expected + 1 else f"#{expected} to #{seq - 1}"
            return VerifyResult(
                False,
                last_hash,
                count,
                expected,
                f"entry #{expected} is missing: the ledger goes from #{count} to #{seq} "
                f"(entry {gap} deleted)",
            )
        if seq < expected:
            return VerifyResult(
                False,
                last_hash,
                count,
                seq,
                f"entry #{seq} does not belong in the sequence (entries are numbered from #1): "
                f"it was inserted",
            )
        recorded = row["hash"]
        sound = isinstance(recorded, str) and entry_hash(row) == recorded
        if row["prev_hash"] != last_hash:
            before = f"entry #{count}" if count else "the start of the ledger (64 zeros)"
            link = (
                f"its prev_hash {_short(row['prev_hash'])} is not the hash of {before} "
                f"({_short(last_hash)})"
            )
            if count and row["prev_hash"] == before_last:
                # It was chained to the entry two before: the one between was slipped in.
                return VerifyResult(
                    False,
                    before_last,
                    count - 1,
                    count,
                    f"entry #{count} was inserted: the entry after it (#{seq}) was chained "
                    f"directly to #{count - 1}",
                )
            confirmed = against is not None and against[1] == count
            if sound and count and not confirmed:
                # This entry is intact, so it was chained to another #count than the one there.
                return VerifyResult(
                    False,
                    before_last,
                    count - 1,
                    count,
                    f"entry #{count} was replaced (edited and its hash recomputed): the intact "
                    f"entry #{seq} after it was chained to a different #{count}",
                )
            if sound:
                problem = f"entry #{seq} does not follow on from the entry before it: {link}"
            else:
                problem = (
                    f"entry #{seq} is out of order: {link}, and its content does not give its "
                    f"recorded hash at this position (entries were swapped, moved, inserted or "
                    f"removed here)"
                )
            return VerifyResult(False, last_hash, count, seq, problem)
        if not sound:
            return VerifyResult(
                False,
                last_hash,
                count,
                seq,
                f"entry #{seq} was edited: its content does not give its recorded hash "
                f"{_short(recorded)} (it gives {_short(entry_hash(row))})",
            )
        if against is not None and seq == against[1] and recorded != against[0]:
            return VerifyResult(
                False,
                last_hash,
                count,
                seq,
                f"entry #{seq} has hash {_short(recorded)} but {_short(against[0])} was written "
                f"down for it: the ledger up to #{seq} was rewritten after that head was taken",
            )
        count, before_last, last_hash = seq, last_hash, recorded
    if against is not None and against[1] > count:
        return VerifyResult(
            False,
            last_hash,
            count,
            count + 1,
            f"entry #{count + 1} is missing: the ledger ends at #{count} but a head of "
            f"{against[1]} entries was written down (entries #{count + 1} to #{against[1]} "
            f"were removed: the tail was cut)",
        )
    return VerifyResult(True, last_hash, count)


def query(
    session: Session,
    *,
    nip: str | None = None,
    npsn: str | None = None,
    period: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int | None = None,
    batch: int = 500,
) -> Iterator[LedgerEntry]:
    """Entries matching every filter given, in ``seq`` order, fetched ``batch`` at a time.

    ``since`` is inclusive and ``until`` exclusive (both aware); ``limit`` keeps the first n.
    """
    conditions = []
    if nip is not None:
        conditions.append(col(LedgerEntry.nip) == nip)
    if npsn is not None:
        conditions.append(col(LedgerEntry.npsn) == npsn)
    if period is not None:
        conditions.append(col(LedgerEntry.period) == period)
    if since is not None:
        conditions.append(col(LedgerEntry.at) >= since)
    if until is not None:
        conditions.append(col(LedgerEntry.at) < until)
    after, left = 0, limit
    while left is None or left > 0:
        size = batch if left is None else min(batch, left)
        statement = (
            select(LedgerEntry)
            .where(col(LedgerEntry.seq) > after, *conditions)
            .order_by(col(LedgerEntry.seq))
            .limit(size)
        )
        rows = list(session.exec(statement))
        yield from rows
        if len(rows) < size:
            return
        after = rows[-1].seq
        if left is not None:
            left -= len(rows)
