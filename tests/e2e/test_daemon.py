"""The daemon against the sandbox: source changes arrive at the target, /healthz and /metrics,
a clean stop on SIGTERM/SIGINT that loses nothing, one daemon per SQLite file, no secret in
any log line; and reconciliation against what e-Kinerja holds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from connectors.ekinerja import EkinerjaClient
from connectors.sandbox import Faults, Sandbox, SandboxWorld, generate_world, running_sandbox
from connectors.sandbox.ekinerja_app import TargetStore
from state.db import make_engine
from state.models import OutboxEntry, OutboxState
from sync.bootstrap import build_store
from sync.cli import app as cli
from sync.logs import configure_logging
from sync.service.daemon import Daemon, DaemonError
from sync.settings import load_settings
from sync.version import VERSION
from tests.e2e.helpers import app_for, expected_after_sync

PERIOD = "2025-1"
SECRET = "sandbox-secret"  # the sandbox's client secret, for source and target alike
GRACE_S = 5.0
_COMMAND = [sys.executable, "-c", "from sync.cli import main; main()"]  # ekinerja-sync


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _daemon_section(**values: Any) -> dict[str, Any]:
    return {
        "http_bind": "127.0.0.1:0",
        "stop_grace_s": GRACE_S,
        "reconcile_cron": "",
        "log_format": "json",
        **values,
    }


# -- in a thread: changes arrive, the endpoint, secrets ---------------------------------------


class _Recording(httpx.BaseTransport):
    """The real transport, noting every bearer token sent and every token issued."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.tokens: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if auth:
            self.tokens.add(auth.partition(" ")[2])
        response = self._inner.handle_request(request)
        if request.url.path.endswith("/token"):
            response.read()
            token = json.loads(response.content).get("access_token")
            if token:
                self.tokens.add(token)
        return response

    def close(self) -> None:
        self._inner.close()


@contextmanager
def _daemon_thread(daemon: Daemon) -> Iterator[list[bool]]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run(install_signals=False)))
    thread.start()
    try:
        wait_for("the daemon to start", lambda: daemon.started.is_set() or not thread.is_alive())
        assert thread.is_alive(), "the daemon ended at start-up"
        yield result
    finally:
        daemon.request_stop()
        thread.join(timeout=GRACE_S + 5)
        assert not thread.is_alive()


def _guru_with_draft(world: SandboxWorld, delivered: set[str], skip: set[str]) -> dict[str, Any]:
    return next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["nip"] in delivered
        and r["pegawai"]["nip"] not in skip
        and r["pegawai"]["jenis_ptk"] == "guru"
        and r["penilaian"]["status"] == "draf"
        and not r["dibatalkan"]
    )


def _change_indicator(record: dict[str, Any]) -> None:
    current = record["perencanaan"]["indikator"][0]["kode"]
    other = "G-01" if current != "G-01" else "G-02"
    record["perencanaan"]["indikator"] = [{"kode": other, "nama": "Indikator lain"}]


def _finalise(record: dict[str, Any]) -> None:
    record["penilaian"].update(
        status="final",
        hasil={
            "rating_hasil_kerja": "sesuai_ekspektasi",
            "rating_perilaku": "diatas_ekspektasi",
            "predikat": "baik",
        },
        difinalkan_pada="2025-06-25T10:00:00+07:00",
    )


def test_daemon_carries_source_changes_to_the_target(
    state_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    world = generate_world(schools=2, teachers_per_school=8, seed=3, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    source, target = _Recording(), _Recording()
    configure_logging(json=True, level="INFO")
    with running_sandbox(world) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": state_url},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
                "sync": {"periods": [PERIOD]},
                "daemon": _daemon_section(sync_every_s=0.2, retry_every_s=0.2),
            },
        )
        daemon = Daemon(settings, source_transport=source, target_transport=target)
        with _daemon_thread(daemon) as result:
            wait_for(
                "the first sync",
                lambda: (
                    box.target.stats()["creates"]["skp"] == expected.skp
                    and box.target.stats()["creates"]["penilaian"] == expected.assessment
                ),
            )
            if state_url.startswith("sqlite"):
                with pytest.raises(DaemonError, match="another ekinerja-sync daemon"):
                    Daemon(settings).run(install_signals=False)

            # PMM changes while the daemon runs: a guru's indicator, another's penilaian.
            delivered = {key.split("/")[0] for key in expected.skp}
            changed = _guru_with_draft(world, delivered, set())
            finalised = _guru_with_draft(world, delivered, {changed["pegawai"]["nip"]})
            world.update_record(changed["id"], _change_indicator)
            world.update_record(finalised["id"], _finalise)

            def arrived() -> bool:
                skp = {s["nip"]: s for s in box.target.skps()}[changed["pegawai"]["nip"]]
                kode = world.record(changed["id"])["perencanaan"]["indikator"][0]["kode"]
                stats = box.target.stats()
                return (
                    skp["versi"] == 2
                    and kode in json.dumps(skp["body"])
                    and f"{finalised['pegawai']['nip']}/{PERIOD}" in stats["creates"]["penilaian"]
                )

            wait_for("the changes to arrive at e-Kinerja", arrived)
            stats = box.target.stats()
            assert set(stats["creates"]["skp"].values()) == {1}  # nothing created twice
            assert set(stats["creates"]["penilaian"].values()) == {1}

            health = httpx.get(f"{daemon.health_url}/healthz")
            assert health.status_code == 200
            report = health.json()
            assert report["state_store"] == "ok"
            assert report["version"] == VERSION  # issue 12 item 7
            assert report["periods"][PERIOD]["last_success"] is not None
            assert 0 <= report["periods"][PERIOD]["age_s"] < 60

            daemon.run_job("reconcile")  # the nightly job, now: all as delivered
            metrics = httpx.get(f"{daemon.health_url}/metrics").text
            skp_delivered = len(expected.skp)
            assert (
                f'ekinerja_sync_records{{kind="skp",period="{PERIOD}",status="delivered"}} '
                f"{float(skp_delivered)}" in metrics
            )
            assert 'ekinerja_sync_attempts_total{kind="skp",outcome="delivered"}' in metrics
            assert "ekinerja_sync_request_duration_seconds_bucket{le=" in metrics
            assert f'ekinerja_sync_outbox_depth{{period="{PERIOD}"}} 0.0' in metrics
            assert f'ekinerja_sync_last_success_timestamp_seconds{{period="{PERIOD}"}}' in metrics
            assert "ekinerja_sync_state_store_up 1.0" in metrics
            assert f'ekinerja_sync_build_info{{version="{VERSION}"}} 1.0' in metrics
            assert 'ekinerja_sync_job_runs_total{job="sync",result="ok"}' in metrics
            assert (
                f'ekinerja_sync_reconcile_discrepancies{{period="{PERIOD}",problem="missing"}} 0.0'
                in metrics
            )
            assert httpx.get(f"{daemon.health_url}/nothing").status_code == 404
        assert result == [True]  # stopped within the grace period

    lines = capsys.readouterr().err.splitlines()
    events = [json.loads(line) for line in lines]  # JSON lines, every one
    names = [e["event"] for e in events]
    assert {"daemon.started", "run.start", "deliver.ok", "daemon.stopping", "daemon.stopped"} <= (
        set(names)
    )
    sent = [e for e in events if e["event"] == "deliver.ok"]
    assert all({"run_id", "period", "npsn", "nip"} <= set(e) for e in sent)
    # The job that sent it, though the line is written on a sending thread (issue 23 item 5).
    assert {e.get("job") for e in sent} <= {"sync", "retry"}
    assert all(e["period"] == PERIOD for e in events if e["event"] == "run.start")
    started = next(e for e in events if e["event"] == "daemon.started")
    assert started["version"] == VERSION
    # No secret in any line: the client secret, nor any token the sandbox issued.
    assert source.tokens
    assert target.tokens
    text = "\n".join(lines)
    for secret in {SECRET, *source.tokens, *target.tokens}:
        assert secret not in text


def test_a_stop_ends_the_waits_between_retries_and_fails_no_record(tmp_path: Path) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=2, periods=[PERIOD])
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    # e-Kinerja answers 5xx to everything; the backoff between attempts is long.
    with running_sandbox(world, faults=Faults(error_share=1.0)) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": state_url},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
                "retry": {"initial_backoff_s": 30, "max_backoff_s": 30, "max_attempts": 8},
                "sync": {"periods": [PERIOD]},
                "daemon": _daemon_section(sync_every_s=3600, retry_every_s=3600),
            },
        )
        daemon = Daemon(settings)
        with _daemon_thread(daemon) as result:
            wait_for("a first answer", lambda: box.target.stats()["faults"])
            started = time.monotonic()
            daemon.request_stop()
        assert result == [True]
        assert time.monotonic() - started < 2  # not the 30 s of the backoff
        assert box.target.stats()["skp_created"] == 0
    # The requests wait in the outbox for the next start; none was given up on.
    assert _pending(state_url) > 0
    with app_for(box, state_url) as application:
        assert application.store.reports.failures(period=PERIOD) == []


def test_health_is_unavailable_when_the_state_store_is_gone(tmp_path: Path) -> None:
    world = generate_world(schools=1, teachers_per_school=2, seed=1, periods=[PERIOD])
    database = tmp_path / "state.db"
    with running_sandbox(world) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": f"sqlite:///{database}"},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url},
                "sync": {"periods": [PERIOD]},
                "daemon": _daemon_section(sync_cron=""),
            },
        )
        daemon = Daemon(settings)
        with _daemon_thread(daemon):
            assert httpx.get(f"{daemon.health_url}/healthz").status_code == 200
            # The directory goes away (a lost mount): SQLite cannot open the file again.
            daemon_app = daemon._app
            assert daemon_app is not None
            daemon_app.store.engine.dispose()
            for path in tmp_path.iterdir():
                path.unlink()
            tmp_path.rmdir()
            health = httpx.get(f"{daemon.health_url}/healthz")
            assert health.status_code == 503
            assert health.json()["state_store"].startswith("unreachable")
            assert (
                "ekinerja_sync_state_store_up 0.0" in httpx.get(f"{daemon.health_url}/metrics").text
            )


def test_a_wrong_cron_expression_stops_the_start_naming_the_key(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        overrides={
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "daemon": _daemon_section(reconcile_cron="0 25 * * *"),
        },
    )
    with pytest.raises(DaemonError, match=r"daemon.reconcile_cron = '0 25 \* \* \*'"):
        Daemon(settings).run(install_signals=False)
    # The lock went with the failed start: the next start is not refused.
    settings = load_settings(
        None,
        overrides={
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "daemon": _daemon_section(reconcile_cron="", sync_cron="", retry_every_s=3600),
        },
    )
    daemon = Daemon(settings)
    with _daemon_thread(daemon) as result:
        pass
    assert result == [True]


# -- in a subprocess: signals, exit codes, nothing lost ----------------------------------------


class _Process:
    """``ekinerja-sync daemon`` as systemd runs it, its JSON log lines read as they come."""

    def __init__(self, config: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from sync.cli import main; main()",
                "-c",
                str(config),
                "daemon",
                "--create-store",
                *options,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("EKINERJA_SYNC_")},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events() if e["event"] == name), None)

    def stop(self, signum: int) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=GRACE_S + 10)
        self._reader.join(timeout=5)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def _daemon_process(config: Path, *options: str) -> Iterator[_Process]:
    process = _Process(config, *options)
    try:
        wait_for(
            "the daemon to start",
            lambda: process.event("daemon.started") or process.proc.poll() is not None,
            timeout=30,
        )
        assert process.proc.poll() is None, "\n".join(process.lines)
        yield process
    finally:
        process.kill()


def _write_config(path: Path, state_url: str, box: Sandbox, **daemon: Any) -> Path:
    values = _daemon_section(**daemon)
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path.write_text(
        f"""
[state]
url = "{state_url}"
[source]
base_url = "{box.pmm_url}"
[target]
base_url = "{box.ekinerja_url}"
rate_limit_per_s = 0
concurrency = 2
[retry]
initial_backoff_s = 0.01
max_backoff_s = 0.1
[sync]
periods = ["{PERIOD}"]
[daemon]
{lines}
""",
        encoding="utf-8",
    )
    return path


def _pending(state_url: str) -> int:
    engine = make_engine(state_url)
    try:
        with Session(engine) as session:
            return int(
                session.exec(
                    select(func.count()).where(col(OutboxEntry.state) == OutboxState.PENDING)
                ).one()
            )
    finally:
        engine.dispose()


def test_sigterm_stops_cleanly_and_what_was_unsent_goes_out_on_the_next_start(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=3, teachers_per_school=8, seed=11, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    # Every answer takes a while: the stop lands while requests are in flight and most wait.
    with running_sandbox(world, faults=Faults(latency_s=0.1)) as box:
        # One sync at start-up, then none: what the first daemon leaves, the second one sends.
        config = _write_config(
            tmp_path / "config.toml", state_url, box, sync_every_s=3600, retry_every_s=3600
        )
        with _daemon_process(config) as first:
            wait_for("the first SKP to arrive", lambda: box.target.stats()["skp_created"] >= 1)
            code, took = first.stop(signal.SIGTERM)
            assert code == 0, "\n".join(first.lines)
            assert took < GRACE_S + 2
            stopping = first.event("daemon.stopping")
            assert stopping is not None
            assert stopping["signal"] == "SIGTERM"
            stopped = first.event("daemon.stopped")
            assert stopped is not None
            assert "abandoned_jobs" not in stopped  # in-flight requests finished in time
        left = _pending(state_url)
        assert left > 0, "the stop came too late to leave anything unsent"
        sent_before = box.target.stats()["creates"]

        with _daemon_process(config) as second:
            if state_url.startswith("sqlite"):
                third = subprocess.run(
                    [*_COMMAND, "-c", str(config), "daemon"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                assert third.returncode == 2  # could not start (issue 23)
                assert "another ekinerja-sync daemon" in third.stderr
                assert f"pid {second.proc.pid}" in third.stderr
            wait_for(
                "the rest to arrive",
                lambda: (
                    box.target.stats()["creates"]["skp"] == expected.skp
                    and box.target.stats()["creates"]["penilaian"] == expected.assessment
                ),
            )
            code, took = second.stop(signal.SIGINT)
            assert code == 0, "\n".join(second.lines)
            assert took < GRACE_S + 2
        # Nothing lost, nothing twice: each record created exactly once, across the stop.
        stats = box.target.stats()
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        assert set(sent_before["skp"].values()) <= {1}
        assert _pending(state_url) == 0
        for line in first.lines + second.lines:
            assert SECRET not in line
            json.loads(line)


# -- reconciliation -----------------------------------------------------------------------------


def _remove_skp(store: TargetStore, id_skp: str) -> None:
    """Make e-Kinerja lose an SKP (no API deletes one): reach into the sandbox's store."""
    with store._lock:
        skp = store._skps.pop(id_skp)
        del store._by_person[(skp.nip, skp.period)]
        store._penilaian.pop(id_skp, None)


def test_reconcile_reports_what_changed_on_the_target_and_changes_nothing(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=7, periods=[PERIOD])
    runner = CliRunner()
    with running_sandbox(world) as box:
        with app_for(box, state_url) as application:
            application.engine.run(PERIOD)
        config = _write_config(tmp_path / "config.toml", state_url, box)
        args = ["-c", str(config), "reconcile", "--period", PERIOD, "--json"]
        clean = runner.invoke(cli, args)
        assert clean.exit_code == 0, clean.output
        assert json.loads(clean.stdout)["counts"] == {
            "missing": 0,
            "other_version": 0,
            "changed": 0,
            "untracked": 0,
            "error": 0,
        }

        unlocked = sorted((s for s in box.target.skps() if not s["locked"]), key=lambda s: s["nip"])
        assert len(unlocked) >= 3
        edited, bumped, lost = unlocked[:3]
        outside = EkinerjaClient(
            httpx.Client(base_url=box.ekinerja_url), client_id="sandbox", client_secret=SECRET
        )
        # Somebody changes an SKP by hand on e-Kinerja (a PUT with a key of their own)...
        body = dict(edited["body"])
        body["jabatan"] = "Guru Ahli Utama" if body["jabatan"] != "Guru Ahli Utama" else "Guru"
        outside.update_skp(edited["id_skp"], body, version=1, idempotency_key="by-hand-1")
        # ... saves another unchanged, so its versi moves on...
        outside.update_skp(bumped["id_skp"], bumped["body"], version=1, idempotency_key="by-hand-2")
        # ... and e-Kinerja loses one.
        _remove_skp(box.target, lost["id_skp"])
        stats = box.target.stats()

        found = runner.invoke(cli, args)
        assert found.exit_code == 1, found.output
        report = json.loads(found.stdout)
        by_nip = {d["nip"]: d for d in report["discrepancies"]}
        assert report["counts"] == {
            "missing": 1,
            "other_version": 1,
            "changed": 1,
            "untracked": 0,
            "error": 0,
        }
        assert by_nip[edited["nip"]]["problem"] == "changed"
        assert "jabatan" in by_nip[edited["nip"]]["detail"]
        assert by_nip[bumped["nip"]]["problem"] == "other_version"
        assert (
            by_nip[bumped["nip"]]["delivered_version"],
            by_nip[bumped["nip"]]["target_version"],
        ) == (1, 2)
        assert by_nip[lost["nip"]]["problem"] == "missing"
        # Reported, never overwritten: e-Kinerja was only read.
        after = box.target.stats()
        assert (after["skp_created"], after["skp_updated"]) == (
            stats["skp_created"],
            stats["skp_updated"],
        )

        table = runner.invoke(cli, args[:-1])
        assert table.exit_code == 1
        assert "changed outside the sync" in table.stdout
        assert "missing on e-Kinerja" in table.stdout


def test_the_daemon_serves_the_web_console_when_config_enables_it(tmp_path: Path) -> None:
    world = generate_world(schools=1, teachers_per_school=2, seed=1, periods=[PERIOD])
    with running_sandbox(world) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url},
                "sync": {"periods": [PERIOD]},
                "daemon": _daemon_section(sync_cron=""),
                "web": {"enabled": True, "port": 0},
            },
        )
        daemon = Daemon(settings)
        with _daemon_thread(daemon):
            assert daemon.console_url is not None
            login = httpx.get(f"{daemon.console_url}/login")
            assert login.status_code == 200
            assert "<form" in login.text
        # Stopped with the daemon.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{daemon.console_url}/login", timeout=2)


def test_two_daemons_on_one_postgresql_send_every_record_exactly_once(
    pg_url: str, tmp_path: Path
) -> None:
    """Invariant 6 with real daemon processes: claims and leases keep them apart."""
    world = generate_world(schools=4, teachers_per_school=10, seed=29, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    with running_sandbox(world, faults=Faults(latency_s=0.01)) as box:
        config = _write_config(
            tmp_path / "config.toml", pg_url, box, sync_every_s=1, retry_every_s=3600
        )
        build_store(load_settings(config)).engine.dispose()  # the schema, before the race
        with _daemon_process(config) as first, _daemon_process(config) as second:
            wanted = len(expected.skp) + len(expected.assessment)
            wait_for(
                "every record to arrive",
                lambda: sum(len(v) for v in box.target.stats()["creates"].values()) >= wanted,
                timeout=60,
            )
            time.sleep(1.5)  # a few more scheduled syncs on both: they must send nothing
            assert first.stop(signal.SIGTERM)[0] == 0
            assert second.stop(signal.SIGTERM)[0] == 0
        stats = box.target.stats()
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment
    assert stats["replayed"] == 0  # no request went twice
    assert stats["rejected"] == 0
    assert stats["requests"] == len(expected.skp) + len(expected.assessment)
