"""The daemon's jobs in-process, on the in-process sandbox: the retry job sends what is pending
in any period, not only the active ones (issue 23 item 3); every delivery line names the job
that sent it (issue 23 item 5)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog
from sqlmodel import Session, col, func, select
from structlog.testing import capture_logs

from connectors.sandbox import generate_world
from state.models import OutboxEntry, OutboxState
from sync.logs import configure_logging
from sync.service.daemon import Daemon
from sync.settings import load_settings
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import EKINERJA_URL, PMM_URL, InProcessSandbox, app_for

Box = Callable[..., InProcessSandbox]


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def _daemon(box: InProcessSandbox, state_url: str, periods: list[str], **daemon: Any) -> Daemon:
    settings = load_settings(
        None,
        overrides={
            "state": {"url": state_url},
            "source": {"base_url": PMM_URL, "page_size": 50},
            "target": {"base_url": EKINERJA_URL, "rate_limit_per_s": 0, "concurrency": 4},
            "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.2, "max_attempts": 5},
            "sync": {"periods": periods},
            "daemon": {
                "http_bind": "",
                "reconcile_cron": "",
                "sync_cron": "",
                "stop_grace_s": 5,
                **daemon,
            },
        },
    )
    return Daemon(
        settings,
        source_transport=box.source_transport,
        target_transport=box.target_transport,
    )


@contextmanager
def _running(daemon: Daemon) -> Iterator[None]:
    thread = threading.Thread(target=lambda: daemon.run(install_signals=False))
    thread.start()
    try:
        _wait_for("the daemon to start", lambda: daemon.started.is_set() or not thread.is_alive())
        assert thread.is_alive(), "the daemon ended at start-up"
        yield
    finally:
        daemon.request_stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def _pending(state_url: str, period: str) -> int:
    from state.db import make_engine

    engine = make_engine(state_url)
    try:
        with Session(engine) as session:
            query = select(func.count()).where(
                col(OutboxEntry.period) == period, col(OutboxEntry.state) == OutboxState.PENDING
            )
            return int(session.exec(query).one())
    finally:
        engine.dispose()


def test_the_retry_job_sends_what_is_pending_in_a_period_it_does_not_sync(
    sandbox: Box, sqlite_url: str
) -> None:
    old, active = "2025-1", "2025-2"
    world = generate_world(schools=2, teachers_per_school=6, seed=3, periods=[old, active])
    expected = expected_after_sync(world, old)
    box = sandbox(world)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    # `run --period 2025-1` while e-Kinerja cannot be reached: everything stays pending.
    box.intercept(refused)
    with app_for(box, sqlite_url) as app:
        assert app.engine.run(old).target_unreachable
    assert _pending(sqlite_url, old) > 0
    assert box.target.stats()["skp_created"] == 0
    box.intercept(None)

    # The daemon syncs 2025-2 only (and runs no sync job at all here): its retry job still
    # sends what 2025-1 left pending.
    daemon = _daemon(box, sqlite_url, [active], retry_every_s=0.2)
    with _running(daemon):
        assert daemon.active_periods() == [active]
        _wait_for("2025-1's pending records", lambda: _pending(sqlite_url, old) == 0)
    stats = box.target.stats()
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment


def test_every_delivery_line_names_the_daemon_job_that_sent_it(
    sandbox: Box, sqlite_url: str
) -> None:
    period = "2025-1"
    world = generate_world(schools=2, teachers_per_school=6, seed=3, periods=[period])
    expected = expected_after_sync(world, period)
    box = sandbox(world)
    configure_logging(json=True, level="INFO")
    daemon = _daemon(box, sqlite_url, [period], sync_every_s=3600, retry_every_s=3600)

    def synced() -> bool:
        stats = box.target.stats()
        return bool(
            stats["creates"]["skp"] == expected.skp
            and stats["creates"]["penilaian"] == expected.assessment
        )

    capture = capture_logs(processors=[structlog.contextvars.merge_contextvars])
    with capture as events, _running(daemon):
        _wait_for("the first sync", synced)
    delivery = [e for e in events if e["event"].startswith("deliver.")]
    assert any(e["event"] == "deliver.ok" and e.get("job") == "sync" for e in delivery)
    # The retry job runs at start-up too, and may find something to send.
    assert [e for e in delivery if e.get("job") not in {"sync", "retry"}] == []
