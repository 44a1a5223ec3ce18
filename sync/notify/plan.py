"""Whether a school is to be told, and what: pure, no I/O, no clock.

For one school, period and channel, from its list now and the newest message of its chain:

- a list that changed since the last message: a new message (``actions``); an unsent one with
  the old list is superseded first;
- the same list: nothing, unless the deadline came into a nearer reminder stage
  (``notify.remind_days_before``) since the last message: a ``reminder``, once per stage;
  or the last one was refused for good and the contact changed since: the list again;
- an empty list: nothing to a school never told; one ``all_clear`` ("semua beres") when a
  list it was told has emptied, and nothing after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from state.notices import NoticeKind, NoticeState

__all__ = ["Decision", "LastMessage", "decide", "reminder_stage"]


@dataclass(frozen=True, slots=True)
class LastMessage:
    """The newest message of a chain, as deciding needs it."""

    kind: str
    list_hash: str
    state: str
    stage: int | None
    finished_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    kind: NoticeKind | None  # the message to write (None: none)
    supersede_last: bool = False  # the newest, unsent, is replaced


_NOTHING = Decision(None)


def reminder_stage(days_left: int, remind_days_before: Sequence[int]) -> int | None:
    """The reminder stage a day falls in: the nearest of ``remind_days_before`` it is within
    (7 when 5 days are left, with 14, 7, 3, 1); None before the first and after the deadline."""
    if days_left < 0:
        return None
    inside = [day for day in remind_days_before if days_left <= day]
    return min(inside) if inside else None


def decide(
    list_hash: str,
    empty: bool,
    last: LastMessage | None,
    *,
    told: bool,
    stage: int | None,
    contact_changed_at: dt.datetime | None = None,
) -> Decision:
    """What to write into the chain now. ``told``: a message of the chain was sent (or may
    have been: uncertain) before; ``stage``: today's reminder stage."""
    unsent = last is not None and last.state == NoticeState.PENDING.value
    if last is not None and last.state == NoticeState.SUPERSEDED.value:
        last, unsent = None, False  # a writer lost a race after superseding: start afresh
    if empty:
        if last is None or last.kind == NoticeKind.ALL_CLEAR.value:
            return _NOTHING
        if unsent:
            return Decision(NoticeKind.ALL_CLEAR if told else None, supersede_last=True)
        return Decision(NoticeKind.ALL_CLEAR) if told else _NOTHING
    if last is None or last.kind == NoticeKind.ALL_CLEAR.value or last.list_hash != list_hash:
        return Decision(NoticeKind.ACTIONS, supersede_last=unsent)
    if last.state == NoticeState.FAILED.value:
        changed = (
            contact_changed_at is not None
            and last.finished_at is not None
            and contact_changed_at > last.finished_at
        )
        return Decision(NoticeKind.ACTIONS) if changed else _NOTHING
    if last.state in (NoticeState.PENDING.value, NoticeState.SENDING.value):
        return _NOTHING
    if stage is not None and (last.stage is None or last.stage > stage):
        return Decision(NoticeKind.REMINDER)
    return _NOTHING
