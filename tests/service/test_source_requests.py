"""What a run asks the source: the period listing once (not again when the caller has just
fetched it, as ``run`` without ``--period``, the daemon and the demo do), then one walk of
the period; a rerun with nothing changed asks no more."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from connectors.sandbox import generate_world
from sync.pipeline.periods import fetch_listing
from tests.service.harness import InProcessSandbox, app_for

PERIOD = "2025-1"
LISTING = ("GET", "/api/v1/periode")
WALK = ("GET", "/api/v1/kinerja")


def test_a_run_asks_for_the_listing_once_and_not_when_given_it(
    sandbox: Callable[..., InProcessSandbox], sqlite_url: str
) -> None:
    world = generate_world(schools=3, teachers_per_school=5, seed=5, periods=[PERIOD])
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "new") > 0
        first = Counter(box.source_requests)
        assert first[LISTING] == 1
        assert first[WALK] >= 1

        listing = fetch_listing(app.source, app.store)
        again = app.engine.run(PERIOD, listing=listing)
        assert again.requests_sent == 0
        rerun = Counter(box.source_requests) - first
        assert rerun == Counter({LISTING: 1, WALK: 1})  # the caller's fetch, one walk page
