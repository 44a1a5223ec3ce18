"""e-Kinerja's "later" (429, 503) as backpressure (issue 22): the retry waits keep growing
across consecutive 429s (virtual sleep), the run counts the time waited once however many
threads wait, a give-up names its cause, and each cause has its own advice (CLI and console).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable

import pytest

from connectors.errors import RetriableError, TargetPaused
from sync.advice import TARGET_CODES, advice
from sync.delivery.backpressure import Backpressure
from sync.delivery.results import exhausted_code
from sync.delivery.retry import RetryPolicy, asked_to_wait
from sync.delivery.sender import GaveUp
from sync.pipeline.summary import RunSummary
from sync.web._words import explain


def _policy(waits: list[float], **settings: float) -> RetryPolicy:
    values = {"max_attempts": 8, "initial_backoff_s": 0.5, "max_backoff_s": 60.0}
    values.update(settings)
    return RetryPolicy(
        max_attempts=int(values["max_attempts"]),
        initial_backoff_s=values["initial_backoff_s"],
        max_backoff_s=values["max_backoff_s"],
        max_elapsed_s=3600,
        sleep=waits.append,  # virtual: nothing sleeps
    )


def _answers(errors: list[Exception]) -> Callable[[], str]:
    left = iter(errors)

    def call() -> str:
        error = next(left, None)
        if error is not None:
            raise error
        return "ok"

    return call


def _too_many(retry_after_s: float | None = 1.0) -> RetriableError:
    return RetriableError("429", status=429, retry_after_s=retry_after_s)


# -- the waits -------------------------------------------------------------------------------


@pytest.mark.parametrize("trial", range(5))  # the jitter differs each time; the rule holds
def test_waits_grow_across_consecutive_429s_with_retry_after(trial: int) -> None:
    waits: list[float] = []
    policy = _policy(waits)
    assert policy.call(_answers([_too_many() for _ in range(7)])) == "ok"
    assert len(waits) == 7
    # Never earlier than Retry-After, never shorter than the wait before, and growing: the
    # n-th lies in [b/2, b] for b = 0.5 x 2^(n-1). Before issue 22 every wait was 1 to 1.5 s
    # (Retry-After + a little jitter): eight 429s were over within 13 s.
    assert all(w >= 1.0 for w in waits)
    assert all(b >= a for a, b in itertools.pairwise(waits)), waits
    for n, wait in enumerate(waits, start=1):
        assert 0.5 * 2 ** (n - 1) / 2 <= wait or wait == 1.0
    assert waits[-1] >= 16
    assert sum(waits) >= 33


def test_the_backoff_of_429s_stops_growing_at_the_cap_but_retry_after_does_not() -> None:
    waits: list[float] = []
    policy = _policy(waits, max_attempts=12, max_backoff_s=10)
    assert policy.call(_answers([_too_many() for _ in range(11)])) == "ok"
    assert all(w <= 10 for w in waits)
    assert all(w >= 5 for w in waits[5:])  # at the cap: [cap/2, cap]
    waits.clear()
    assert policy.call(_answers([_too_many(120), _too_many(120)])) == "ok"
    assert all(w >= 120 for w in waits)  # the server said when, even above the cap


def test_503_without_retry_after_grows_too_and_a_500_keeps_full_jitter() -> None:
    waits: list[float] = []
    busy = [RetriableError("503", status=503) for _ in range(6)]
    assert _policy(waits).call(_answers(busy)) == "ok"
    assert all(b >= a for a, b in itertools.pairwise(waits))
    assert waits[-1] >= 0.5 * 2**5 / 2
    assert asked_to_wait(busy[0])
    assert asked_to_wait(TargetPaused("maintenance", status=503, retry_after_s=30))
    assert not asked_to_wait(RetriableError("500", status=500))
    assert not asked_to_wait(RetriableError("dropped"))


def test_each_wait_is_told_with_the_error_it_follows() -> None:
    waits: list[float] = []
    told: list[tuple[float, int | None]] = []
    errors: list[Exception] = [_too_many(3), RetriableError("500", status=500)]

    def on_wait(seconds: float, error: BaseException | None) -> None:
        assert isinstance(error, RetriableError)
        told.append((seconds, error.status))

    assert _policy(waits).call(_answers(errors), on_wait=on_wait) == "ok"
    assert [s for s, _ in told] == waits
    assert [status for _, status in told] == [429, 500]


# -- what the run counts ---------------------------------------------------------------------


def test_waits_of_several_threads_count_once() -> None:
    seen = Backpressure()
    seen.answered(429)
    seen.answered(429)
    seen.answered(503)
    seen.answered(500)  # not "later": not counted
    seen.waiting(100.0, 10.0)  # [100, 110]
    seen.waiting(101.0, 4.0)  # within it
    seen.waiting(105.0, 10.0)  # [105, 115]: 5 s more
    seen.waiting(200.0, 1.0)  # later on
    assert (seen.rate_limited, seen.busy, seen.answers) == (2, 1, 3)
    assert seen.waited_s == pytest.approx(16.0)


def test_the_summary_adds_the_deliveries_up_and_says_it_in_one_line() -> None:
    summary = RunSummary(run_id="r", period="2025-1", dry_run=False)
    assert not summary.throttled
    first, second = Backpressure(), Backpressure()
    for _ in range(30):
        first.answered(429)
    first.waiting(0.0, 40.0)
    for _ in range(7):
        second.answered(429)
    second.waiting(0.0, 21.2)
    summary.add_backpressure(first)
    summary.add_backpressure(second)
    assert summary.throttled
    assert summary.throttle_line() == (
        "e-Kinerja asked to slow down 37 times (rate limit, 429); waited 61 s; "
        "0 records left pending"
    )
    summary.busy, summary.outcomes[("skp", "pending")] = 1, 2
    assert summary.throttle_line().endswith(
        "and said it was busy once (503, busy or maintenance); waited 61 s; "
        "2 records left pending, sent on the next run"
    )
    assert summary.as_dict()["throttled"] == {
        "rate_limited": 37,
        "busy": 1,
        "waited_s": 61.2,
        "left_pending": 0,
    }


# -- what a give-up is, and its advice ---------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "later"),
    [
        ({429: 8}, True),
        ({503: 2}, True),
        ({429: 3, 503: 2, None: 1}, True),  # "later" and no answer: never dead
        ({None: 3}, False),  # no answer at all: an outage (pending too, reported as such)
        ({429: 7, 500: 1}, False),
        ({502: 3}, False),
    ],
)
def test_only_later_answers_keep_a_record_pending(
    answered: dict[int | None, int], later: bool
) -> None:
    gave_up = GaveUp(RetriableError("x"), sum(answered.values()), Counter(answered))
    assert gave_up.only_later is later


@pytest.mark.parametrize(
    ("status", "code", "named"),
    [
        (429, "retries_exhausted_rate_limited", "rate limit (429)"),
        (503, "retries_exhausted_busy", "busy or in maintenance (503)"),
        (504, "retries_exhausted_timeout", "timed out"),
        (408, "retries_exhausted_timeout", "timed out"),
        (500, "retries_exhausted_server_error", "server error (5xx)"),
        (502, "retries_exhausted_server_error", "server error (5xx)"),
    ],
)
def test_the_advice_of_a_give_up_names_its_cause(status: int, code: str, named: str) -> None:
    assert exhausted_code(status) == code
    text = advice(code, replay_id="2025-1/198503152010012003/skp")
    assert named in text
    assert "`ekinerja-sync replay 2025-1/198503152010012003/skp`" in text
    assert "reachable" not in text  # the old, one-size advice: "check that it is reachable"


@pytest.mark.parametrize("code", ["rate_limited", "target_busy"])
def test_a_record_left_pending_by_later_needs_no_one(code: str) -> None:
    assert advice(code).startswith("nothing to do")
    assert "replay" not in advice(code)


def test_every_code_of_the_service_has_indonesian_words_in_the_console() -> None:
    own = [c for c in TARGET_CODES if c.islower()]
    assert {"retries_exhausted", "retries_exhausted_timeout", "rate_limited"} <= set(own)
    texts = {explain(code) for code in own}
    assert len(texts) == len(own)  # each its own words
    assert explain(None) not in texts  # none falls back to the general ones
