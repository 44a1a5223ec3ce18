"""The changes a closed period waits on two people for (issue 26; docs/design.md, invariant
9): one operator asks, a second one approves (``state.lifecycle`` holds the period's state).

``change_request`` holds one row per change asked for on a closed period (a replay, a
discard, a reset, a mapping switch, a reopen): what it names (``target``: failure IDs, NPSNs
or a mapping version, as a JSON list), why, who asked, who approved it, and how it ended
(``pending`` -> ``approved`` -> ``done`` or ``failed``).

``ChangeRequests`` makes the transitions, each a conditional ``UPDATE`` with its ledger entry
in the same transaction, so two operators approving at once cannot both approve: the request
(``change_request``, by the requester), the approval (``change_approve``: the approver as
actor, the requester in ``detail``) and how it ended (``change_done``, both names). What a
change *does* (the replay, the discard) is done by ``sync.operations.changes``, which calls
``approve`` before and ``finish`` after.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from enum import StrEnum

from sqlalchemy import Column, Index, Text, func, update
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state.lifecycle import (
    Lifecycle,
    LifecycleRefused,
    PeriodState,
    actor_of,
    name_of,
    same_person,
    sealed_message,
)
from state.types import UTCDateTime

__all__ = ["ChangeAction", "ChangeRequest", "ChangeRequests", "RequestState"]

Clock = Callable[[], dt.datetime]


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


class ChangeRequests:
    """The change requests over the state store of ``lifecycle`` (whose clock stamps them,
    whose ``status`` says what a period takes, and whose ``reopen`` a reopen carries out)."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.engine = lifecycle.engine

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

    def get(self, request_id: int) -> ChangeRequest:
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

    # -- the transitions ------------------------------------------------------------------------

    def add(
        self, period: str, action: ChangeAction, target: Sequence[str], *, by: str, why: str
    ) -> ChangeRequest:
        """A pending request (``change_request`` in the ledger). A reopen is asked of a closed
        or sealed period, any other change of a closed one (``LifecycleRefused``: ``open``,
        ``sealed``)."""
        now = self.lifecycle.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            found = self.lifecycle.status_in(session, period)
            if found.state is PeriodState.OPEN:
                raise LifecycleRefused(
                    "open",
                    f"{period} is open: no request needed"
                    + ("" if action is ChangeAction.REOPEN else f", run the {action.value} itself"),
                )
            if found.state is PeriodState.SEALED and action is not ChangeAction.REOPEN:
                raise LifecycleRefused("sealed", sealed_message(found))
            request = ChangeRequest(
                period=period,
                action=action.value,
                target=json.dumps(list(target)),
                why=why,
                requested_by=name_of(by),
                requested_at=now,
            )
            session.add(request)
            session.flush()
            detail = f"request #{request.id}: {request.describe()}: {why}"
            self.lifecycle.record(
                session, by, "change_request", period, detail, now=now, outcome="pending"
            )
            session.commit()
        return request

    def approve(self, request_id: int, *, by: str) -> ChangeRequest:
        """``pending`` -> ``approved`` by ``by``, who must not be the requester
        (``LifecycleRefused``: ``own_request``, ``not_pending``, ``unknown_request``,
        ``sealed``). The ledger gets ``change_approve`` naming both. The caller then does the
        change and calls ``finish``."""
        now = self.lifecycle.clock()
        request = self.get(request_id)
        if same_person(request.requested_by, by):
            raise LifecycleRefused(
                "own_request",
                f"request #{request_id} is your own ({request.requested_by}): another operator "
                "must approve it",
            )
        with Session(self.engine, expire_on_commit=False) as session:
            period = self.lifecycle.status_in(session, request.period)
            if period.state is PeriodState.SEALED and request.action != ChangeAction.REOPEN:
                raise LifecycleRefused("sealed", sealed_message(period))
            table = ChangeRequest.__table__  # type: ignore[attr-defined]
            moved = session.connection().execute(
                update(table)
                .where(table.c.id == request_id, table.c.state == RequestState.PENDING.value)
                .values(state=RequestState.APPROVED.value, approved_by=name_of(by), decided_at=now)
            )
            if moved.rowcount != 1:
                raise LifecycleRefused(
                    "not_pending",
                    f"request #{request_id} is {request.state}, not pending"
                    + (f" (approved by {request.approved_by})" if request.approved_by else ""),
                )
            detail = (
                f"approves request #{request_id} of {actor_of(request.requested_by)}: "
                f"{request.describe()}: {request.why}"
            )
            self.lifecycle.record(session, by, "change_approve", request.period, detail, now=now)
            session.commit()
        return self.get(request_id)

    def finish(self, request_id: int, *, ok: bool, result: str) -> ChangeRequest:
        """``approved`` -> ``done`` or ``failed``, with what came of it (``change_done`` in
        the ledger, outcome ``done`` or ``error``)."""
        now = self.lifecycle.clock()
        with Session(self.engine, expire_on_commit=False) as session:
            request = session.get(ChangeRequest, request_id)
            if request is None or request.state != RequestState.APPROVED.value:
                raise LifecycleRefused("not_pending", f"request #{request_id} is not approved")
            request.state = (RequestState.DONE if ok else RequestState.FAILED).value
            request.result = result[:4000]
            session.add(request)
            detail = (
                f"request #{request_id} ({request.describe()}), requested by "
                f"{actor_of(request.requested_by)}, approved by "
                f"{actor_of(request.approved_by or '')}: {result}"
            )[:4000]
            self.lifecycle.record(
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
