"""The daemon sends nothing to a closed period (issue 26; docs/design.md, invariant 9): its sync
and retry jobs leave the period out and the log says so, while an open period beside it syncs
as usual."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import structlog
from structlog.testing import capture_logs

from connectors.sandbox import generate_world
from state.db import make_engine
from state.lifecycle import Lifecycle
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import InProcessSandbox, app_for
from tests.service.test_daemon_jobs import _daemon, _pending, _running, _wait_for

Box = Callable[..., InProcessSandbox]


def test_the_daemon_skips_a_closed_period_and_says_so(sandbox: Box, sqlite_url: str) -> None:
    closed, active = "2025-1", "2025-2"
    world = generate_world(schools=2, teachers_per_school=6, seed=3, periods=[closed, active])
    expected = expected_after_sync(world, active)
    box = sandbox(world)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    # 2025-1 read while e-Kinerja could not be reached: everything of it stays pending; then
    # the period is closed.
    box.intercept(refused)
    with app_for(box, sqlite_url) as app:
        assert app.engine.run(closed).target_unreachable
    box.intercept(None)
    left = _pending(sqlite_url, closed)
    assert left > 0
    engine = make_engine(sqlite_url)
    try:
        Lifecycle(engine).close(closed, by="ana", why="batas penilaian lewat")
    finally:
        engine.dispose()

    # The daemon is told to sync both, and to retry often.
    daemon = _daemon(box, sqlite_url, [closed, active], sync_every_s=0.3, retry_every_s=0.2)

    def active_synced() -> bool:
        creates = box.target.stats()["creates"]
        return bool(creates["skp"] == expected.skp and creates["penilaian"] == expected.assessment)

    capture = capture_logs(processors=[structlog.contextvars.merge_contextvars])
    with capture as events, _running(daemon):
        assert daemon.job_periods("sync") == [active]
        assert daemon.job_periods("retry") == [active]
        assert closed in daemon.job_periods("reconcile")  # it only reads
        _wait_for("the open period's sync", active_synced)
        _wait_for(
            "a retry job",
            lambda: any(
                e["event"] == "periods.closed_skipped" and e.get("job") == "retry" for e in events
            ),
        )
    assert _pending(sqlite_url, closed) == left
    creates = box.target.stats()["creates"]
    assert not any(key.endswith(f"/{closed}") for key in creates["skp"])
    said = [e for e in events if e["event"] == "periods.closed_skipped"]
    assert {e["job"] for e in said} == {"sync", "retry"}
    assert all(e["periods"] == [closed] for e in said)
    assert len(said) == 2  # once per job, not at every run of it
