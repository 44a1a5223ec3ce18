"""sync.retry.RetryPolicy on a fake clock: nothing sleeps (the rate limit: test_ratelimit.py)."""

from __future__ import annotations

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
