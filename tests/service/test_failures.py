"""Failures of the target, each branch of the delivery loop in-process:

- dead: a 422 (``NIP_TIDAK_DITEMUKAN``) fails the record for good, with the answer kept; its
  penilaian waits; nothing is retried until an operator replays it;
- retries exhausted: a server error every time, ``max_attempts`` tries, then failed with the
  last answer and a code naming the cause (429 and 503 alone never fail a record:
  ``test_backpressure.py``);
- 429 + ``Retry-After``: the retry waits at least that long;
- outage: connection errors never fail a record, it stays pending; the circuit breaker stops
  knocking after ``breaker_failures``, and a probe after ``breaker_reset_s`` closes it;
- paused: 503 + ``Retry-After`` (maintenance) pauses every thread without spending attempts;
  ``max_elapsed_s`` still bounds the wait, and what it cut short stays pending;
- fatal: a 403 stops the run, no record fails, the outbox keeps every request, unclaimed;
- an expired token: refreshed once, the request repeated, nothing lost or doubled.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from connectors.errors import AuthError
from connectors.sandbox import Faults, SandboxWorld, generate_world
from state.models import DeliveryKind, OutboxEntry, OutboxState, RecordStatus, Run, SyncRecord
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import (
    InProcessSandbox,
    Sleeps,
    VirtualClock,
    app_for,
    ledger_entries,
    outbox_of,
    record_of,
)

PERIOD = "2025-1"
SKP, ASSESSMENT = DeliveryKind.SKP, DeliveryKind.ASSESSMENT
Box = Callable[..., InProcessSandbox]


def _guru_that_goes(world: SandboxWorld) -> str:
    expected = expected_after_sync(world, PERIOD)
    return next(
        r["pegawai"]["nip"]
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    )


def _rows(app: Any) -> list[SyncRecord]:
    with Session(app.store.engine) as session:
        return list(session.exec(select(SyncRecord)))


def _outbox(app: Any) -> list[OutboxEntry]:
    with Session(app.store.engine) as session:
        return list(session.exec(select(OutboxEntry)))


def _last_run(app: Any) -> Run:
    with Session(app.store.engine) as session:
        runs = list(session.exec(select(Run)))
    return max(runs, key=lambda r: r.started_at)


# -- dead: 422 -------------------------------------------------------------------------------


def test_a_422_is_dead_with_the_answer_kept_until_replayed(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=12, periods=[PERIOD])
    nip = _guru_that_goes(world)
    faults = Faults(unknown_nips={nip})  # BKN does not know the NIP PMM has
    box = sandbox(world, faults=faults)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "failed") == 1
        row = record_of(app, PERIOD, nip, SKP)
        assert (row.status, row.reason_code) == (RecordStatus.FAILED, "NIP_TIDAK_DITEMUKAN")
        assert "e-Kinerja answered 422 NIP_TIDAK_DITEMUKAN" in (row.reason or "")
        assert "What to do:" in (row.reason or "")
        (entry,) = outbox_of(app, PERIOD, nip, SKP)
        assert (entry.state, entry.attempts, entry.last_status) == (OutboxState.DEAD, 1, 422)
        assert "NIP_TIDAK_DITEMUKAN" in (entry.last_answer or "")
        (attempt,) = [e for e in ledger_entries(app, nip=nip) if e.kind == "skp"]
        assert (attempt.outcome, attempt.http_status) == ("rejected", 422)
        assert "NIP_TIDAK_DITEMUKAN" in (attempt.answer_body or "")
        assert attempt.request_body == entry.body
        # Its penilaian waits for an SKP that is not there; it is never sent.
        assessment = record_of(app, PERIOD, nip, ASSESSMENT)
        assert assessment.status is RecordStatus.WAITING
        assert "waiting for its SKP" in (assessment.reason or "")
        assert not [p for _m, p in box.api_requests if p.endswith(f"-{nip}/penilaian")]
        # Final: a rerun does not send it again.
        requests = len(box.api_requests)
        assert app.engine.run(PERIOD).requests_sent == 0
        assert len(box.api_requests) == requests

        # BKN's register is corrected; the operator replays the failure.
        faults.update({"unknown_nips": []})
        (outcome,) = app.engine.replay([row], actor="operator:ani")
        assert (outcome.before, outcome.after) == (RecordStatus.FAILED, RecordStatus.DELIVERED)
        creates = box.target.stats()["creates"]
        assert creates["skp"][f"{nip}/{PERIOD}"] == 1
        assert creates["penilaian"][f"{nip}/{PERIOD}"] == 1
        replays = [e for e in ledger_entries(app, nip=nip) if e.action == "replay"]
        assert [e.actor for e in replays] == ["operator:ani"]


# -- retries ---------------------------------------------------------------------------------


def test_retries_stop_at_max_attempts_and_the_record_is_dead_with_the_answer(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=4, periods=[PERIOD])
    box = sandbox(world)

    def server_error(request: httpx.Request) -> httpx.Response:  # it never recovers
        return httpx.Response(502, json={"kode": "GANGGUAN", "pesan": "galat server (502)"})

    box.intercept(server_error)
    sleeps = Sleeps()
    with app_for(box, sqlite_url, sleep=sleeps, retry={"max_attempts": 3}) as app:
        summary = app.engine.run(PERIOD)
        failed = app.store.reports.failures(period=PERIOD)
        assert failed
        assert summary.count("skp", "failed") == len(failed)
        assert not summary.throttled  # a server error is no "later"
        for row in failed:
            assert (row.status, row.reason_code) == (
                RecordStatus.FAILED,
                "retries_exhausted_server_error",
            )
            assert "gave up after 3 attempts: e-Kinerja answered 502" in (row.reason or "")
            assert "answered a server error (5xx) again and again" in (row.reason or "")
            (entry,) = outbox_of(app, PERIOD, row.nip, row.kind)
            assert (entry.state, entry.attempts) == (OutboxState.DEAD, 3)
            outcomes = [e.outcome for e in ledger_entries(app, nip=row.nip)]
            assert outcomes == ["retry", "retry", "retry", "failed"]
    assert box.target.stats()["skp_created"] == 0
    assert len(box.api_requests) == 3 * len(failed)  # 3 attempts per SKP, no more
    assert len([w for w in sleeps.waits if 0 < w <= 0.2]) >= 2 * len(failed)  # backoff


def test_a_429_waits_at_least_its_retry_after(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    seen: set[str] = set()
    lock = threading.Lock()

    def first_time_too_many(request: httpx.Request) -> httpx.Response | None:
        key = request.headers.get("idempotency-key", "")
        with lock:
            if key in seen:
                return None
            seen.add(key)
        return httpx.Response(
            429, headers={"Retry-After": "7"}, json={"kode": "TERLALU_BANYAK_PERMINTAAN"}
        )

    box.intercept(first_time_too_many)
    sleeps = Sleeps()
    with app_for(box, sqlite_url, sleep=sleeps, retry={"max_attempts": 2}) as app:
        summary = app.engine.run(PERIOD)
        sent = len(expected.skp) + len(expected.assessment)
        assert summary.count("skp", "new") == len(expected.skp)
        assert box.target.stats()["creates"]["skp"] == expected.skp
        assert len([w for w in sleeps.waits if w >= 7]) == sent
        assert {e.attempts for e in _outbox(app)} == {2}
        assert Counter(e.outcome for e in ledger_entries(app)) == {"retry": sent, "delivered": sent}


# -- outage ----------------------------------------------------------------------------------


def _refuse_connections(request: httpx.Request) -> httpx.Response | None:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def test_connection_errors_keep_records_pending_never_failed(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    box.intercept(_refuse_connections)
    with app_for(
        box,
        sqlite_url,
        target={"concurrency": 1, "breaker_failures": 5},
        retry={"max_attempts": 3},
    ) as app:
        summary = app.engine.run(PERIOD)
        assert summary.target_unreachable is not None
        assert "cannot connect" in summary.target_unreachable
        assert _last_run(app).outcome == "unreachable"
        rows = _rows(app)
        assert not [r for r in rows if r.status is RecordStatus.FAILED]
        assert Counter(r.status for r in rows if r.kind is SKP) == {
            RecordStatus.PENDING: len(expected.skp)
        }
        assert {e.state for e in _outbox(app)} == {OutboxState.PENDING}
        # At most breaker_failures requests in a row without an answer, then it stops.
        assert 3 <= len(box.api_requests) <= 5
        assert not [e for e in ledger_entries(app) if e.outcome not in {"retry"}]

    # e-Kinerja is back (and the breaker of a new process is closed): everything goes, once.
    box.intercept(None)
    with app_for(box, sqlite_url) as app:
        again = app.engine.run(PERIOD)
        assert again.target_unreachable is None
        assert _last_run(app).outcome == "ok"
    assert box.target.stats()["creates"]["skp"] == expected.skp
    assert box.target.stats()["creates"]["penilaian"] == expected.assessment


def test_the_breaker_stops_knocking_after_breaker_failures(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=4, seed=4, periods=[PERIOD])
    box = sandbox(world)
    box.intercept(_refuse_connections)
    with app_for(
        box,
        sqlite_url,
        target={"concurrency": 1, "breaker_failures": 3, "breaker_reset_s": 600},
        retry={"max_attempts": 5},
    ) as app:
        summary = app.engine.run(PERIOD)
        # Three connection failures in a row open it: no fourth request starts, though
        # max_attempts would allow two more and other SKPs wait.
        assert len(box.api_requests) == 3
        assert summary.target_unreachable is not None
        assert app.engine.deliverer.sender.breaker.blocks()
        assert {r.status for r in _rows(app) if r.kind is SKP} == {RecordStatus.PENDING}
        assert {e.state for e in _outbox(app)} == {OutboxState.PENDING}
        assert sum(e.attempts for e in _outbox(app)) == 3
        # Still open (breaker_reset_s not over): a run sends nothing at all.
        assert app.engine.run(PERIOD).target_unreachable is not None
        assert len(box.api_requests) == 3


def test_a_request_without_answer_is_tried_max_attempts_times_per_run(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=5, periods=[PERIOD])
    box = sandbox(world, faults=Faults(drop_after_store_share=1.0))  # stored, answer lost
    sleeps = Sleeps()
    with app_for(box, sqlite_url, sleep=sleeps, retry={"max_attempts": 2}) as app:
        summary = app.engine.run(PERIOD)
        assert summary.target_unreachable is not None
        assert summary.count("skp", "failed") == 0
        # Found by this tier: an unanswered SKP made what waits behind it "deferred", and every
        # deferral round sent it again (40 rounds x max_attempts, 10 s of waiting per run).
        assert max(e.attempts for e in _outbox(app)) == 2
        assert len(sleeps.waits) < 10, "no round after round of waiting for nobody"


# -- paused: maintenance ---------------------------------------------------------------------


def _maintenance(clock: VirtualClock, until: float) -> Callable[[httpx.Request], Any]:
    """503 + Retry-After until ``until`` on the virtual clock."""

    def answer(request: httpx.Request) -> httpx.Response | None:
        left = until - clock.monotonic()
        if left <= 0:
            return None
        return httpx.Response(
            503,
            headers={"Retry-After": "30"},
            json={"kode": "PEMELIHARAAN", "pesan": "layanan sedang dalam pemeliharaan"},
        )

    return answer


def test_maintenance_pauses_every_thread_without_spending_attempts(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=6, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    clock = VirtualClock()
    box.intercept(_maintenance(clock, until=clock.now + 45))  # two pauses of 30 s
    # Two attempts only: a pause that spent attempts would leave records dead.
    # The waits and the delivery's clock on ``clock``: a maintenance window of minutes passes
    # at once, and deterministically.
    with app_for(
        box,
        sqlite_url,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        retry={"max_attempts": 2, "max_elapsed_s": 600},
    ) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "failed") == summary.count("assessment", "failed") == 0
        assert box.target.stats()["creates"]["skp"] == expected.skp
        assert box.target.stats()["creates"]["penilaian"] == expected.assessment
        assert clock.now >= 1_045
        assert all(s >= 29 for s in clock.slept if s > 1), clock.slept  # Retry-After honoured
        paused = [e for e in ledger_entries(app) if e.outcome == "paused"]
        assert paused
        assert {e.http_status for e in paused} == {503}


def test_a_maintenance_longer_than_max_elapsed_ends_the_wait_and_the_records_stay_pending(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=2, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    clock = VirtualClock()
    box.intercept(_maintenance(clock, until=float("inf")))
    with app_for(
        box,
        sqlite_url,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        target={"concurrency": 1},
        retry={"max_attempts": 2, "max_elapsed_s": 100},
    ) as app:
        summary = app.engine.run(PERIOD)
        # A 503 says "later", never "no": nothing fails (docs/design.md, invariant 4), the run
        # says so.
        assert summary.count("skp", "failed") == summary.count("assessment", "failed") == 0
        assert not app.store.reports.failures(period=PERIOD)
        assert summary.left_throttled > 0
        assert summary.busy > 0
        assert clock.now - 1_000 < 100 * 2 * (summary.left_throttled + 1)
        pending = [r for r in _rows(app) if r.status is RecordStatus.PENDING and r.reason_code]
        assert len(pending) == summary.left_throttled
        for row in pending:
            assert row.reason_code == "target_busy"
            assert "busy or in maintenance, 503" in (row.reason or "")
        assert {e.state for e in _outbox(app)} == {OutboxState.PENDING}
        assert box.target.stats()["skp_created"] == 0

        # The maintenance is over: the next run sends everything.
        box.intercept(None)
        assert app.engine.run(PERIOD).count("skp", "pending") == 0
    assert box.target.stats()["creates"]["skp"] == expected.skp
    assert box.target.stats()["creates"]["penilaian"] == expected.assessment


# -- fatal, auth -----------------------------------------------------------------------------


def test_a_403_stops_the_run_and_the_outbox_keeps_everything(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)

    def not_allowed(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET":
            return None
        return httpx.Response(403, json={"error": "insufficient_scope", "scope": "skp.write"})

    box.intercept(not_allowed)
    with app_for(box, sqlite_url, target={"concurrency": 1}) as app:
        with pytest.raises(AuthError):
            app.engine.run(PERIOD)
        assert len(box.api_requests) == 1  # no request starts after the fatal one
        assert not [r for r in _rows(app) if r.status is RecordStatus.FAILED]
        outbox = _outbox(app)
        assert {(e.state, e.claimed_by) for e in outbox} == {(OutboxState.PENDING, None)}

        box.intercept(None)
        app.engine.run(PERIOD)
    assert box.target.stats()["creates"]["skp"] == expected.skp
    assert box.target.stats()["creates"]["penilaian"] == expected.assessment


def test_an_expired_token_is_refreshed_and_nothing_is_lost_or_doubled(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=4, seed=4, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)

    def expire_after_three(request: httpx.Request) -> httpx.Response | None:
        if len(box.api_requests) == 4:
            box.revoke_tokens()
        return None

    box.intercept(expire_after_three)
    with app_for(box, sqlite_url, target={"concurrency": 1}) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "failed") == 0
    stats = box.target.stats()
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment
    assert box.target_transport.token_requests == 2
