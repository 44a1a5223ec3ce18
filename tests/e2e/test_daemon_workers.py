"""``daemon --workers N``: worker processes on one PostgreSQL store, started and stopped by
worker 1; refused on SQLite."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from connectors.sandbox import Faults, generate_world, running_sandbox
from state.db import make_engine
from state.models import OutboxEntry, OutboxState
from sync.cli import app as cli
from tests.e2e.helpers import expected_after_sync, refusals
from tests.e2e.test_daemon import GRACE_S, PERIOD, _daemon_process, _write_config, wait_for


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _claimers(state_url: str) -> set[int]:
    """The pids of the workers that sent the requests (``claimed_by`` is host:pid:tag)."""
    engine = make_engine(state_url)
    try:
        with Session(engine) as session:
            owners = session.exec(
                select(OutboxEntry.claimed_by).where(col(OutboxEntry.state) == OutboxState.DONE)
            ).all()
    finally:
        engine.dispose()
    return {int(owner.split(":")[1]) for owner in owners if owner}


def test_two_workers_share_the_period_and_stop_with_worker_1(pg_url: str, tmp_path: Path) -> None:
    world = generate_world(schools=4, teachers_per_school=10, seed=29, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    # PMM answers only errors until both workers run, so that both take part in the sync.
    closed = Faults(error_share=1.0)
    # Answers slow enough (C = 2 in flight) that the delivery lasts for both to take part.
    with running_sandbox(world, faults=Faults(latency_s=0.03), source_faults=closed) as box:
        config = _write_config(
            tmp_path / "config.toml", pg_url, box, sync_every_s=0.5, retry_every_s=3600
        )
        with _daemon_process(config, "--workers", "2") as first:
            second = wait_for(
                "worker 2 to start",
                lambda: next(
                    (
                        e
                        for e in first.events()
                        if e["event"] == "daemon.started" and e["worker"] == 2
                    ),
                    None,
                ),
                timeout=30,
            )
            started = first.event("daemon.started")
            assert started is not None
            assert (started["worker"], started["pid"]) == (1, first.proc.pid)
            assert second["pid"] != first.proc.pid
            assert second["http"] is None  # worker 1 alone serves /healthz and /metrics
            health = httpx.get(f"{started['http']}/healthz")
            assert health.status_code == 200
            assert health.json()["workers"] == {"configured": 2, "alive": 2}

            closed.error_share = 0.0
            wanted = len(expected.skp) + len(expected.assessment)
            wait_for(
                "every record to arrive",
                lambda: sum(len(v) for v in box.target.stats()["creates"].values()) >= wanted,
                timeout=60,
            )
            time.sleep(1.0)  # more scheduled syncs on both: they must send nothing
            code, took = first.stop(signal.SIGTERM)
            assert code == 0, "\n".join(first.lines)
            assert took < GRACE_S + 2
            wait_for("worker 2 to be gone", lambda: _gone(second["pid"]), timeout=5)
        stats = box.target.stats()
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment
    assert stats["replayed"] == 0  # no request went twice
    assert not expected.held  # every penilai's SKP goes: none went before its penilai's
    assert refusals(pg_url) == []
    assert stats["rejected"] == 0
    assert stats["requests"] == wanted
    # Both processes sent requests, each under its own name in the claims.
    assert _claimers(pg_url) == {first.proc.pid, second["pid"]}
    events = first.events()
    assert {e["worker"] for e in events if e["event"] == "deliver.ok"} == {1, 2}
    # Worker 2 got the stop from worker 1 (SIGTERM went to worker 1 only) and stopped cleanly.
    stops = {e["worker"]: e for e in events if e["event"] == "daemon.stopping"}
    assert stops[2]["signal"] == "SIGTERM"
    assert {e["worker"] for e in events if e["event"] == "daemon.stopped"} == {1, 2}
    assert not [e for e in events if e["event"] == "daemon.worker_killed"]


def test_a_worker_that_dies_stops_the_others_and_worker_1_exits_1(
    pg_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=1, teachers_per_school=2, seed=1, periods=[PERIOD])
    with running_sandbox(world) as box:
        config = _write_config(
            tmp_path / "config.toml", pg_url, box, sync_cron="", retry_every_s=3600
        )
        with _daemon_process(config, "--workers", "3") as first:
            children = wait_for(
                "workers 2 and 3 to start",
                lambda: (
                    found
                    if len(
                        found := {
                            e["worker"]: e["pid"]
                            for e in first.events()
                            if e["event"] == "daemon.started" and e["worker"] > 1
                        }
                    )
                    == 2
                    else None
                ),
                timeout=30,
            )
            os.kill(children[3], signal.SIGKILL)
            code = first.proc.wait(timeout=GRACE_S + 10)
            assert code == 1, "\n".join(first.lines)
            wait_for("worker 2 to be gone", lambda: _gone(children[2]), timeout=5)
            time.sleep(0.2)  # the last lines
            exited = first.event("daemon.worker_exited")
            assert exited is not None
            assert (exited["child_worker"], exited["child_pid"]) == (3, children[3])
            assert exited["exit_code"] == -signal.SIGKILL
            assert exited["level"] == "error"
            failed = first.event("daemon.failed")
            assert failed is not None
            assert "worker 3" in failed["error"]
            stopped = {e["worker"] for e in first.events() if e["event"] == "daemon.stopped"}
            assert stopped == {1, 2}


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{database}"\n', encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(cli, ["-c", str(config), "--log-console", "daemon", "--workers", "2"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--workers 2 needs a PostgreSQL state store" in lines[0]
    assert "Traceback" not in result.output
    assert not database.exists()  # refused before anything started

    # The config key, in JSON like the daemon's log lines; the message names the key.
    config.write_text(
        f'[state]\nurl = "sqlite:///{database}"\n[daemon]\nworkers = 2\n', encoding="utf-8"
    )
    result = runner.invoke(cli, ["-c", str(config), "--log-json", "daemon"])
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["event"] == "daemon.failed"
    assert error["error"].startswith("[daemon] workers = 2 needs a PostgreSQL state store")
    assert not database.exists()

    # The option wins over the key.
    result = runner.invoke(cli, ["-c", str(config), "--log-json", "daemon", "--workers", "3"])
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"].startswith("--workers 3 needs")
