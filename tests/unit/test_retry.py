"""sync.retry.RetryPolicy and sync.ratelimit.RateLimiter on a fake clock: nothing sleeps."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from connectors.errors import (
    AuthError,
    Conflict,
    FatalError,
    PreconditionFailed,
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
)
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.retry import RetryPolicy


class Sleeps:
    """A fake ``sleep`` that records how long it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def policy(
    sleeps: Sleeps,
    *,
    max_attempts: int = 5,
    initial_backoff_s: float = 0.5,
    max_backoff_s: float = 60,
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts,
        initial_backoff_s=initial_backoff_s,
        max_backoff_s=max_backoff_s,
        max_elapsed_s=3600,
        sleep=sleeps,
    )


def failing(errors: list[Exception], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    """A call that raises ``errors`` one after the other, then returns ``result``."""
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return fn, calls


# --- RetryPolicy -----------------------------------------------------------------------------


def test_success_needs_no_retry() -> None:
    sleeps = Sleeps()
    fn, calls = failing([])
    assert policy(sleeps).call(fn) == "ok"
    assert len(calls) == 1
    assert sleeps.waits == []


def test_retriable_error_is_retried_until_success() -> None:
    sleeps = Sleeps()
    fn, calls = failing([RetriableError("503", status=503), RetriableError("timeout")])
    assert policy(sleeps).call(fn) == "ok"
    assert len(calls) == 3
    assert len(sleeps.waits) == 2


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_retriable_error_is_reraised_after_max_attempts(max_attempts: int) -> None:
    sleeps = Sleeps()
    errors: list[Exception] = [RetriableError(f"503 #{i}", status=503) for i in range(10)]
    fn, calls = failing(errors)
    with pytest.raises(RetriableError) as caught:
        policy(sleeps, max_attempts=max_attempts).call(fn)
    assert len(calls) == max_attempts
    assert len(sleeps.waits) == max_attempts - 1
    assert caught.value is errors[max_attempts - 1]  # the last error, not a RetryError


def test_target_paused_is_retriable() -> None:
    sleeps = Sleeps()
    fn, calls = failing([TargetPaused("maintenance", status=503, retry_after_s=30)])
    assert policy(sleeps).call(fn) == "ok"
    assert len(calls) == 2


@pytest.mark.parametrize(
    "error",
    [
        RecordRejected("422", status=422),
        Conflict("409", status=409, answer={"kode": "SKP_SUDAH_ADA"}),
        PreconditionFailed("412", status=412, answer={"versi": 3}),
        FatalError("broken contract"),
        AuthError("401", status=401),
        SyncError("unclassified"),
        ValueError("a bug"),
    ],
)
def test_other_errors_are_never_retried(error: Exception) -> None:
    sleeps = Sleeps()
    fn, calls = failing([error])
    with pytest.raises(type(error)) as caught:
        policy(sleeps).call(fn)
    assert caught.value is error
    assert len(calls) == 1
    assert sleeps.waits == []


def test_rejection_after_a_retry_stops_at_once() -> None:
    sleeps = Sleeps()
    rejection = RecordRejected("422", status=422)
    fn, calls = failing([RetriableError("503"), rejection, RetriableError("503")])
    with pytest.raises(RecordRejected) as caught:
        policy(sleeps).call(fn)
    assert caught.value is rejection
    assert len(calls) == 2


@pytest.mark.parametrize("retry_after_s", [0.0, 2.5, 7, 120])
def test_retry_after_is_honoured(retry_after_s: float) -> None:
    sleeps = Sleeps()
    errors: list[Exception] = [
        RetriableError("429", status=429, retry_after_s=retry_after_s) for _ in range(4)
    ]
    fn, _ = failing(errors)
    # Even above the backoff cap: the server said when.
    assert policy(sleeps, max_backoff_s=10).call(fn) == "ok"
    assert len(sleeps.waits) == 4
    for wait in sleeps.waits:
        assert wait >= retry_after_s
        assert wait <= retry_after_s + 10  # jitter on top, never more than the cap


def test_retry_after_applies_only_to_the_error_that_carries_it() -> None:
    sleeps = Sleeps()
    fn, _ = failing([RetriableError("429", retry_after_s=30), RetriableError("503")])
    assert policy(sleeps, initial_backoff_s=0.1, max_backoff_s=1).call(fn) == "ok"
    assert sleeps.waits[0] >= 30
    assert sleeps.waits[1] <= 1


def test_backoff_is_capped() -> None:
    sleeps = Sleeps()
    fn, _ = failing([RetriableError("503") for _ in range(39)])
    assert policy(sleeps, max_attempts=40, initial_backoff_s=1, max_backoff_s=5).call(fn) == "ok"
    assert len(sleeps.waits) == 39
    assert all(0 <= wait <= 5 for wait in sleeps.waits)


def test_backoff_grows_from_the_initial_value() -> None:
    # Full jitter: the n-th wait lies in [0, min(cap, initial x 2^(n-1))].
    sleeps = Sleeps()
    fn, _ = failing([RetriableError("503") for _ in range(6)])
    assert policy(sleeps, max_attempts=10, initial_backoff_s=0.5, max_backoff_s=60).call(fn)
    for n, wait in enumerate(sleeps.waits, start=1):
        assert 0 <= wait <= min(60, 0.5 * 2 ** (n - 1))


def test_zero_initial_backoff_does_not_wait() -> None:
    sleeps = Sleeps()
    fn, _ = failing([RetriableError("503") for _ in range(3)])
    policy(sleeps, initial_backoff_s=0, max_backoff_s=0).call(fn)
    assert sleeps.waits == [0, 0, 0]


# --- RateLimiter -----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it (or a test advances it)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def acquire_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    times = []
    for _ in range(n):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_zero_rate_disables_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)
    acquire_times(limiter, clock, 1000)
    assert clock.sleeps == []
    assert clock.now == 1000.0


@pytest.mark.parametrize("rate", [1, 4, 10, 20])
def test_rate_spaces_acquisitions(rate: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, burst=1, clock=clock, sleep=clock.sleep)
    times = acquire_times(limiter, clock, 21)
    assert times[0] == 1000.0  # the first one goes at once
    gaps = [b - a for a, b in itertools.pairwise(times)]
    for gap in gaps:
        assert gap == pytest.approx(1 / rate)
    assert times[-1] - times[0] == pytest.approx(20 / rate)


def test_default_burst_is_the_rate_then_spacing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    times = acquire_times(limiter, clock, 20)
    assert times[:5] == [1000.0] * 5  # a burst of one second's worth
    # The other 15 are spaced at 1/5 s: 3 s for the lot.
    assert times[-1] - times[0] == pytest.approx(15 / 5)
    # Never more than rate + burst in any one second.
    for start in times:
        assert sum(start <= t < start + 1 for t in times) <= 10


def test_tokens_refill_while_idle_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, burst=2, clock=clock, sleep=clock.sleep)
    acquire_times(limiter, clock, 2)
    assert clock.sleeps == []
    clock.now += 100  # idle for long: the bucket holds at most `burst`
    start = clock.now
    times = acquire_times(limiter, clock, 4)
    assert times[:2] == [start, start]
    assert times[2] == pytest.approx(start + 0.5)
    assert times[3] == pytest.approx(start + 1.0)


def test_fractional_rate_below_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock, sleep=clock.sleep)
    times = acquire_times(limiter, clock, 3)
    assert times[1] - times[0] == pytest.approx(2.0)
    assert times[2] - times[1] == pytest.approx(2.0)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("start", [1000.0, 1e6, 123456.789])
def test_limiter_terminates_with_a_clock_that_moves_only_by_what_is_slept(start: float) -> None:
    # Refilling by (now - last) x rate leaves float dust (0.9999999999991 tokens); the wait for
    # the rest is below the clock's resolution, so such a clock never reaches a whole token.
    clock = FakeClock(start)
    limiter = RateLimiter(20, burst=1, clock=clock, sleep=clock.sleep)
    times = acquire_times(limiter, clock, 200)
    assert times[-1] - times[0] == pytest.approx(199 / 20)
    assert len(clock.sleeps) < 400
