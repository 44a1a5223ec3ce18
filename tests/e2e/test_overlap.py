"""Overlap (issue 28): a second process delivers while the first still walks the period.

Every record reaches e-Kinerja once (the sandbox's creates per record, and no request
beyond one per deliverable but the idempotent replays of a resend), none before its
penilai's SKP, the ledger verifies, and no claim is left; also when the delivery process is
killed in the middle of a page: its claims are taken over and nothing is lost or sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, select

from connectors.sandbox import Faults, generate_world, running_sandbox
from state.db import make_engine
from state.models import OutboxEntry, OutboxState
from tests.e2e.helpers import expected_after_sync, refusals

PERIOD = "2025-1"


def _config(path: Path, state_url: str, pmm: str, target: str) -> Path:
    path.write_text(
        f'[state]\nurl = "{state_url}"\n'
        f'[source]\nbase_url = "{pmm}"\npage_size = 20\n'
        f'[target]\nbase_url = "{target}"\nrate_limit_per_s = 0\nconcurrency = 4\n'
        "[retry]\ninitial_backoff_s = 0.01\nmax_backoff_s = 0.1\n"
        "[sync]\noverlap = true\n",
        encoding="utf-8",
    )
    return path


def _cli(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from sync.cli import main; main()", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _children(pid: int) -> list[int]:
    try:
        said = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(p) for p in said.split()]


def _left_unsent(state_url: str) -> int:
    """Outbox entries still pending (a claim left behind holds its entry pending)."""
    engine = make_engine(state_url)
    try:
        with Session(engine) as session:
            entries = session.exec(select(OutboxEntry)).all()
    finally:
        engine.dispose()
    return sum(e.state is OutboxState.PENDING for e in entries)


def _check(box_stats: dict[str, object], expected: object, config: Path, state_url: str) -> None:
    stats = box_stats
    assert stats["creates"]["skp"] == expected.skp  # type: ignore[index,attr-defined]
    assert stats["creates"]["penilaian"] == expected.assessment  # type: ignore[index,attr-defined]
    assert stats["rejected"] == 0
    # One request per deliverable; a resend of an unanswered one is replayed from its key.
    sent = len(expected.skp) + len(expected.assessment)  # type: ignore[attr-defined]
    assert stats["requests"] - stats["replayed"] == sent  # type: ignore[operator]
    assert refusals(state_url) == []
    assert _left_unsent(state_url) == 0
    verify = _cli(config, "ledger", "verify")
    out, err = verify.communicate(timeout=120)
    assert verify.returncode == 0, out + err
    assert "ledger OK" in out


def test_a_run_delivers_from_a_second_process_each_record_once(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=6, teachers_per_school=15, seed=23, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    assert not expected.held
    with running_sandbox(world, faults=Faults(latency_s=0.01)) as box:
        config = _config(tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url)
        run = _cli(config, "run", "--create-store", "--period", PERIOD, "--json")
        helpers: set[int] = set()
        while run.poll() is None:
            helpers.update(_children(run.pid))
            time.sleep(0.02)
        out, err = run.communicate(timeout=120)
        assert run.returncode in (0, 1), err  # 1: the world's bad records were quarantined
        stats = box.target.stats()
    assert helpers, "no delivery process was started"
    _check(stats, expected, config, state_url)
    # The summary covers both processes: every request the sandbox counted is in it.
    summary = json.loads(out)
    assert summary["requests_sent"] == len(expected.skp) + len(expected.assessment)
    assert summary["outcomes"]["skp.new"] == len(expected.skp)


def test_the_delivery_process_killed_mid_page_loses_nothing_and_sends_nothing_twice(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=8, teachers_per_school=15, seed=29, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    assert not expected.held
    # Slow enough that the delivery process is killed with requests in flight.
    with running_sandbox(world, faults=Faults(latency_s=0.05)) as box:
        config = _config(tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url)
        run = _cli(config, "run", "--create-store", "--period", PERIOD)
        killed = None
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            helpers = _children(run.pid)
            if helpers and box.target.stats()["requests"] >= 20:
                killed = helpers[0]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.01)
        _out, err = run.communicate(timeout=180)
        assert killed is not None, "the delivery process was not caught at work"
        assert run.returncode in (0, 1), err
        assert "run.helper_died" in err  # and its work was taken over
        stats = box.target.stats()
    _check(stats, expected, config, state_url)
