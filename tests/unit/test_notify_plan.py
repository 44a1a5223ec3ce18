"""Whether a school is told (sync/notify/plan.py): once per change of its list, a reminder
once per stage, one "semua beres" when it empties, nothing to a school with nothing to fix."""

from __future__ import annotations

import datetime as dt

from state.notices import NoticeKind
from sync.notify.plan import LastMessage, decide, reminder_stage

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _last(
    kind: str = "actions", h: str = "A", state: str = "sent", stage: int | None = None
) -> LastMessage:
    return LastMessage(kind, h, state, stage, T0)


def test_nothing_to_a_school_with_nothing_to_fix() -> None:
    assert decide("E", True, None, told=False, stage=None).kind is None


def test_a_first_list_and_each_change_is_told_the_same_list_is_not() -> None:
    assert decide("A", False, None, told=False, stage=None).kind is NoticeKind.ACTIONS
    assert decide("A", False, _last(), told=True, stage=None).kind is None
    assert decide("B", False, _last(), told=True, stage=None).kind is NoticeKind.ACTIONS
    # A -> B -> A: the list is A again, a change from the last message: told again.
    assert decide("A", False, _last(h="B"), told=True, stage=None).kind is NoticeKind.ACTIONS


def test_an_unsent_message_is_replaced_by_a_newer_list() -> None:
    decision = decide("B", False, _last(state="pending"), told=False, stage=None)
    assert decision.kind is NoticeKind.ACTIONS
    assert decision.supersede_last
    # ... but not while it is being sent.
    assert decide("A", False, _last(state="sending"), told=False, stage=None).kind is None


def test_all_clear_once_when_a_told_list_empties() -> None:
    assert decide("E", True, _last(), told=True, stage=None).kind is NoticeKind.ALL_CLEAR
    assert decide("E", True, _last(kind="all_clear", h="E"), told=True, stage=None).kind is None
    # Never told (the only message was still unsent): nothing to clear; it is dropped.
    never = decide("E", True, _last(state="pending"), told=False, stage=None)
    assert never.kind is None
    assert never.supersede_last
    assert decide("E", True, _last(state="failed"), told=False, stage=None).kind is None
    # New problems after the all-clear are a new list.
    again = decide("A", False, _last(kind="all_clear", h="E"), told=True, stage=None)
    assert again.kind is NoticeKind.ACTIONS


def test_reminders_once_per_stage() -> None:
    assert reminder_stage(20, (14, 7, 3, 1)) is None
    assert reminder_stage(14, (14, 7, 3, 1)) == 14
    assert reminder_stage(5, (14, 7, 3, 1)) == 7
    assert reminder_stage(0, (14, 7, 3, 1)) == 1
    assert reminder_stage(-1, (14, 7, 3, 1)) is None
    assert decide("A", False, _last(stage=None), told=True, stage=7).kind is NoticeKind.REMINDER
    assert decide("A", False, _last(stage=7), told=True, stage=7).kind is None
    assert decide("A", False, _last(stage=14), told=True, stage=7).kind is NoticeKind.REMINDER
    assert decide("A", False, _last(stage=7, state="pending"), told=False, stage=3).kind is None


def test_a_refused_message_is_tried_again_only_after_the_contact_changed() -> None:
    failed = _last(state="failed")
    assert decide("A", False, failed, told=False, stage=None, contact_changed_at=T0).kind is None
    later = T0 + dt.timedelta(hours=1)
    kind = decide("A", False, failed, told=False, stage=None, contact_changed_at=later).kind
    assert kind is NoticeKind.ACTIONS
