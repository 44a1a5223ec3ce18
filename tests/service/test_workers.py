"""Several workers on one state store, in-process: deferral behind a penilai's SKP another
worker is sending, claims on outbox entries (two deliverers at once, each request once),
leases on reading a school, and a dead worker's claims taken over. On SQLite and PostgreSQL
where the database does the arbitration."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from connectors.sandbox import Faults, generate_world
from state.models import (
    DeliveryKind,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    Run,
    SchoolLease,
    SourceRecord,
    SyncRecord,
)
from state.store import PERIOD_WIDE
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import InProcessSandbox, Sleeps, app_for, ledger_entries

PERIOD = "2025-1"
SKP = DeliveryKind.SKP
Box = Callable[..., InProcessSandbox]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _plan_only(app: Any) -> None:
    """Pull and plan the period; send nothing (a worker stopped before delivery)."""
    app.engine.deliverer.stop.set()
    app.engine.run(PERIOD)
    app.engine.deliverer.stop.clear()


def _claim(app: Any, nip: str, owner: str, *, until: dt.datetime) -> None:
    with Session(app.store.engine) as session:
        session.execute(
            update(OutboxEntry)
            .where(col(OutboxEntry.nip) == nip, col(OutboxEntry.kind) == SKP)
            .values(claimed_by=owner, claimed_until=until)
        )
        session.commit()


def _principal(world: Any) -> str:
    return next(
        r["pegawai"]["nip"]
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
    )


def _dead_pid() -> int:
    pid = 4_194_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_a_guru_waits_while_another_worker_sends_its_penilai_skp(
    sandbox: Box, state_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=21, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    penilai = _principal(world)
    box = sandbox(world)
    sleeps = Sleeps()
    with app_for(box, state_url, sleep=sleeps) as mine, app_for(box, state_url) as other:
        _plan_only(mine)
        assert box.api_requests == []
        with Session(mine.store.engine) as session:
            (run,) = session.exec(select(Run)).all()
        assert run.outcome == "stopped"  # a stop before delivery is not a successful sync
        # The other worker holds the claim on the kepala sekolah's SKP: it is sending it.
        _claim(mine, penilai, other.engine.deliverer.worker, until=_now() + dt.timedelta(minutes=5))

        def other_finishes(_seconds: float) -> None:
            if len(sleeps.waits) == 1:
                other.engine.deliverer.deliver(PERIOD, only={(penilai, SKP)})

        sleeps.hooks.append(other_finishes)
        results = mine.engine.deliverer.deliver(PERIOD)
        assert results == []
        assert sleeps.waits == [mine.engine.deliverer.round_wait_s]  # one round waited
        stats = box.target.stats()
        # Nothing was sent before its penilai's SKP was there: no 409, nothing held.
        assert stats["rejected"] == 0
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        entries = ledger_entries(mine, period=PERIOD)
        assert {e.outcome for e in entries} == {"delivered"}
        first = {(e.nip, e.kind): e.seq for e in entries}
        assert all(first[(penilai, "skp")] < seq for key, seq in first.items() if key[0] != penilai)


def test_deferred_while_the_penilai_skp_stays_claimed_not_sent_not_held(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=21, periods=[PERIOD])
    penilai = _principal(world)
    box = sandbox(world)
    sleeps = Sleeps()
    with app_for(box, sqlite_url, sleep=sleeps) as app:
        _plan_only(app)
        _claim(app, penilai, "elsewhere:1:abcdef", until=_now() + dt.timedelta(minutes=5))
        app.engine.deliverer.max_rounds = 5  # each round would defer them again
        assert app.engine.deliverer.deliver(PERIOD) == []
        assert len(sleeps.waits) == app.engine.deliverer.max_rounds
        assert box.api_requests == []
        with Session(app.store.engine) as session:
            rows = session.exec(select(SyncRecord).where(SyncRecord.kind == SKP)).all()
        assert {r.status for r in rows} == {RecordStatus.PENDING}
        assert all(r.reason_code is None for r in rows)


def test_two_deliverers_at_once_send_each_request_once(sandbox: Box, state_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=8, seed=41, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world, faults=Faults(latency_s=0.002))  # so the two overlap
    with (
        app_for(box, state_url, target={"concurrency": 4}) as a,
        app_for(box, state_url, target={"concurrency": 4}) as b,
    ):
        _plan_only(a)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def deliver(app: Any) -> None:
            try:
                start.wait()
                app.engine.deliverer.deliver(PERIOD)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=deliver, args=(app,)) for app in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        stats = box.target.stats()
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        assert stats["replayed"] == 0  # no request went twice, not even with its key
        assert stats["rejected"] == 0
        entries = ledger_entries(a, period=PERIOD)  # one chain, no fork, it verifies
        delivered = Counter((e.nip, e.kind) for e in entries if e.outcome == "delivered")
        assert set(delivered.values()) == {1}
        assert len(delivered) == len(expected.skp) + len(expected.assessment)
        with Session(a.store.engine) as session:
            outbox = session.exec(select(OutboxEntry)).all()
        assert {e.state for e in outbox} == {OutboxState.DONE}
        assert {e.claimed_by for e in outbox} <= {
            None,
            a.engine.deliverer.worker,
            b.engine.deliverer.worker,
        }


def test_a_school_leased_by_a_live_worker_is_skipped_a_dead_ones_taken_over(
    sandbox: Box, state_url: str
) -> None:
    """School leases guard runs of named schools (``--npsn``, ``[sync] schools``)."""
    world = generate_world(schools=3, teachers_per_school=3, seed=43, periods=[PERIOD])
    schools = [s["npsn"] for s in world.schools]
    busy, orphan = schools[0], schools[1]
    box = sandbox(world)
    dead = f"{socket.gethostname()}:{_dead_pid()}:abcdef"
    with app_for(box, state_url) as app:
        later = _now() + dt.timedelta(minutes=5)
        with Session(app.store.engine) as session:
            session.add(SchoolLease(period=PERIOD, npsn=busy, owner="elsewhere:1:abc", until=later))
            session.add(SchoolLease(period=PERIOD, npsn=orphan, owner=dead, until=later))
            session.commit()
        app.engine.run(PERIOD, schools=schools)

        def pulled() -> set[str]:
            with Session(app.store.engine) as session:
                return {r.npsn for r in session.exec(select(SourceRecord))}

        # The live worker's school is its to read; the killed worker's is taken over at once.
        assert busy not in pulled()
        assert orphan in pulled()
        units = {s["body"]["unit_kerja"]["npsn"] for s in box.target.skps()}
        assert busy not in units
        assert orphan in units
        with Session(app.store.engine) as session:
            leases = {(row.npsn, row.owner) for row in session.exec(select(SchoolLease))}
        assert leases == {(busy, "elsewhere:1:abc")}  # the taken-over lease was released

        # Its lease runs out: the next run reads the school.
        with Session(app.store.engine) as session:
            session.execute(update(SchoolLease).values(until=_now() - dt.timedelta(seconds=1)))
            session.commit()
        app.engine.run(PERIOD, schools=schools)
        assert busy in pulled()
        assert busy in {s["body"]["unit_kerja"]["npsn"] for s in box.target.skps()}


def test_a_period_walked_by_a_live_worker_is_not_walked_twice(sandbox: Box, state_url: str) -> None:
    """A run of every school walks the whole period under one period-wide lease: while a live
    worker holds it, another reads nothing and delivers what the walk planned; a killed
    worker's walk is taken over at once."""
    world = generate_world(schools=2, teachers_per_school=3, seed=44, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    with app_for(box, state_url, source={"page_size": 5}) as app:
        # A live walker whose lease ends in a moment (the run delivers beside it until then).
        soon = _now() + dt.timedelta(seconds=1)
        with Session(app.store.engine) as session:
            session.add(
                SchoolLease(period=PERIOD, npsn=PERIOD_WIDE, owner="elsewhere:1:abc", until=soon)
            )
            session.commit()
        summary = app.engine.run(PERIOD)
        assert summary.pulled == 0
        assert box.target.stats()["skp_created"] == 0
        # A walker that was killed: its lease names a process that is gone, and is taken over.
        dead = f"{socket.gethostname()}:{_dead_pid()}:abcdef"
        later = _now() + dt.timedelta(minutes=5)
        with Session(app.store.engine) as session:
            session.execute(update(SchoolLease).values(owner=dead, until=later))
            session.commit()
        app.engine.run(PERIOD)
        assert box.target.stats()["creates"]["skp"] == expected.skp


def test_a_killed_workers_claims_are_taken_over_at_once(sandbox: Box, state_url: str) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=21, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    dead = f"{socket.gethostname()}:{_dead_pid()}:abcdef"
    with app_for(box, state_url) as app:
        _plan_only(app)
        later = _now() + dt.timedelta(minutes=5)
        with Session(app.store.engine) as session:
            session.execute(update(OutboxEntry).values(claimed_by=dead, claimed_until=later))
            session.commit()
        app.engine.deliverer.deliver(PERIOD)
        assert box.target.stats()["creates"]["skp"] == expected.skp
        assert box.target.stats()["creates"]["penilaian"] == expected.assessment


def test_while_another_worker_reads_the_period_a_guru_waits_for_its_penilai_record(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=3, seed=21, periods=[PERIOD])
    penilai = _principal(world)
    box = sandbox(world)
    sleeps = Sleeps()
    with app_for(box, sqlite_url, sleep=sleeps) as app:
        _plan_only(app)
        # The walk has not reached the kepala sekolah's record yet: it is not in the state.
        with Session(app.store.engine) as session:
            for model in (OutboxEntry, SyncRecord):
                for row in session.exec(select(model).where(col(model.nip) == penilai)):
                    session.delete(row)
            session.commit()
        app.engine.deliverer.max_rounds = 3
        assert app.engine.deliverer.deliver(PERIOD, read_elsewhere=True) == []
        assert box.api_requests == []  # deferred, round after round: not sent to be held
        assert len(sleeps.waits) == 3
        # Once the walk is over, they go (and e-Kinerja holds them: no penilai SKP there).
        results = app.engine.deliverer.deliver(PERIOD)
        assert {r.status for r in results if r.kind is SKP} == {RecordStatus.HELD}
        assert box.api_requests


def test_while_another_worker_reads_the_period_a_kepala_sekolah_is_not_held_back(
    sandbox: Box, sqlite_url: str
) -> None:
    """A kepala sekolah's penilai (a pengawas) never has a record in PMM: waiting for it
    would hold back the school (every guru waits for their kepala sekolah's SKP)."""
    world = generate_world(schools=1, teachers_per_school=3, seed=21, periods=[PERIOD])
    penilai = _principal(world)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        _plan_only(app)
        with Session(app.store.engine) as session:
            row = session.get(SyncRecord, (penilai, PERIOD, SKP))
            assert row is not None
            assert row.assessor_role == "supervisor"
            assert session.get(SyncRecord, (row.assessor_nip, PERIOD, SKP)) is None
        assert app.engine.deliverer.deliver(PERIOD, read_elsewhere=True) == []
        # Sent while the walk goes on: the kepala sekolah first, then the guru under it.
        created = box.target.stats()["creates"]["skp"]
        assert f"{penilai}/{PERIOD}" in created
        assert box.target.stats()["rejected"] == 0
        assert len(created) == len(expected_after_sync(world, PERIOD).skp)


def test_a_penilaian_waits_for_the_skp_update_another_worker_sends_with_its_new_penilai(
    sandbox: Box, state_url: str
) -> None:
    """Invariant: a valid record never ends dead because of how workers interleave. The SKP
    went out with one penilai; PMM then names another (a transfer does: the record of the new
    school). The penilaian carries the new one, which e-Kinerja accepts only once the SKP's
    update is through: while another worker sends that update, the penilaian waits (sent
    under the old penilai, it was refused for good: 422, ``harus pejabat penilai SKP``)."""
    world = generate_world(schools=1, teachers_per_school=4, seed=21, periods=[PERIOD])
    principal = _principal(world)
    records = world.records(PERIOD)
    guru = next(
        r
        for r in records
        if r["pegawai"]["jenis_ptk"] == "guru" and r["penilaian"]["status"] == "final"
    )
    nip = guru["pegawai"]["nip"]
    pengawas = next(r["penilai"] for r in records if r["pegawai"]["nip"] == principal)
    box = sandbox(world)
    sleeps = Sleeps()
    with app_for(box, state_url, sleep=sleeps) as mine, app_for(box, state_url) as other:
        _plan_only(mine)
        # The SKPs went out (the guru's under its kepala sekolah); no penilaian yet.
        mine.engine.deliverer.deliver(PERIOD, only={(r["pegawai"]["nip"], SKP) for r in records})
        assert not box.target.stats()["creates"]["penilaian"]
        world.update_record(guru["id"], lambda r: r.update(penilai=dict(pengawas)))
        _plan_only(mine)  # the SKP's update and the penilaian, both to send
        with Session(mine.store.engine) as session:
            skp = session.get(SyncRecord, (nip, PERIOD, SKP))
            assert skp is not None
            assert skp.status is RecordStatus.PENDING
            assert skp.delivered_hash not in (None, skp.payload_hash)
        # The other worker holds the claim on the SKP's update: it is sending it.
        _claim(mine, nip, other.engine.deliverer.worker, until=_now() + dt.timedelta(minutes=5))

        def other_finishes(_seconds: float) -> None:
            if len(sleeps.waits) == 1:
                other.engine.deliverer.deliver(PERIOD, only={(nip, SKP)})

        sleeps.hooks.append(other_finishes)
        assert mine.engine.deliverer.deliver(PERIOD) == []
        assert sleeps.waits == [mine.engine.deliverer.round_wait_s]  # one round waited
        assert box.target.stats()["rejected"] == 0
        (skp_there,) = [s for s in box.target.skps() if s["nip"] == nip]
        assert (skp_there["versi"], skp_there["body"]["pejabat_penilai"]["nip"]) == (
            2,
            pengawas["nip"],
        )
        (penilaian,) = [p for p in box.target.penilaian() if p["id_skp"] == skp_there["id_skp"]]
        assert penilaian["body"]["pejabat_penilai"]["nip"] == pengawas["nip"]
        entries = ledger_entries(mine, period=PERIOD)
        assert {e.outcome for e in entries} == {"delivered"}
        mine_ = [(e.kind, e.action) for e in entries if e.nip == nip]
        assert mine_.index(("skp", "update_skp")) < mine_.index(("assessment", "create_assessment"))


def test_an_skp_another_worker_sends_while_this_one_plans_its_change_stays_to_send(
    sandbox: Box, pg_url: str, monkeypatch: Any
) -> None:
    """Planning reads a deliverable, then writes what it decided. An SKP the other worker
    delivers in between (its first version) stays to send (its change is queued): were the
    planner's "pending" lost (the row it read said pending already), the row said delivered
    and the penilaian went under the old penilai, to die (422). PostgreSQL: workers write at
    once."""
    world = generate_world(schools=1, teachers_per_school=4, seed=21, periods=[PERIOD])
    principal = _principal(world)
    records = world.records(PERIOD)
    guru = next(
        r
        for r in records
        if r["pegawai"]["jenis_ptk"] == "guru" and r["penilaian"]["status"] == "final"
    )
    nip = guru["pegawai"]["nip"]
    pengawas = next(r["penilai"] for r in records if r["pegawai"]["nip"] == principal)
    box = sandbox(world)
    with app_for(box, pg_url) as mine, app_for(box, pg_url) as other:
        # The kepala sekolah's SKP is there; the guru's first version is still to send.
        _plan_only(mine)
        mine.engine.deliverer.deliver(PERIOD, only={(principal, SKP)})
        world.update_record(guru["id"], lambda r: r.update(penilai=dict(pengawas)))
        writer = mine.engine.outbox_writer
        write = writer.write
        sent: list[str] = []

        def other_sends_meanwhile(session: Session, plan: Any) -> None:
            if not sent and any(t.nip == nip for t in plan.teachers):
                other.engine.deliverer.deliver(PERIOD, only={(nip, SKP)})
                sent.append(nip)
            write(session, plan)

        monkeypatch.setattr(writer, "write", other_sends_meanwhile)
        _plan_only(mine)  # reads the guru's SKP as pending, writes its change after the send
        assert sent == [nip]
        with Session(mine.store.engine) as session:
            skp = session.get(SyncRecord, (nip, PERIOD, SKP))
            assert skp is not None
            assert skp.status is RecordStatus.PENDING
            assert skp.delivered_hash not in (None, skp.payload_hash)
        monkeypatch.undo()
        assert mine.engine.deliverer.deliver(PERIOD) == []
        # The change went as a create (planned from what was read), found the SKP (409) and
        # went as its update; then the penilaian.
        entries = [
            (e.action, e.outcome) for e in ledger_entries(mine, period=PERIOD) if e.nip == nip
        ]
        assert entries == [
            ("create_skp", "delivered"),
            ("create_skp", "superseded"),
            ("update_skp", "delivered"),
            ("create_assessment", "delivered"),
        ]
        (skp_there,) = [s for s in box.target.skps() if s["nip"] == nip]
        assert skp_there["body"]["pejabat_penilai"]["nip"] == pengawas["nip"]
        (penilaian,) = [p for p in box.target.penilaian() if p["id_skp"] == skp_there["id_skp"]]
        assert penilaian["body"]["pejabat_penilai"]["nip"] == pengawas["nip"]
