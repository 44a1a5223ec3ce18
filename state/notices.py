"""The notification outbox: each message a school is to get (or got) about its action list.

``SchoolNotice``: one row per message per channel (``email``, ``webhook``). Rows of one school,
period and channel form a chain: each names the one before it (``follows``: its id, 0 for the
first), and (period, npsn, channel, follows) is unique, so two processes that both decide to
tell a school about the same change cannot both write the message: one insert fails.

A message's life (``state``)::

    pending ──claim──> sending ──> sent
       │  ^                 │
       │  └─(refused, later)┘──> failed     (refused for good, or out of attempts)
       └──> superseded   (its list changed again before it went: a newer row follows it)
    sending ──(found so, long after: the sender died mid-send)──> uncertain

``claim`` moves a row from pending to sending in one conditional UPDATE, committed before the
message leaves: a crash after that point never sends the row again (``uncertain``), which is
how no school gets the same content twice (``sync.notify`` says what that costs).

Plain functions over the caller's ``Session``; the caller commits.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from enum import StrEnum

from sqlalchemy import Column, Index, Table, Text, UniqueConstraint, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the table)
from state.types import UTCDateTime

__all__ = [
    "NoticeKind",
    "NoticeState",
    "SchoolNotice",
    "add_notice",
    "claim",
    "due_notices",
    "finish",
    "last_notices",
    "notice_counts",
    "notices_of",
    "retry_later",
    "stale_sending",
]


class NoticeState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # claimed, then the sender vanished: maybe sent, never resent
    SUPERSEDED = "superseded"


class NoticeKind(StrEnum):
    ACTIONS = "actions"  # the list changed
    REMINDER = "reminder"  # the list did not change, the deadline came nearer
    ALL_CLEAR = "all_clear"  # the list emptied: "semua beres", once


class SchoolNotice(SQLModel, table=True):
    __tablename__ = "school_notice"
    __table_args__ = (
        UniqueConstraint("period", "npsn", "channel", "follows"),
        Index("ix_school_notice_state", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=16)
    npsn: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    follows: int = 0  # the id of the message before it in the chain; 0: the first
    kind: str = Field(max_length=16)  # a NoticeKind
    list_hash: str = Field(max_length=64)  # the list's content hash (school_actions)
    message_id: str = Field(max_length=200)  # derived from the content: the same on a resend
    stage: int | None = None  # the reminder stage (days before the deadline) it was made in
    items: int = 0
    body: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON: the list
    recipient: str = Field(sa_column=Column(Text, nullable=False))  # addresses / hook origin
    state: str = Field(default=NoticeState.PENDING.value, max_length=16)  # a NoticeState
    attempts: int = 0
    failures: int = 0
    next_attempt_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    sending_since: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_answer: str | None = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


_TABLE: Table = SchoolNotice.__table__  # type: ignore[attr-defined]


def last_notices(
    session: Session, period: str, npsns: Sequence[str] = ()
) -> dict[tuple[str, str], SchoolNotice]:
    """(npsn, channel) -> the newest message of each chain of the period."""
    newest = (
        select(func.max(SchoolNotice.id))
        .where(SchoolNotice.period == period)
        .group_by(col(SchoolNotice.npsn), col(SchoolNotice.channel))
    )
    if npsns:
        newest = newest.where(col(SchoolNotice.npsn).in_(list(npsns)))
    rows = session.exec(select(SchoolNotice).where(col(SchoolNotice.id).in_(newest)))
    return {(row.npsn, row.channel): row for row in rows}


def add_notice(session: Session, notice: SchoolNotice) -> bool:
    """Write a message into its chain; False (nothing written) when another process wrote
    one after the same predecessor first."""
    try:
        with session.begin_nested():
            session.add(notice)
            session.flush()
    except IntegrityError:
        return False
    return True


def due_notices(
    session: Session, now: dt.datetime, periods: Sequence[str] = (), npsns: Sequence[str] = ()
) -> list[int]:
    """The ids of pending messages whose time has come (of some periods, schools), oldest
    first."""
    query = (
        select(SchoolNotice.id)
        .where(
            SchoolNotice.state == NoticeState.PENDING.value,
            (col(SchoolNotice.next_attempt_at).is_(None))
            | (col(SchoolNotice.next_attempt_at) <= now),
        )
        .order_by(col(SchoolNotice.id))
    )
    if periods:
        query = query.where(col(SchoolNotice.period).in_(list(periods)))
    if npsns:
        query = query.where(col(SchoolNotice.npsn).in_(list(npsns)))
    return [int(i) for i in session.exec(query) if i is not None]


def claim(session: Session, notice_id: int, now: dt.datetime, body: str) -> bool:
    """pending -> sending, with the body about to go out; False when another sender has it
    (or it is no longer pending). Commit before sending."""
    result = session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == notice_id, _TABLE.c.state == NoticeState.PENDING.value)
        .values(
            state=NoticeState.SENDING.value,
            sending_since=now,
            attempts=_TABLE.c.attempts + 1,
            body=body,
        )
    )
    return bool(getattr(result, "rowcount", 0) == 1)


def finish(
    session: Session, notice_id: int, state: NoticeState, answer: str, now: dt.datetime
) -> None:
    """sending -> sent or failed (or uncertain), with the answer."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == notice_id)
        .values(
            state=state.value,
            last_answer=answer[:2000],
            finished_at=now,
            failures=_TABLE.c.failures + (1 if state is NoticeState.FAILED else 0),
        )
    )


def retry_later(session: Session, notice_id: int, answer: str, at: dt.datetime) -> None:
    """sending -> pending again, not before ``at`` (refused for now, nothing went out)."""
    session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == notice_id)
        .values(
            state=NoticeState.PENDING.value,
            last_answer=answer[:2000],
            next_attempt_at=at,
            sending_since=None,
            failures=_TABLE.c.failures + 1,
        )
    )


def stale_sending(session: Session, before: dt.datetime) -> list[SchoolNotice]:
    """Messages claimed before ``before`` and never finished: their sender died mid-send."""
    query = select(SchoolNotice).where(
        SchoolNotice.state == NoticeState.SENDING.value, col(SchoolNotice.sending_since) < before
    )
    return list(session.exec(query.order_by(col(SchoolNotice.id))))


def notices_of(
    session: Session, period: str | None = None, npsns: Sequence[str] = ()
) -> list[SchoolNotice]:
    """Every message (of a period, of some schools), newest first."""
    query = select(SchoolNotice).order_by(col(SchoolNotice.id).desc())
    if period:
        query = query.where(SchoolNotice.period == period)
    if npsns:
        query = query.where(col(SchoolNotice.npsn).in_(list(npsns)))
    return list(session.exec(query))


def notice_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per channel: messages by state, and ``failed_attempts`` (every refusal, retried or
    not): what the metrics count."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = select(
        SchoolNotice.channel, SchoolNotice.state, func.count(), func.sum(SchoolNotice.failures)
    ).group_by(col(SchoolNotice.channel), col(SchoolNotice.state))
    for channel, where, n, failures in session.exec(query):
        counts[channel][str(where)] = int(n)
        counts[channel]["failed_attempts"] = counts[channel].get("failed_attempts", 0) + int(
            failures or 0
        )
    return dict(counts)
