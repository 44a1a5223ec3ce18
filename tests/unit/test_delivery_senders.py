"""How many threads send at once (``Sender.useful_threads``): ``concurrency``, but no more
than a rate limit can keep busy (Little's law: rate x time an answer takes, plus one); and the
queue they take entries from while the next page is prepared (``sync.delivery.pages.SendQueue``);
and the bound on the answers waiting to be written (``sync.delivery.answers.AnswerWriter``)."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from sync.delivery.answers import BACKLOG_BATCHES, AnswerWriter
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.pages import PageClaims, SendQueue
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.retry import RetryPolicy
from sync.delivery.sender import PauseGate, Sender


def _sender(rate_per_s: float) -> Sender:
    policy = RetryPolicy(max_attempts=1, initial_backoff_s=0, max_backoff_s=0, max_elapsed_s=1)
    # Sizing reads neither the target nor the writer.
    return Sender(
        target=cast(Any, None),
        retry=policy,
        rate_limiter=RateLimiter(rate_per_s),
        gate=PauseGate(),
        breaker=CircuitBreaker(),
        writer=cast(Any, None),
    )


def test_without_a_rate_limit_every_thread_sends() -> None:
    sender = _sender(0)
    sender.latency_s = 0.001
    assert sender.useful_threads(16) == 16


def test_before_any_answer_every_thread_sends() -> None:
    assert _sender(100).useful_threads(16) == 16


@pytest.mark.parametrize(
    ("rate", "latency", "expected"),
    [
        (100, 0.05, 6),  # 5 busy at once, one more for the jitter
        (100, 0.001, 2),
        (10, 30.0, 16),  # a slow target: capped by concurrency
        (1000, 0.0, 1),
    ],
)
def test_under_a_rate_limit_only_as_many_as_it_keeps_busy(
    rate: float, latency: float, expected: int
) -> None:
    sender = _sender(rate)
    sender.latency_s = latency
    assert sender.useful_threads(16) == expected


def test_the_queue_hands_out_in_order_and_ends_once_closed_and_empty() -> None:
    queue = SendQueue(low_water=2)
    heads = [cast(Any, n) for n in range(3)]
    assert queue.put([(h, None) for h in heads])
    queue.close()
    assert [queue.take() for _ in range(4)] == [(0, None), (1, None), (2, None), None]
    assert not queue.put([(heads[0], None)])  # closed: nothing more is queued


def test_the_loop_waits_for_room_until_the_senders_take_enough() -> None:
    queue = SendQueue(low_water=2)
    assert queue.put([(cast(Any, n), None) for n in range(4)])
    room = threading.Event()

    def loop() -> None:
        queue.wait_for_room()
        room.set()

    thread = threading.Thread(target=loop)
    thread.start()
    assert not room.wait(0.2)  # 4 queued, low water 2: no room yet
    queue.take()
    queue.take()
    assert not room.wait(0.2)  # 2 left
    queue.take()
    assert room.wait(5)  # 1 left: the next page may come
    thread.join(5)


def test_a_closed_queue_wakes_a_sender_waiting_for_work() -> None:
    queue = SendQueue(low_water=2)
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(queue.take()))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()  # nothing queued: it waits
    queue.close()
    thread.join(5)
    assert got == [None]


def test_a_pages_claims_are_handed_back_when_its_last_entry_is_through() -> None:
    claims = PageClaims({1, 2, 3})
    claims.close(2)  # delivered: its claim no longer matters
    assert claims.through_one() is None
    assert claims.through_one() is None
    assert claims.through_one() == {1, 3}  # the last one through: the rest go back
    assert claims.abandon() is None  # once only


def test_the_claims_of_a_page_not_gone_through_are_handed_back_by_abandon() -> None:
    claims = PageClaims({7, 8})
    assert claims.through_one() is None
    assert claims.abandon() == {7, 8}
    assert claims.through_one() is None  # a late sender hands back nothing more


def test_a_sending_thread_waits_to_write_once_the_backlog_is_several_batches_long() -> None:
    from collections import Counter
    from types import SimpleNamespace

    from state.models import DeliveryKind, OutboxAction

    # Writing reads nothing until a batch is written, and none is here.
    writer = AnswerWriter(
        store=cast(Any, None), claims=cast(Any, None), attempt_log=cast(Any, None), flush_every=2
    )
    waits: list[bool] = []
    # Another thread is writing all along: nothing gets written, the backlog grows.
    writer.flush = lambda *, wait=True: waits.append(wait)  # type: ignore[method-assign]
    entry = cast(Any, SimpleNamespace(action=OutboxAction.CREATE_SKP, kind=DeliveryKind.SKP))
    answers = BACKLOG_BATCHES * writer.flush_every
    for _ in range(answers):
        writer.delivered(entry, None, cast(Any, None), 1, Counter())
    # a batch is full from the second answer on; only the last one waits its turn
    assert waits == [False] * (answers - 2) + [True]
