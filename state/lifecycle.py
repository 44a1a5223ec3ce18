"""A period's lifecycle in the state store: ``open``, then ``closed``, then ``sealed`` (issue
26; docs/design.md, invariant 9). The changes a closed period waits on two people for are
``state.change_requests``.

``period_lifecycle`` holds one row per period that left ``open`` once (a period without a row
is open): its state, who changed it, when and why, and its last seal's file (``state.seal``),
kept after a reopen so that the next seal extends it.

``Lifecycle`` makes the transitions. Each one is a conditional ``UPDATE`` (the row is in the
state the transition starts from, or nothing changes), so two people acting at once cannot
both close or seal, and each writes its ledger entry in the same transaction, naming the
operator (``operator:<name>``); a reopen, made on a second operator's approval, names both.

Sealing (``seal``) reads the ``(seq, hash)`` of every ledger entry of the period, makes the
RFC 6962 seal over them (``state.seal.make_seal``, extending the period's last seal if there
is one), signs it when given a key, keeps it and writes it into the ledger, all in one
transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Engine, Text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state import ledger
from state.ledger import LedgerEntry, LedgerEvent
from state.seal import Seal, from_json, make_seal, sign, to_json
from state.types import UTCDateTime

__all__ = [
    "Lifecycle",
    "LifecycleRefused",
    "PeriodLifecycle",
    "PeriodState",
    "PeriodStatus",
    "actor_of",
    "name_of",
    "same_person",
    "sealed_message",
]

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PeriodState(StrEnum):
    OPEN = "open"  # synced as usual
    CLOSED = "closed"  # nothing sent automatically; a change needs two people
    SEALED = "sealed"  # closed, and its ledger entries sealed: no change until reopened


class LifecycleRefused(Exception):
    """A transition that cannot be made; ``message`` says why and what to do, ``code`` which
    case it is (``not_open``, ``not_closed``, ``sealed``, ``already_sealed``, ``open``,
    ``unknown_request``, ``not_pending``, ``own_request``, ``no_seal``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PeriodLifecycle(SQLModel, table=True):
    """A period that left ``open`` once; without a row a period is open."""

    __tablename__ = "period_lifecycle"

    period: str = Field(primary_key=True, max_length=16)
    state: str = Field(max_length=16)
    changed_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    changed_by: str = Field(max_length=128)
    why: str = Field(sa_column=Column(Text, nullable=False))
    # The last seal's file (canonical JSON); kept after a reopen: the next seal extends it.
    seal: str | None = Field(default=None, sa_column=Column(Text))


@dataclass(frozen=True)
class PeriodStatus:
    """Where a period stands: its state, who put it there, when and why (``None`` for a
    period that was never closed), and its last seal (kept after a reopen)."""

    period: str
    state: PeriodState
    changed_at: dt.datetime | None = None
    changed_by: str | None = None
    why: str | None = None
    seal: Seal | None = None

    @property
    def sends_automatically(self) -> bool:
        return self.state is PeriodState.OPEN

    def since(self) -> str:
        """``closed by ana on 2026-07-02 03:04 UTC: <why>`` (empty for a period never closed)."""
        if self.changed_at is None:
            return ""
        when = self.changed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.state.value} by {self.changed_by} on {when}: {self.why}"


def name_of(person: str) -> str:
    """The person's name as the lifecycle tables keep it: ``operator:ana`` -> ``ana``."""
    return person.removeprefix("operator:").strip()


def same_person(one: str, other: str) -> bool:
    """Whether two names (``ana``, ``operator:ana``, ``Ana``) are the same person."""
    return name_of(one).casefold() == name_of(other).casefold()


def actor_of(person: str) -> str:
    """How the ledger names an operator: ``operator:<name>``."""
    return f"operator:{name_of(person)}"


def _status(row: PeriodLifecycle | None, period: str) -> PeriodStatus:
    if row is None:
        return PeriodStatus(period, PeriodState.OPEN)
    return PeriodStatus(
        period=row.period,
        state=PeriodState(row.state),
        changed_at=row.changed_at,
        changed_by=row.changed_by,
        why=row.why,
        seal=from_json(row.seal) if row.seal else None,
    )


class Lifecycle:
    """The transitions of periods and change requests over the state store's ``engine``
    (module docstring). ``clock`` stamps them."""

    def __init__(self, engine: Engine, *, clock: Clock = _utcnow) -> None:
        self.engine = engine
        self.clock = clock

    # -- reading ---------------------------------------------------------------------------

    def status(self, period: str) -> PeriodStatus:
        with Session(self.engine) as session:
            return self.status_in(session, period)

    @staticmethod
    def status_in(session: Session, period: str) -> PeriodStatus:
        """The period's status as ``session``'s transaction sees it."""
        return _status(session.get(PeriodLifecycle, period), period)

    def statuses(self) -> dict[str, PeriodStatus]:
        """Every period that left ``open`` once (the others are open)."""
        with Session(self.engine) as session:
            rows = session.exec(select(PeriodLifecycle)).all()
            return {row.period: _status(row, row.period) for row in rows}

    def not_sending(self, periods: Sequence[str]) -> dict[str, PeriodStatus]:
        """Those of ``periods`` that are closed or sealed: nothing goes out to them
        automatically (``run`` and the daemon leave them out)."""
        found = self.statuses()
        return {p: found[p] for p in periods if p in found and not found[p].sends_automatically}

    @staticmethod
    def period_entries(session: Session, period: str) -> list[tuple[int, str]]:
        """``(seq, hash)`` of every ledger entry of ``period``, in ``seq`` order: the leaves of
        its seal (``state.seal``); 64 bytes per entry, no body read."""
        table = LedgerEntry.__table__  # type: ignore[attr-defined]
        query = sa_select(table.c.seq, table.c.hash).where(table.c.period == period)
        rows = session.connection().execute(query.order_by(table.c.seq))
        return [(int(seq), str(hash_)) for seq, hash_ in rows]

    def proof_material(
        self, period: str, nip: str
    ) -> tuple[Seal | None, list[tuple[int, str]], list[dict[str, Any]]]:
        """The period's last seal, the leaves it was made over (the period's entries up to
        its ``last_seq``), and ``nip``'s entries of the period as full rows: what
        ``state.proof.build_proof`` takes. Read in one snapshot on PostgreSQL."""
        with Session(self.engine) as session:
            if session.connection().dialect.name == "postgresql":
                session.connection().exec_driver_sql(
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                )
            seal = _status(session.get(PeriodLifecycle, period), period).seal
            if seal is None:
                return None, [], []
            last = seal.last_seq if seal.last_seq is not None else 0
            leaves = [(s, h) for s, h in self.period_entries(session, period) if s <= last]
            rows = [
                entry.model_dump()
                for entry in ledger.query(session, nip=nip, period=period)
                if entry.seq <= last
            ]
            return seal, leaves, rows

    # -- the period's transitions -------------------------------------------------------------

    def _ensure_row(self, session: Session, period: str, now: dt.datetime) -> None:
        """A row for the period (``open``) unless it has one: one statement, no race."""
        insert = pg_insert if session.connection().dialect.name == "postgresql" else sqlite_insert
        statement = insert(PeriodLifecycle).values(
            period=period, state=PeriodState.OPEN.value, changed_at=now, changed_by="", why=""
        )
        session.connection().execute(statement.on_conflict_do_nothing(index_elements=["period"]))

    def _move(
        self,
        session: Session,
        period: str,
        *,
        from_states: Sequence[PeriodState],
        to: PeriodState,
        by: str,
        why: str,
        now: dt.datetime,
    ) -> PeriodLifecycle | None:
        """The conditional UPDATE of a transition: the row as it is after it (read under the
        row's lock, so its seal is the latest), or None, the row untouched, when the period
        is not in one of ``from_states``."""
        table = PeriodLifecycle.__table__  # type: ignore[attr-defined]
        moved = session.connection().execute(
            update(table)
            .where(table.c.period == period, table.c.state.in_([s.value for s in from_states]))
            .values(state=to.value, changed_at=now, changed_by=name_of(by), why=why)
        )
        session.expire_all()
        return session.get(PeriodLifecycle, period) if moved.rowcount == 1 else None

    def close(self, period: str, *, by: str, why: str, detail: str | None = None) -> PeriodStatus:
        """``open`` -> ``closed``; the ledger gets ``period_close`` (``detail``, else ``why``).
        ``LifecycleRefused`` (``not_open``) when the period is not open."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            self._ensure_row(session, period, now)
            moved = self._move(
                session,
                period,
                from_states=(PeriodState.OPEN,),
                to=PeriodState.CLOSED,
                by=by,
                why=why,
                now=now,
            )
            if moved is None:
                found = _status(session.get(PeriodLifecycle, period), period)
                raise LifecycleRefused("not_open", f"{period} is already {found.since()}")
            self.record(session, by, "period_close", period, detail or why, now=now)
            session.commit()
        return self.status(period)

    def reopen(
        self, period: str, *, request_id: int, requested_by: str, approved_by: str, why: str
    ) -> PeriodStatus:
        """``closed``/``sealed`` -> ``open``, as change request ``request_id`` of
        ``requested_by`` asks and ``approved_by`` approved; the last seal is kept (the next
        one extends it). ``LifecycleRefused`` (``open``) when the period is open."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            before = _status(session.get(PeriodLifecycle, period), period)
            moved = self._move(
                session,
                period,
                from_states=(PeriodState.CLOSED, PeriodState.SEALED),
                to=PeriodState.OPEN,
                by=approved_by,
                why=f"{why} (request #{request_id} of {name_of(requested_by)})",
                now=now,
            )
            if moved is None:
                raise LifecycleRefused("open", f"{period} is open already")
            detail = (
                f"reopened ({before.state.value} before), requested by "
                f"{actor_of(requested_by)}, approved by {actor_of(approved_by)} "
                f"(request #{request_id}): {why}"
            )
            self.record(session, approved_by, "period_reopen", period, detail, now=now)
            session.commit()
        return self.status(period)

    def seal(self, period: str, *, by: str, private_key_pem: bytes | None = None) -> Seal:
        """``closed`` -> ``sealed``: the seal over the period's ledger entries, extending its
        last seal if it has one, signed with ``private_key_pem`` (Ed25519) when given; kept,
        and written into the ledger (``period_seal``, the seal file's text as ``detail``).
        ``LifecycleRefused`` (``not_closed``, ``already_sealed``) when it is not closed;
        ``state.seal.SealError`` for a bad key or a rewritten history (nothing written)."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            row = self._move(
                session,
                period,
                from_states=(PeriodState.CLOSED,),
                to=PeriodState.SEALED,
                by=by,
                why="sealed",
                now=now,
            )
            if row is None:
                found = _status(session.get(PeriodLifecycle, period), period)
                if found.state is PeriodState.SEALED:
                    raise LifecycleRefused("already_sealed", f"{period} is {found.since()}")
                raise LifecycleRefused(
                    "not_closed",
                    f"{period} is open: close it first (`ekinerja-sync periods close "
                    f"{period} --why TEXT`), then seal it",
                )
            previous = from_json(row.seal) if row.seal else None
            made = make_seal(
                period, self.period_entries(session, period), sealed_at=now, previous=previous
            )
            if private_key_pem is not None:
                made = sign(made, private_key_pem)
            text = to_json(made)
            table = PeriodLifecycle.__table__  # type: ignore[attr-defined]
            session.connection().execute(
                update(table)
                .where(table.c.period == period)
                .values(seal=text, why=f"sealed {made.count} entries, root {made.root[:16]}…")
            )
            self.record(session, by, "period_seal", period, text, now=now)
            session.commit()
        return made

    # -- the ledger ----------------------------------------------------------------------------

    @staticmethod
    def record(
        session: Session,
        by: str,
        action: str,
        period: str,
        detail: str,
        *,
        now: dt.datetime,
        outcome: str = "done",
    ) -> None:
        ledger.append(
            session,
            LedgerEvent(
                actor=actor_of(by), action=action, outcome=outcome, period=period, detail=detail
            ),
            at=now,
        )


def sealed_message(status: PeriodStatus) -> str:
    """Why a sealed period takes no change, and how two operators reopen it."""
    return (
        f"{status.period} is sealed: it takes no change until two operators reopen it "
        f"(`ekinerja-sync periods reopen {status.period} --why TEXT`, then a second "
        f"operator's `ekinerja-sync actions approve ID`)"
    )
