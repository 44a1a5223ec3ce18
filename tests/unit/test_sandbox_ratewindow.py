"""The sandbox's rate limit (connectors.sandbox.ratewindow.RateWindow) on a fake clock: a
sliding one-second window per client, token requests counted but never refused, the worst
window of arrivals kept."""

from __future__ import annotations

import pytest

from connectors.sandbox.ratewindow import RateWindow, retry_after_whole_s


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_sliding_window_not_a_bucket() -> None:
    clock = Clock()
    window = RateWindow(clock)
    assert [window.arrive("a", 3) for _ in range(3)] == [None, None, None]
    clock.now += 0.5
    assert window.arrive("a", 3) == pytest.approx(0.5)  # the first three leave at 101.0
    clock.now += 0.49
    assert window.arrive("a", 3) is not None
    clock.now += 0.011  # now past 101.0: the first three left, one slot each time after
    assert window.arrive("a", 3) is None
    assert window.stats() == {
        "accepted": 4,
        "refused": 2,
        "tokens": 0,
        "arrivals": 6,
        "worst_window": 5,  # 100.0 x3, 100.5, 100.99: refused ones arrived all the same
        "span_s": pytest.approx(1.001),
        "per_second": [5, 1],
    }


def test_each_client_has_its_own_window() -> None:
    clock = Clock()
    window = RateWindow(clock)
    assert window.arrive("a", 1) is None
    assert window.arrive("b", 1) is None
    assert window.arrive("a", 1) is not None
    assert window.stats()["worst_window"] == 2


def test_token_requests_take_room_and_are_never_refused() -> None:
    clock = Clock()
    window = RateWindow(clock)
    assert window.arrive("a", 2, token=True) is None
    assert window.arrive("a", 2) is None
    assert window.arrive("a", 2) is not None  # the token request counted
    assert window.arrive("a", 2, token=True) is None
    stats = window.stats()
    assert (stats["tokens"], stats["accepted"], stats["refused"]) == (2, 1, 1)
    assert stats["worst_window"] == 4


def test_no_limit_still_counts_and_reset_clears() -> None:
    clock = Clock()
    window = RateWindow(clock)
    for _ in range(50):
        assert window.arrive("a", 0) is None
        clock.now += 0.01
    assert window.stats()["worst_window"] == 50
    assert window.stats()["per_second"] == [50]
    window.reset()
    assert window.stats() == {
        **dict.fromkeys(("accepted", "refused", "tokens", "arrivals", "worst_window"), 0),
        "span_s": 0.0,
        "per_second": [],
    }


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after_whole_s(0.01) == 1.0
    assert retry_after_whole_s(1.2) == 2.0
