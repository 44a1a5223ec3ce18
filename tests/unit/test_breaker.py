"""sync.breaker.CircuitBreaker: outages in a row open it; a probe after reset_s; an answer
closes it."""

from __future__ import annotations

import pytest

from sync.delivery.breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_threshold_failures_in_a_row() -> None:
    breaker = CircuitBreaker(threshold=3, reset_s=60, clock=FakeClock())
    assert not breaker.failure("refused")
    assert not breaker.failure("refused")
    assert breaker.allow()
    assert breaker.failure("refused: 3")
    assert breaker.state is BreakerState.OPEN
    assert breaker.blocks()
    assert not breaker.allow()
    assert breaker.reason == "refused: 3"


def test_an_answer_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=2, reset_s=60, clock=FakeClock())
    breaker.failure("refused")
    breaker.success()
    assert not breaker.failure("refused")
    assert breaker.state is BreakerState.CLOSED


def test_one_probe_after_reset_then_closes_on_an_answer() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, reset_s=30, clock=clock)
    breaker.failure("refused")
    clock.now = 29.9
    assert not breaker.allow()
    clock.now = 30
    assert not breaker.blocks()
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.reason is None
    assert breaker.allow()


def test_a_failed_probe_opens_it_again_for_reset_s() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=5, reset_s=30, clock=clock)
    for _ in range(5):
        breaker.failure("refused")
    clock.now = 31
    assert breaker.allow()
    assert breaker.failure("still refused")  # one failure in half-open is enough
    assert breaker.blocks()
    clock.now = 60
    assert breaker.blocks()
    clock.now = 61
    assert breaker.allow()


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold=0)
