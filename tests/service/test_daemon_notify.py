"""The daemon's notify job (issue 25): a refusing mail server never holds the sync up, the
messages go with a later notify job, and /metrics counts them per channel."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

from connectors.sandbox import generate_world
from connectors.sandbox.contacts import contacts_csv
from connectors.sandbox.mailsink import running_mail_sink
from state.store import StateStore
from sync.operations.contacts import import_csv
from sync.service.daemon import Daemon
from sync.settings import load_settings
from tests.service.harness import EKINERJA_URL, PMM_URL, InProcessSandbox

Box = Callable[..., InProcessSandbox]
PERIOD = "2026"


def _metric(daemon: Daemon, name: str, **labels: str) -> float:
    assert daemon._metrics is not None
    text = generate_latest(daemon._metrics.registry).decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not in /metrics")


def test_a_refusing_mail_server_waits_for_the_next_notify_job_and_never_for_the_sync(
    sandbox: Box, sqlite_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=3, teachers_per_school=5, seed=8, periods=[PERIOD])
    box = sandbox(world)
    with running_mail_sink(tmp_path / "mail") as sink:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": sqlite_url},
                "source": {"base_url": PMM_URL},
                "target": {"base_url": EKINERJA_URL, "rate_limit_per_s": 0},
                "sync": {"periods": [PERIOD]},
                "daemon": {"http_bind": "", "reconcile_cron": "", "sync_cron": ""},
                "notify": {
                    "cron": "0 0 1 1 *",
                    "remind_days_before": [],
                    "retry_after_s": 0,
                    "smtp": {"port": sink.port},
                },
            },
        )
        daemon = Daemon(
            settings, source_transport=box.source_transport, target_transport=box.target_transport
        )
        thread = threading.Thread(target=lambda: daemon.run(install_signals=False))
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not daemon.started.is_set() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert daemon._app is not None
            assert {job.id for job in daemon._scheduler.get_jobs()} >= {"notify"}
            daemon.run_job("sync")
            store = StateStore(daemon._app.store.engine)
            import_csv(store, contacts_csv(world), actor="operator:test")

            sink.refuse = "421 4.3.2 service not available, closing channel"
            daemon.run_job("notify")
            assert sink.received == []
            created = box.target.stats()["skp_created"]
            assert created > 0
            daemon.run_job("sync")  # completes as ever, the refusal has no part in it
            assert _metric(daemon, "ekinerja_sync_job_runs_total", job="sync", result="ok") == 2
            assert _metric(daemon, "ekinerja_sync_school_messages_waiting", channel="email") > 0
            refused = _metric(
                daemon, "ekinerja_sync_school_messages_total", channel="email", outcome="refused"
            )
            assert refused >= 1

            sink.refuse = None
            daemon.run_job("notify")
            sent = _metric(
                daemon, "ekinerja_sync_school_messages_total", channel="email", outcome="sent"
            )
            waiting = _metric(daemon, "ekinerja_sync_school_messages_waiting", channel="email")
        finally:
            daemon.request_stop()
            thread.join(timeout=10)
    assert sent == len(sink.received) > 0
    assert waiting == 0
    assert len({m.message_id for m in sink.received}) == len(sink.received)
