"""How many threads send at once (``Deliverer._senders``): ``concurrency``, but no more than a
rate limit can keep busy (Little's law: rate x time an answer takes, plus one)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from sync.delivery.deliver import Deliverer
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.retry import RetryPolicy


def _deliverer(rate_per_s: float, concurrency: int = 16) -> Deliverer:
    policy = RetryPolicy(max_attempts=1, initial_backoff_s=0, max_backoff_s=0, max_elapsed_s=1)
    # Sizing reads neither the store nor the target.
    return Deliverer(
        store=cast(Any, None),
        target=cast(Any, None),
        retry=policy,
        rate_limiter=RateLimiter(rate_per_s),
        concurrency=concurrency,
    )


def test_without_a_rate_limit_every_thread_sends() -> None:
    deliverer = _deliverer(0)
    deliverer.latency_s = 0.001
    assert deliverer._senders() == 16


def test_before_any_answer_every_thread_sends() -> None:
    assert _deliverer(100)._senders() == 16


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
    deliverer = _deliverer(rate)
    deliverer.latency_s = latency
    assert deliverer._senders() == expected
