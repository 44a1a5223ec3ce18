"""Issue 22, 3: the console's own limits.

- A counted login attempt is kept longer than the longest backoff: waiting once at the cap
  does not wipe the count.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from state.store import StateStore
from state.users import login_throttles
from sync.bootstrap import build_store
from sync.settings import load_settings
from sync.web.auth import LoginLimiter, LoginPolicy
from tests.web.conftest import FakeClock


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    made = build_store(load_settings(None, overrides={"state": {"url": state_url}}))
    try:
        yield made
    finally:
        made.engine.dispose()


# -- a counted attempt outlives the longest backoff ----------------------------------------------


def test_a_wait_at_the_cap_does_not_forget_the_count(store: StateStore, clock: FakeClock) -> None:
    """With the default policy (counts kept 15 minutes, waits capped at 15 minutes), the
    count was forgotten when a wait at the cap ended: one wait of 15 minutes bought a
    stranger 5 fresh guesses. Now the count is kept past the end of the wait, so the next
    wrong guess waits the longest again."""
    policy = LoginPolicy()
    assert policy.max_delay_s >= policy.window_s  # the case that went wrong
    limiter = LoginLimiter(store.engine, clock=clock, policy=policy)
    name, address = "ana", "198.51.100.1"
    for _ in range(policy.max_per_user):
        assert limiter.attempt(name, address) == 0
    waits = []
    for _ in range(7):
        wait = limiter.attempt(name, address)  # refused: the name waits
        waits.append(wait)
        clock.advance(wait + 1)  # the stranger comes back just after the wait
        assert limiter.attempt(name, address) == 0  # counted (and checked), then a wait again
    assert waits == [60, 120, 240, 480, 900, 900, 900]
    key = f"user:{name}"
    assert login_throttles(store.engine, [key])[key].attempts == policy.max_per_user + 7


def test_a_count_is_swept_a_window_after_its_wait_ends(store: StateStore, clock: FakeClock) -> None:
    """Kept a window past the end of its wait, not longer: a flood of names stays small."""
    policy = LoginPolicy(max_per_user=1, window_s=60, base_delay_s=600, max_delay_s=600)
    limiter = LoginLimiter(store.engine, clock=clock, policy=policy)
    assert limiter.attempt("ana", "198.51.100.1") == 0  # counted; waits 600 s
    clock.advance(600 + 59)
    assert limiter.attempt("budi", "198.51.100.2") == 0  # sweeps
    assert "user:ana" in login_throttles(store.engine, ["user:ana"])
    clock.advance(2)
    assert limiter.attempt("citra", "198.51.100.3") == 0
    assert login_throttles(store.engine, ["user:ana", "addr:198.51.100.1"]) == {}
