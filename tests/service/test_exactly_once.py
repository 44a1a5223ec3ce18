"""A whole period in-process: every valid record exactly once by the target's own count, the
state tables and the ledger agreeing; a rerun sends nothing; a dry run sends and writes
nothing; a year and a semester side by side in one store (both databases); a third of the
requests faulted (5xx, 429, answers dropped after the target stored them, too slow); a
record cancelled in PMM is not sent before delivery and reported after it; a run scoped to
one school; a record the mapping refuses is quarantined and the batch goes on."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

from sqlmodel import Session, select

from connectors.sandbox import Faults, generate_world
from state.ledger import LedgerEntry
from state.models import (
    DeliveryKind,
    OutboxEntry,
    OutboxState,
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import InProcessSandbox, app_for, ledger_entries

PERIOD = "2025-1"
Box = Callable[..., InProcessSandbox]


def _created(stats: dict, period: str, kind: str) -> dict[str, int]:
    return {k: n for k, n in stats["creates"][kind].items() if k.endswith(f"/{period}")}


def test_a_semester_arrives_exactly_once_and_a_rerun_sends_nothing(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=4, teachers_per_school=10, seed=11, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    assert expected.defects
    assert expected.held == set()
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        stats = box.target.stats()
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        assert stats["rejected"] == 0
        assert summary.count("skp", "new") == len(expected.skp)
        assert summary.count("assessment", "new") == len(expected.assessment)
        assert summary.requests_sent == len(expected.skp) + len(expected.assessment)
        assert summary.target_unreachable is None

        with Session(app.store.engine) as session:
            rows = session.exec(select(SyncRecord)).all()
            outbox = session.exec(select(OutboxEntry)).all()
            quarantined = {
                r.id
                for r in session.exec(
                    select(SourceRecord).where(SourceRecord.status == SourceStatus.QUARANTINED)
                )
            }
        delivered = {(r.nip, r.kind) for r in rows if r.status is RecordStatus.DELIVERED}
        assert delivered == {(key.split("/")[0], DeliveryKind.SKP) for key in expected.skp} | {
            (key.split("/")[0], DeliveryKind.ASSESSMENT) for key in expected.assessment
        }
        assert quarantined == expected.defects
        assert summary.quarantined == len(expected.defects)
        # Every delivered SKP knows its id and versi on the target.
        skps = {s["nip"]: s for s in box.target.skps()}
        for r in rows:
            if r.kind is DeliveryKind.SKP and r.status is RecordStatus.DELIVERED:
                assert (r.skp_id, r.skp_version) == (skps[r.nip]["id_skp"], 1)
                assert r.delivered_hash == r.payload_hash
        # One outbox entry per request, each done after one attempt.
        assert Counter(e.state for e in outbox) == {OutboxState.DONE: len(delivered)}
        assert {e.attempts for e in outbox} == {1}

        # The ledger: one "delivered" entry per request, with the body as sent; it verifies.
        entries = ledger_entries(app, period=PERIOD)
        assert Counter(e.outcome for e in entries) == {"delivered": len(delivered)}
        sample = next(e for e in entries if e.kind == "skp")
        assert json.loads(sample.request_body or "{}")["nip"] == sample.nip
        assert (sample.http_status, sample.mapping_version, sample.actor) == (201, "2026.2", "cli")
        # Penilai SKPs went before the SKPs they appraise, penilaian after their SKP.
        order = {(e.nip, e.kind): e.seq for e in entries}
        checked = 0
        for r in rows:
            if r.kind is not DeliveryKind.SKP or (r.nip, "skp") not in order:
                continue
            if (r.assessor_nip, "skp") in order:  # its penilai is in the sync
                assert order[(r.assessor_nip, "skp")] < order[(r.nip, "skp")]
                checked += 1
            if (r.nip, "assessment") in order:
                assert order[(r.nip, "skp")] < order[(r.nip, "assessment")]
        assert checked

        again = app.engine.run(PERIOD)
        assert again.requests_sent == 0
        assert again.count("skp", "unchanged") == len(expected.skp)
        assert box.target.stats()["requests"] == stats["requests"]


def test_a_dry_run_sends_nothing_and_writes_nothing(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=8, seed=3, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD, dry_run=True)
        assert summary.count("skp", "would_send") == len(expected.skp)
        assert box.api_requests == []
        assert box.target.stats()["requests"] == 0
        with Session(app.store.engine) as session:
            for table in (SourceRecord, SyncRecord, OutboxEntry, LedgerEntry):
                assert session.exec(select(table)).first() is None, table.__name__
        real = app.engine.run(PERIOD)
        assert real.count("skp", "new") == summary.count("skp", "would_send")
        assert box.target.stats()["creates"]["skp"] == expected.skp


def test_a_year_and_a_semester_side_by_side_in_one_store(sandbox: Box, state_url: str) -> None:
    """The two kinds of period in one store, each with the version it was first planned with
    (2026.2 for both in a new store, issue 23)."""
    year, semester = "2026", "2024-2"
    world = generate_world(schools=3, teachers_per_school=6, seed=31)
    expected = {p: expected_after_sync(world, p) for p in (year, semester)}
    box = sandbox(world)
    with app_for(box, state_url) as app:
        first = app.engine.run(year)
        second = app.engine.run(semester)
        assert (first.kind, first.mapping_version) == ("tahunan", "2026.2")
        assert (second.kind, second.mapping_version) == ("semester", "2026.2")
        stats = box.target.stats()
        for period, want in expected.items():
            assert _created(stats, period, "skp") == want.skp
            assert _created(stats, period, "penilaian") == want.assessment
        jenis = Counter(s["jenis"] for s in box.target.skps())
        assert jenis == {
            "tahunan": len(expected[year].skp),
            "semester": len(expected[semester].skp),
        }
        made = {(e.period, e.mapping_version) for e in ledger_entries(app) if e.period}
        assert made == {(year, "2026.2"), (semester, "2026.2")}
        assert (app.store.periods.mapping(year), app.store.periods.mapping(semester)) == (
            "2026.2",
            "2026.2",
        )
        # The state of one period is its own: counts per period do not mix.
        with Session(app.store.engine) as session:
            per_period = Counter(
                r.period
                for r in session.exec(
                    select(SyncRecord).where(SyncRecord.status == RecordStatus.DELIVERED)
                )
            )
        assert per_period == {p: len(w.skp) + len(w.assessment) for p, w in expected.items()}
        assert app.engine.run(year).requests_sent == 0
        assert app.engine.run(semester).requests_sent == 0
        assert box.target.stats()["requests"] == stats["requests"]


def test_a_third_of_requests_faulted_and_every_record_arrives_exactly_once(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=4, teachers_per_school=12, seed=31, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    faults = Faults(
        seed=7,
        error_share=0.12,  # 500/502/503/504, nothing stored
        rate_limit_share=0.08,  # 429 + Retry-After
        retry_after_s=0.1,
        drop_after_store_share=0.1,  # stored, then the answer is cut off
        slow_share=0.04,  # slower than the client's read timeout
        slow_s=0.5,
    )
    box = sandbox(world, faults=faults)
    with app_for(
        box,
        sqlite_url,
        target={"timeout_s": 0.1, "concurrency": 8, "breaker_failures": 50},
        retry={"max_attempts": 30},
    ) as app:
        summary = app.engine.run(PERIOD)
    stats = box.target.stats()
    assert sum(stats["faults"].values()) >= 0.2 * stats["requests"], stats["faults"]
    assert stats["faults"]["dropped"] > 0
    assert stats["creates"]["skp"] == expected.skp
    assert stats["creates"]["penilaian"] == expected.assessment
    assert stats["replayed"] > 0  # resends after a dropped answer, answered from the key
    assert summary.count("skp", "failed") == summary.count("assessment", "failed") == 0
    assert summary.count("skp", "pending") == summary.count("assessment", "pending") == 0


def test_cancelled_in_pmm_not_sent_before_delivery_reported_after(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=5, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    gurus = [
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    ]
    before, after = gurus[0], gurus[1]
    world.update_record(before["id"], lambda r: r.update(dibatalkan=True))
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        created = box.target.stats()["creates"]
        assert f"{before['pegawai']['nip']}/{PERIOD}" not in created["skp"]
        with Session(app.store.engine) as session:
            row = session.get(SyncRecord, (before["pegawai"]["nip"], PERIOD, DeliveryKind.SKP))
        assert row is not None
        assert row.status is RecordStatus.CANCELLED

        world.update_record(after["id"], lambda r: r.update(dibatalkan=True))
        requests = len(box.api_requests)
        summary = app.engine.run(PERIOD)
        assert len(box.api_requests) == requests  # the target has no delete
        assert summary.count("skp", "cancelled") >= 2
        with Session(app.store.engine) as session:
            for kind in DeliveryKind:
                row = session.get(SyncRecord, (after["pegawai"]["nip"], PERIOD, kind))
                assert row is not None
                assert row.status is RecordStatus.CANCELLED_AFTER_DELIVERY
                assert "no delete" in (row.reason or "")


def test_a_run_scoped_to_one_school_sends_only_its_records(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=5, seed=9, periods=[PERIOD])
    npsn = world.schools[1]["npsn"]
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD, schools=[npsn])
        assert summary.count("skp", "new") > 0
        assert {s["body"]["unit_kerja"]["npsn"] for s in box.target.skps()} == {npsn}
        with Session(app.store.engine) as session:
            assert {r.npsn for r in session.exec(select(SourceRecord))} == {npsn}
            assert {r.npsn for r in session.exec(select(SyncRecord))} == {npsn}


def test_a_record_the_mapping_refuses_is_quarantined_and_the_batch_goes_on(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=8, seed=8, periods=[PERIOD])
    guru = next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru" and not r["dibatalkan"]
    )
    # Validation lets an empty school name through; the SKP payload model does not.
    world.update_record(guru["id"], lambda r: r["sekolah"].update(nama=""))
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        with Session(app.store.engine) as session:
            bad = session.get(SourceRecord, guru["id"])
        assert bad is not None
        assert (bad.status, bad.reason_code) == (SourceStatus.QUARANTINED, "mapping_failed")
        assert "unit_kerja.nama" in (bad.reason or "")
        created = box.target.stats()["creates"]["skp"]
        assert f"{guru['pegawai']['nip']}/{PERIOD}" not in created
        assert len(created) == summary.count("skp", "new") > 0
