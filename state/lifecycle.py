"""A period's lifecycle in the state store: ``open``, then ``closed``, then ``sealed``; and
the changes a closed period waits on two people for (issue 26; invariant 9 of the design).

- ``period_lifecycle``: one row per period that left ``open`` once (a period without a row is
  open): its state, who changed it, when and why, and its last seal's file (``state.seal``),
  kept after a reopen so that the next seal extends it.
- ``change_request``: a change one operator asked for on a closed period (a replay, a
  discard, a reset, a mapping switch, a reopen), what it names (``target``: failure IDs,
  NPSNs or a mapping version, as a JSON list), why, who asked, who approved it, and how it
  ended (``pending`` -> ``approved`` -> ``done`` or ``failed``).

``Lifecycle`` makes the transitions. Each one is a conditional ``UPDATE`` (the row is in the
state the transition starts from, or nothing changes), so two people acting at once cannot
both close, seal or approve, and each writes its ledger entry in the same transaction: the
ledger names the operator (``operator:<name>``), and an approval names both (the approver as
actor, the requester in ``detail``). What a change *does* (the replay, the discard) is done
by ``sync.operations``, which calls ``approve`` before and ``finish`` after.

Sealing (``seal``) reads the ``(seq, hash)`` of every ledger entry of the period, makes the
RFC 6962 seal over them (``state.seal.make_seal``, extending the period's last seal if there
is one), signs it when given a key, keeps it and writes it into the ledger, all in one
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Engine, Index, Text, func, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state import ledger
from state.ledger import LedgerEntry, LedgerEvent
from state.seal import Seal, from_json, make_seal, sign, to_json
from state.types import UTCDateTime

__all__ = [
    "ChangeAction",
    "ChangeRequest",
    "Lifecycle",
    "LifecycleRefused",
    "PeriodLifecycle",
    "PeriodState",
    "PeriodStatus",
    "RequestState",
    "same_person",
]

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PeriodState(StrEnum):
    OPEN = "open"  # synced as usual
    CLOSED = "closed"  # nothing sent automatically; a change needs two people
    SEALED = "sealed"  # closed, and its ledger entries sealed: no change until reopened


class ChangeAction(StrEnum):
    """What a change request asks for (its ``target`` in brackets)."""

    REPLAY = "replay"  # failed records (failure IDs)
    DISCARD = "discard"  # one failed record (its failure ID)
    RESET = "reset"  # the read position of schools (NPSNs; none: every school)
    MAPPING = "mapping"  # sync the period once with another mapping version (the version)
    REOPEN = "reopen"  # the period opens again (nothing)


class RequestState(StrEnum):
    PENDING = "pending"  # waits for a second operator
    APPROVED = "approved"  # approved; being carried out
    DONE = "done"
    FAILED = "failed"  # approved, but carrying it out was refused or failed (``result``)


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


class ChangeRequest(SQLModel, table=True):
    """A change asked for on a closed period, and what became of it."""

    __tablename__ = "change_request"
    __table_args__ = (Index("ix_change_request_state_period", "state", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16)
    action: str = Field(max_length=16)
    target: str = Field(sa_column=Column(Text, nullable=False))  # a JSON list of strings
    why: str = Field(sa_column=Column(Text, nullable=False))
    requested_by: str = Field(max_length=128)
    requested_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    approved_by: str | None = Field(default=None, max_length=128)
    decided_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    state: str = Field(default=RequestState.PENDING.value, max_length=16)
    result: str | None = Field(default=None, sa_column=Column(Text))

    @property
    def targets(self) -> list[str]:
        value = json.loads(self.target)
        return [str(item) for item in value] if isinstance(value, list) else []

    def describe(self) -> str:
        """``replay 2025-1/1985.../skp``: the action and what it names, in one line."""
        named = " ".join(self.targets)
        return f"{self.action} {named}".strip() + f" in {self.period}"


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


def _name(person: str) -> str:
    return person.removeprefix("operator:").strip()


def same_person(one: str, other: str) -> bool:
    """Whether two names (``ana``, ``operator:ana``, ``Ana``) are the same person."""
    return _name(one).casefold() == _name(other).casefold()


def _actor(person: str) -> str:
    return f"operator:{_name(person)}"


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

    def requests(
        self,
        *,
        period: str | None = None,
        states: Sequence[RequestState] = (RequestState.PENDING,),
    ) -> list[ChangeRequest]:
        """Change requests (pending ones by default; ``states=()``: all), oldest first."""
        query = select(ChangeRequest).order_by(col(ChangeRequest.id))
        if period is not None:
            query = query.where(ChangeRequest.period == period)
        if states:
            query = query.where(col(ChangeRequest.state).in_([s.value for s in states]))
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.exec(query).all())

    def request(self, request_id: int) -> ChangeRequest:
        with Session(self.engine, expire_on_commit=False) as session:
            found = session.get(ChangeRequest, request_id)
        if found is None:
            raise LifecycleRefused(
                "unknown_request",
                f"no change request #{request_id} (see `ekinerja-sync actions list --all`)",
            )
        return found

    def pending_counts(self) -> dict[str, int]:
        """Pending change requests per period."""
        with Session(self.engine) as session:
            query = (
                select(ChangeRequest.period, func.count())
                .where(ChangeRequest.state == RequestState.PENDING.value)
                .group_by(col(ChangeRequest.period))
            )
            return {str(period): int(n) for period, n in session.exec(query)}

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
            .values(state=to.value, changed_at=now, changed_by=_name(by), why=why)
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
            self._record(session, by, "period_close", period, detail or why, now=now)
            session.commit()
        return self.status(period)

    def reopen(self, request: ChangeRequest) -> PeriodStatus:
        """``closed``/``sealed`` -> ``open``, as the approved ``request`` asks; its last seal
        is kept (the next one extends it). ``LifecycleRefused`` (``open``) otherwise."""
        now = self.clock()
        why = f"{request.why} (request #{request.id} of {request.requested_by})"
        approver = request.approved_by or ""
        with Session(self.engine, expire_on_commit=False) as session:
            before = _status(session.get(PeriodLifecycle, request.period), request.period)
            moved = self._move(
                session,
                request.period,
                from_states=(PeriodState.CLOSED, PeriodState.SEALED),
                to=PeriodState.OPEN,
                by=approver,
                why=why,
                now=now,
            )
            if moved is None:
                raise LifecycleRefused("open", f"{request.period} is open already")
            detail = (
                f"reopened ({before.state.value} before), requested by "
                f"{_actor(request.requested_by)}, approved by {_actor(approver)} "
                f"(request #{request.id}): {request.why}"
            )
            self._record(session, approver, "period_reopen", request.period, detail, now=now)
            session.commit()
        return self.status(request.period)

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
            self._record(session, by, "period_seal", period, text, now=now)
            session.commit()
        return made

    # -- change requests ------------------------------------------------------------------------

    def add_request(
        self, period: str, action: ChangeAction, target: Sequence[str], *, by: str, why: str
    ) -> ChangeRequest:
        """A pending request (``change_request`` in the ledger). A reopen is asked of a closed
        or sealed period, any other change of a closed one (``LifecycleRefused``: ``open``,
        ``sealed``)."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            found = _status(session.get(PeriodLifecycle, period), period)
            if found.state is PeriodState.OPEN:
                raise LifecycleRefused(
                    "open",
                    f"{period} is open: no request needed"
                    + ("" if action is ChangeAction.REOPEN else f", run the {action.value} itself"),
                )
            if found.state is PeriodState.SEALED and action is not ChangeAction.REOPEN:
                raise LifecycleRefused("sealed", _sealed_message(found))
            request = ChangeRequest(
                period=period,
                action=action.value,
                target=json.dumps(list(target)),
                why=why,
                requested_by=_name(by),
                requested_at=now,
            )
            session.add(request)
            session.flush()
            detail = f"request #{request.id}: {request.describe()}: {why}"
            self._record(session, by, "change_request", period, detail, now=now, outcome="pending")
            session.commit()
        return request

    def approve(self, request_id: int, *, by: str) -> ChangeRequest:
        """``pending`` -> ``approved`` by ``by``, who must not be the requester
        (``LifecycleRefused``: ``own_request``, ``not_pending``, ``unknown_request``,
        ``sealed``). The ledger gets ``change_approve`` naming both. The caller then does the
        change and calls ``finish``."""
        now = self.clock()
        request = self.request(request_id)
        if same_person(request.requested_by, by):
            raise LifecycleRefused(
                "own_request",
                f"request #{request_id} is your own ({request.requested_by}): another operator "
                "must approve it",
            )
        with Session(self.engine, expire_on_commit=False) as session:
            period = _status(session.get(PeriodLifecycle, request.period), request.period)
            if period.state is PeriodState.SEALED and request.action != ChangeAction.REOPEN:
                raise LifecycleRefused("sealed", _sealed_message(period))
            table = ChangeRequest.__table__  # type: ignore[attr-defined]
            moved = session.connection().execute(
                update(table)
                .where(table.c.id == request_id, table.c.state == RequestState.PENDING.value)
                .values(state=RequestState.APPROVED.value, approved_by=_name(by), decided_at=now)
            )
            if moved.rowcount != 1:
                raise LifecycleRefused(
                    "not_pending",
                    f"request #{request_id} is {request.state}, not pending"
                    + (f" (approved by {request.approved_by})" if request.approved_by else ""),
                )
            detail = (
                f"approves request #{request_id} of {_actor(request.requested_by)}: "
                f"{request.describe()}: {request.why}"
            )
            self._record(session, by, "change_approve", request.period, detail, now=now)
            session.commit()
        return self.request(request_id)

    def finish(self, request_id: int, *, ok: bool, result: str) -> ChangeRequest:
        """``approved`` -> ``done`` or ``failed``, with what came of it (``change_done`` in
        the ledger, outcome ``done`` or ``error``)."""
        now = self.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            request = session.get(ChangeRequest, request_id)
            if request is None or request.state != RequestState.APPROVED.value:
                raise LifecycleRefused("not_pending", f"request #{request_id} is not approved")
            request.state = (RequestState.DONE if ok else RequestState.FAILED).value
            request.result = result[:4000]
            session.add(request)
            detail = (
                f"request #{request_id} ({request.describe()}), requested by "
                f"{_actor(request.requested_by)}, approved by "
                f"{_actor(request.approved_by or '')}: {result}"
            )[:4000]
            self._record(
                session,
                request.approved_by or "",
                "change_done",
                request.period,
                detail,
                now=now,
                outcome="done" if ok else "error",
            )
            session.commit()
        return request

    # -- the ledger ----------------------------------------------------------------------------

    @staticmethod
    def _record(
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
                actor=_actor(by), action=action, outcome=outcome, period=period, detail=detail
            ),
            at=now,
        )


def _sealed_message(status: PeriodStatus) -> str:
    return (
        f"{status.period} is sealed: it takes no change until two operators reopen it "
        f"(`ekinerja-sync periods reopen {status.period} --why TEXT`, then a second "
        f"operator's `ekinerja-sync actions approve ID`)"
    )
