"""sync.delivery.ratelimit.RateLimiter on a virtual clock (nothing sleeps): send slots with no
burst, no one-second window of arrivals over R whatever the jitter up to J, at least 90 % of R
let through; the rate halved on 429s (once per burst, not below the floor) and climbing back."""

from __future__ import annotations

import itertools
import random
import threading

import pytest

from sync.delivery.ratelimit import JITTER_S, LocalSchedule, RateLimiter


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it (or a test moves it);
    ``late`` is added to every sleep (a sender woken late)."""

    def __init__(self, start: float = 1000.0, late: float = 0.0) -> None:
        self.now = start
        self.late = late
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds + self.late


def limiter_on(clock: FakeClock, rate: float) -> RateLimiter:
    return RateLimiter(rate, clock=clock, sleep=clock.sleep)


def acquire_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(clock.now)
    return times


def worst_window(arrivals: list[float]) -> int:
    """The most arrivals in any sliding one-second window (t - 1, t]."""
    ordered = sorted(arrivals)
    worst, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - 1.0:
            first += 1
        worst = max(worst, last - first + 1)
    return worst


def test_zero_rate_disables_the_limit() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 0)
    acquire_times(limiter, clock, 1000)
    limiter.throttled()
    limiter.accepted()
    assert clock.sleeps == []
    assert clock.now == 1000.0


@pytest.mark.parametrize("rate", [0.5, 1, 4, 10, 20, 100])
def test_slots_are_spaced_with_the_margin_and_no_burst(rate: float) -> None:
    clock = FakeClock()
    times = acquire_times(limiter_on(clock, rate), clock, 41)
    assert times[0] == 1000.0  # the first one goes at once, then never two together
    for a, b in itertools.pairwise(times):
        assert b - a == pytest.approx((1 + JITTER_S) / rate)
    # What is let through: R / (1 + J), at least 90 % of R.
    assert 40 / (times[-1] - times[0]) >= 0.9 * rate


@pytest.mark.timeout(10)
@pytest.mark.parametrize("start", [1000.0, 1e6, 123456.789])
def test_a_clock_that_moves_only_by_what_is_slept(start: float) -> None:
    # A slot is taken once and slept to: no float dust can make a sender wait forever.
    clock = FakeClock(start)
    times = acquire_times(limiter_on(clock, 20), clock, 200)
    assert times[-1] - times[0] == pytest.approx(199 * 1.08 / 20)
    assert len(clock.sleeps) == 199


def test_idle_time_earns_no_burst() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 10)
    acquire_times(limiter, clock, 3)
    clock.now += 100  # idle for long: still one slot at a time
    start = clock.now
    times = acquire_times(limiter, clock, 3)
    assert times[0] == start
    assert times[1] - times[0] == pytest.approx(0.108)


@pytest.mark.parametrize("rate", [2, 10, 20, 50])
@pytest.mark.parametrize("jitter", ["none", "random", "worst"])
def test_no_window_of_arrivals_holds_more_than_the_rate(rate: float, jitter: str) -> None:
    clock = FakeClock()
    slots = acquire_times(limiter_on(clock, rate), clock, int(rate * 20))
    draw = random.Random(7)
    if jitter == "none":
        delays = [0.0] * len(slots)
    elif jitter == "random":
        delays = [draw.uniform(0, JITTER_S) for _ in slots]
    else:  # late by J, then on time: the most arrivals one window can catch
        delays = [JITTER_S * ((i // int(rate)) % 2 == 0) for i in range(len(slots))]
    arrivals = [slot + delay for slot, delay in zip(slots, delays, strict=True)]
    assert worst_window(arrivals) <= rate
    assert len(arrivals) / (arrivals[-1] - arrivals[0]) >= 0.9 * rate


def test_threads_share_one_schedule() -> None:
    clock = FakeClock()
    schedule = LocalSchedule(clock)
    waits: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        for _ in range(50):
            wait, _, _ = schedule.take(10, 1 + JITTER_S)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([i * 0.108 for i in range(200)])


def test_a_sender_woken_late_takes_a_later_slot() -> None:
    clock = FakeClock(late=JITTER_S)  # every sleep overshoots by J: too late each time
    limiter = limiter_on(clock, 10)
    limiter.acquire()  # at once: no sleep, so not late
    limiter.acquire()
    # Slept to slot 2, woke late, took slot 3, late again, ... and sends at the last one.
    assert len(clock.sleeps) == 3
    assert (limiter.slots, limiter.slots_unused) == (4, 2)
    on_time = FakeClock(late=JITTER_S / 4)  # within J / 2: goes at its slot
    limiter = limiter_on(on_time, 10)
    acquire_times(limiter, on_time, 3)
    assert len(on_time.sleeps) == 2


class SlowSchedule(LocalSchedule):
    """A schedule whose answer takes ``slow`` seconds to come back (a busy database): the
    slot's instant may be anywhere in that time."""

    def __init__(self, clock: FakeClock, slow: float) -> None:
        super().__init__(clock)
        self.clock = clock
        self.slow = slow
        self.takes = 0

    def take(self, limit: float, margin: float) -> tuple[float, float, float]:
        self.takes += 1
        wait, rate, _ = super().take(limit, margin)
        self.clock.now += self.slow
        return wait, rate, self.slow


def test_a_slot_whose_answer_came_back_late_is_not_used() -> None:
    # Slept to from the answer (never early); a later slot taken when the answer took more
    # than J / 2 (the slot may have been that long before it).
    clock = FakeClock()
    schedule = SlowSchedule(clock, slow=JITTER_S)
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep, schedule=schedule)
    limiter.acquire()
    assert schedule.takes == 3  # given up on twice, sent at the third all the same
    assert (limiter.slots, limiter.slots_unused) == (3, 2)
    quick = SlowSchedule(FakeClock(), slow=0.001)
    limiter = RateLimiter(10, clock=quick.clock, sleep=quick.clock.sleep, schedule=quick)
    for _ in range(5):
        limiter.acquire()
    assert quick.takes == 5
    # Each slept from its answer: 1 ms past its slot, which the next wait is measured from.
    assert quick.clock.sleeps == [pytest.approx(0.107)] * 4


def test_confirm_uses_the_slot_held_while_it_is_on_time() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 10)
    limiter.acquire()
    limiter.confirm()  # at once: the slot acquire took
    assert limiter.slots == 1
    limiter.acquire()  # slept to the second slot
    clock.now += JITTER_S / 4
    limiter.confirm()
    assert limiter.slots == 2


def test_confirm_takes_a_fresh_slot_when_none_is_held_or_it_passed() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 10)
    limiter.confirm()  # none held (a token request): one taken now
    limiter.confirm()  # used: another, 0.108 s on
    assert limiter.slots == 2
    assert clock.now == pytest.approx(1000.108)
    limiter.acquire()
    clock.now += 0.5  # the request waited (for a token another thread fetched)
    limiter.confirm()
    assert limiter.slots == 4
    times = [clock.now]
    limiter.acquire()
    limiter.confirm()
    times.append(clock.now)
    assert times[1] - times[0] == pytest.approx(0.108)


def test_confirm_costs_nothing_without_a_limit() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 0)
    limiter.confirm()
    assert (limiter.slots, clock.sleeps) == (0, [])


def test_throttled_halves_once_per_burst_down_to_the_floor() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 20)
    limiter.throttled()
    assert limiter.current == 10
    limiter.throttled()  # another 429 of the same moment: not cut again
    assert limiter.current == 10
    times = acquire_times(limiter, clock, 3)
    assert times[2] - times[1] == pytest.approx(1.08 / 10)
    for _ in range(10):
        clock.now += 1.5
        limiter.throttled()
    assert limiter.current == limiter.floor == 1.0  # R / 20
    assert limiter_on(clock, 4).floor == 0.5
    assert limiter_on(clock, 0.2).floor == 0.2


def test_accepted_climbs_back_to_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = limiter_on(clock, 10)
    limiter.throttled()
    assert limiter.current == 5
    climbed = []
    for _ in range(30):
        limiter.accepted()
        climbed.append(limiter.current)
    assert climbed[0] == pytest.approx(5.2)
    assert climbed[24:] == [10] * 6  # 25 successes: back to R, and no further
    times = acquire_times(limiter, clock, 3)
    assert times[2] - times[1] == pytest.approx(0.108)


class CountingSchedule(LocalSchedule):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.raises = 0

    def raise_rate(self, limit: float, step: float) -> float:
        self.raises += 1
        return super().raise_rate(limit, step)


def test_accepted_at_the_configured_rate_costs_nothing() -> None:
    clock = FakeClock()
    schedule = CountingSchedule(clock)
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep, schedule=schedule)
    for _ in range(100):
        limiter.acquire()
        limiter.accepted()
    assert schedule.raises == 0


def test_a_rate_cut_elsewhere_is_seen_at_the_next_slot() -> None:
    # Two limiters on one schedule (two workers on one database): one cuts, both slow down.
    clock = FakeClock()
    schedule = LocalSchedule(clock)
    one = RateLimiter(10, clock=clock, sleep=clock.sleep, schedule=schedule)
    other = RateLimiter(10, clock=clock, sleep=clock.sleep, schedule=schedule)
    one.throttled()
    other.acquire()
    assert other.current == 5
    other.accepted()
    assert other.current == pytest.approx(5.2)
