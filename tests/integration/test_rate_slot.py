"""The shared send schedule (``rate_slot``) on SQLite and PostgreSQL: slots spaced by
``margin / rate`` with no burst, one row for every caller; the adapted rate cut once per
burst of 429s and raised back to the limit; several threads (and so several connections, as
several processes would) never get the same slot."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import Engine, text

from state.db import create_schema, make_engine
from state.store import StateStore
from sync.delivery.ratelimit import SharedSchedule

T0 = 1_800_000_000.0  # seconds since the epoch: the statements' clock, given by the test
MARGIN = 1.08


@pytest.fixture
def store(engine: Engine) -> StateStore:
    return StateStore(engine)


def test_slots_are_spaced_with_no_burst(store: StateStore) -> None:
    # Ten callers at the same instant: the first goes now, each next one margin/rate later.
    waits = [store.rate_slots.take("target", limit=10, margin=MARGIN, now=T0)[0] for _ in range(10)]
    assert waits == pytest.approx([i * MARGIN / 10 for i in range(10)])
    # Idle time earns no credit: after a long pause the next slot is now, the one after, s.
    later = T0 + 3600
    first, rate = store.rate_slots.take("target", limit=10, margin=MARGIN, now=later)
    second, _ = store.rate_slots.take("target", limit=10, margin=MARGIN, now=later)
    assert (first, rate) == (0.0, 10.0)
    assert second == pytest.approx(MARGIN / 10)
    slot = store.rate_slots.get("target")
    assert slot is not None
    assert slot.next_at == pytest.approx(later + 2 * MARGIN / 10)


def test_a_name_has_its_own_schedule(store: StateStore) -> None:
    store.rate_slots.take("target", limit=1, margin=1.0, now=T0)
    assert store.rate_slots.take("source", limit=1, margin=1.0, now=T0) == (0.0, 1.0)


def test_a_cut_halves_once_per_hold_and_not_below_the_floor(store: StateStore) -> None:
    store.rate_slots.ensure("target")
    assert store.rate_slots.cut("target", limit=20, floor=1, now=T0) == 10
    # The 429s of the requests in flight at that moment do not cut again.
    assert store.rate_slots.cut("target", limit=20, floor=1, now=T0 + 0.5) is None
    assert store.rate_slots.take("target", limit=20, margin=MARGIN, now=T0 + 0.5)[1] == 10
    assert store.rate_slots.cut("target", limit=20, floor=1, now=T0 + 1.5) == 5
    for n in range(2, 8):
        store.rate_slots.cut("target", limit=20, floor=1, now=T0 + 1.5 * n)
    assert store.rate_slots.take("target", limit=20, margin=MARGIN, now=T0 + 20)[1] == 1


def test_raise_climbs_back_to_the_limit_and_no_further(store: StateStore) -> None:
    store.rate_slots.ensure("target")
    store.rate_slots.cut("target", limit=10, floor=0.5, now=T0)  # 5
    rates = [store.rate_slots.raise_rate("target", limit=10, step=2) for _ in range(4)]
    assert rates == [7, 9, 10, 10]
    slot = store.rate_slots.get("target")
    assert slot is not None
    assert slot.rate is None  # back to "the configured rate"
    # A lower limit configured later applies at once, whatever the row holds.
    assert store.rate_slots.take("target", limit=4, margin=1.0, now=T0 + 9)[1] == 4


def test_the_database_clock_when_no_instant_is_given(store: StateStore) -> None:
    first, _ = store.rate_slots.take("target", limit=2, margin=1.0)
    second, _ = store.rate_slots.take("target", limit=2, margin=1.0)
    assert first == 0.0
    assert 0.0 < second <= 0.5  # the slot 0.5 s after the first, measured a moment later


def test_threads_on_their_own_connections_never_share_a_slot(store: StateStore) -> None:
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            wait, _ = store.rate_slots.take("target", limit=100, margin=1.0, now=T0)
            with lock:
                taken.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken.sort()
    assert taken == pytest.approx([i / 100 for i in range(100)])
    assert all(b - a > 0.009 for a, b in itertools.pairwise(taken))


def test_the_shared_schedule_on_a_connection_of_its_own(store: StateStore) -> None:
    schedule = SharedSchedule(store)
    waits = [schedule.take(10, MARGIN) for _ in range(3)]
    assert waits[0][0] == 0.0
    assert all(rate == 10 for _, rate, _ in waits)
    assert all(0 <= took < 5 for _, _, took in waits)  # the statement's round trip, timed
    assert 0 < waits[2][0] <= 2 * MARGIN / 10  # the third slot, measured a moment later
    assert schedule.cut(10, 0.5) == 5
    assert schedule.raise_rate(10, 1) == 6
    schedule.close()
    schedule.close()  # twice is harmless
    assert schedule.take(10, MARGIN)[1] == 6  # a new connection when needed


def test_the_shared_schedule_outlives_a_dropped_connection(pg_url: str) -> None:
    engine = make_engine(pg_url)
    create_schema(engine)
    try:
        store = StateStore(engine)
        schedule = SharedSchedule(store)
        schedule.take(10, MARGIN)
        with engine.connect() as other:  # the server ends the schedule's session
            other.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert schedule.take(10, MARGIN)[1] == 10
        schedule.close()
    finally:
        engine.dispose()
