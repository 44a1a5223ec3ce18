"""The target's 409 and 412 answers, each branch of the delivery loop in-process:

- ``409 PENILAI_BELUM_ADA_SKP``: the SKP is held, its penilaian waits; it goes once its
  penilai's SKP exists (by a later run, or by ``retry_due`` without reading the source);
- ``409 SKP_SUDAH_ADA``: the create turns into an update against the ``versi`` answered;
- ``412``: one more update against the current ``versi``; a second 412 is final;
- ``409 SKP_TERKUNCI`` / ``PENILAIAN_SUDAH_ADA``: locked, reported, never retried;
- a penilaian (or an SKP under one) changed after delivery: locked by the planner, unsent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from connectors.sandbox import SandboxWorld, generate_world
from connectors.sandbox.catalogue import target_predicate
from mappings.source import read_record
from mappings.versions import get_mapping
from state.models import DeliveryKind, OutboxAction, OutboxState, RecordStatus
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import (
    InProcessSandbox,
    app_for,
    ledger_entries,
    outbox_of,
    record_of,
)

PERIOD = "2025-1"
SKP, ASSESSMENT = DeliveryKind.SKP, DeliveryKind.ASSESSMENT
Box = Callable[..., InProcessSandbox]


def _guru(world: SandboxWorld, *, final: bool) -> dict[str, Any]:
    """A guru whose SKP goes, with a final penilaian or a draft one."""
    expected = expected_after_sync(world, PERIOD)
    return next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.skp
        and (f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment) is final
    )


def _skp_body(record: dict[str, Any]) -> dict[str, Any]:
    """The SKP body the active mapping makes of ``record`` (as a person would type it)."""
    checked = read_record(record)
    assert not hasattr(checked, "code"), checked
    return get_mapping("2025.1").skp(checked)  # type: ignore[arg-type]


def _penilaian_by_hand(box: InProcessSandbox, nip: str) -> None:
    """A penilaian entered in e-Kinerja's own pages: the SKP is locked from then on."""
    (skp,) = [s for s in box.target.skps() if s["nip"] == nip]
    status, answer = box.target.create_penilaian(
        skp["id_skp"],
        {
            "rating_hasil_kerja": "SESUAI_EKSPEKTASI",
            "rating_perilaku_kerja": "SESUAI_EKSPEKTASI",
            "predikat_kinerja": target_predicate("SESUAI_EKSPEKTASI", "SESUAI_EKSPEKTASI"),
            "tanggal_penilaian": "2025-06-20",
            "pejabat_penilai": {"nip": skp["body"]["pejabat_penilai"]["nip"]},
        },
    )
    assert status == 201, answer


def _other_indicator(record: dict[str, Any]) -> None:
    current = record["perencanaan"]["indikator"][0]["kode"]
    other = "G-01" if current != "G-01" else "G-02"
    record["perencanaan"]["indikator"] = [{"kode": other, "nama": "Indikator lain"}]


def _finalise(record: dict[str, Any]) -> None:
    record["penilaian"].update(
        status="final",
        hasil={
            "rating_hasil_kerja": "sesuai_ekspektasi",
            "rating_perilaku": "diatas_ekspektasi",
            "predikat": target_predicate("sesuai_ekspektasi", "diatas_ekspektasi").lower(),
        },
        difinalkan_pada="2025-06-25T10:00:00+07:00",
    )


def _outcomes(app: Any, nip: str, kind: str = "skp") -> list[tuple[str, str, int | None]]:
    return [
        (e.action, e.outcome, e.http_status)
        for e in ledger_entries(app, nip=nip, period=PERIOD)
        if e.kind == kind
    ]


# -- 409 PENILAI_BELUM_ADA_SKP: held ----------------------------------------------------------


def _unapproved_principal(world: SandboxWorld) -> dict[str, Any]:
    school = world.schools[0]["npsn"]
    principal = next(
        r
        for r in world.records(PERIOD)
        if r["sekolah"]["npsn"] == school and r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
    )
    world.update_record(principal["id"], lambda r: r["perencanaan"].update(disetujui_pada=None))
    return world.record(principal["id"])


def test_held_until_the_penilai_has_an_skp_then_sent_once(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=21, periods=[PERIOD])
    principal = _unapproved_principal(world)
    penilai = principal["pegawai"]["nip"]
    expected = expected_after_sync(world, PERIOD)
    assert expected.held
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "held") == len(expected.held)
        assert summary.count("skp", "failed") == 0
        assert box.target.stats()["creates"]["skp"] == expected.skp
        for nip in expected.held:
            row = record_of(app, PERIOD, nip, SKP)
            assert row.status is RecordStatus.HELD
            assert row.reason_code == "PENILAI_BELUM_ADA_SKP"
            assert penilai in (row.reason or "")
            # The request stays in the outbox, unchanged, for the next run.
            (entry,) = outbox_of(app, PERIOD, nip, SKP)
            assert (entry.state, entry.attempts, entry.last_status) == (
                OutboxState.PENDING,
                1,
                409,
            )
            assert _outcomes(app, nip) == [("create_skp", "held", 409)]
            # Its penilaian is not sent under an SKP that is not there: it waits, unsent.
            assessment = record_of(app, PERIOD, nip, ASSESSMENT)
            assert assessment.status is not RecordStatus.DELIVERED
            assert all(e.attempts == 0 for e in outbox_of(app, PERIOD, nip, ASSESSMENT))
            assert not [p for _m, p in box.api_requests if nip in p]

        # The kepala sekolah's plan is approved: its SKP goes first, then the held ones.
        world.update_record(
            principal["id"],
            lambda r: r["perencanaan"].update(disetujui_pada="2025-02-01T08:00:00+07:00"),
        )
        app.engine.run(PERIOD)
        final = expected_after_sync(world, PERIOD)
        assert not final.held
        stats = box.target.stats()
        assert stats["creates"]["skp"] == final.skp
        assert stats["creates"]["penilaian"] == final.assessment
        for nip in expected.held:
            assert record_of(app, PERIOD, nip, SKP).status is RecordStatus.DELIVERED
            # The same request (one outbox entry, the same idempotency key) went again.
            (entry,) = outbox_of(app, PERIOD, nip, SKP)
            assert (entry.state, entry.attempts) == (OutboxState.DONE, 2)
            assert _outcomes(app, nip) == [
                ("create_skp", "held", 409),
                ("create_skp", "delivered", 201),
            ]


def test_held_ones_go_by_retry_due_once_the_penilai_skp_is_made_by_hand(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=1, teachers_per_school=4, seed=21, periods=[PERIOD])
    principal = _unapproved_principal(world)
    expected = expected_after_sync(world, PERIOD)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        assert {
            r.nip for r in app.store.reports.failing(PERIOD) if r.status is RecordStatus.HELD
        } == (expected.held)
        box.target.create_skp_by_hand(_skp_body(principal))
        pulled_before = len(box.api_requests)
        summary = app.engine.retry_due(PERIOD)
        assert summary.pulled == 0
        created = box.target.stats()["creates"]["skp"]
        assert {key.split("/")[0] for key in created} >= expected.held
        assert all(n == 1 for n in created.values())
        # The held SKPs went, then their penilaian; retry_due reads nothing from the source.
        sent = box.api_requests[pulled_before:]
        assert [p for _m, p in sent if p == "/api/v1/skp"] == ["/api/v1/skp"] * len(expected.held)
        penilaian = [p for _m, p in sent if p.endswith("/penilaian")]
        assert penilaian
        assert {p.split("/")[4].rsplit("-", 1)[1] for p in penilaian} <= expected.held
        assert len(sent) == len(expected.held) + len(penilaian)
        assert {m for m, _p in sent} == {"POST"}
        for nip in expected.held:
            assert record_of(app, PERIOD, nip, SKP).status is RecordStatus.DELIVERED


# -- 409 SKP_SUDAH_ADA: a create becomes an update -------------------------------------------


def test_an_skp_already_on_the_target_is_updated_with_the_versi_answered(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=True)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    # Someone typed the SKP into e-Kinerja before the sync ran, with another plan.
    by_hand = _skp_body(guru)
    by_hand["rencana_hasil_kerja"][0]["uraian"] = "Ditulis manual"
    made = box.target.create_skp_by_hand(by_hand)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "updated") == 1
        assert summary.count("skp", "failed") == 0
        create, update = outbox_of(app, PERIOD, nip, SKP)
        assert (create.action, create.state, create.last_status) == (
            OutboxAction.CREATE_SKP,
            OutboxState.SUPERSEDED,
            409,
        )
        assert "SKP_SUDAH_ADA" in (create.last_answer or "")
        assert (update.action, update.if_match, update.state) == (
            OutboxAction.UPDATE_SKP,
            1,
            OutboxState.DONE,
        )
        assert update.body == create.body  # the same SKP, sent as a replacement
        row = record_of(app, PERIOD, nip, SKP)
        assert (row.status, row.skp_id, row.skp_version) == (
            RecordStatus.DELIVERED,
            made["id_skp"],
            2,
        )
        assert _outcomes(app, nip) == [
            ("create_skp", "superseded", 409),
            ("update_skp", "delivered", 200),
        ]
        # On the target: no second SKP, the sync's body in versi 2, its penilaian under it.
        stats = box.target.stats()
        assert f"{nip}/{PERIOD}" not in stats["creates"]["skp"]
        assert stats["skp_updated"] == 1
        (skp,) = [s for s in box.target.skps() if s["nip"] == nip]
        assert (skp["versi"], skp["body"]) == (2, json.loads(update.body))
        assert stats["creates"]["penilaian"][f"{nip}/{PERIOD}"] == 1
        assert record_of(app, PERIOD, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        # Settled: a rerun sends nothing.
        requests = stats["requests"]
        assert app.engine.run(PERIOD).requests_sent == 0
        assert box.target.stats()["requests"] == requests


# -- 412: a stale versi ------------------------------------------------------------------------


def test_a_stale_versi_is_retried_once_against_the_current_one(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=False)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        (skp,) = [s for s in box.target.skps() if s["nip"] == nip]
        # Someone edits the SKP in e-Kinerja (versi 2); then the plan changes in PMM.
        status, _ = box.target.replace_skp(skp["id_skp"], skp["body"], 1, set())
        assert status == 200
        world.update_record(guru["id"], _other_indicator)
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "updated") == 1
        _create, stale, current = outbox_of(app, PERIOD, nip, SKP)
        assert (stale.if_match, stale.state, stale.last_status) == (1, OutboxState.SUPERSEDED, 412)
        assert (current.if_match, current.state) == (2, OutboxState.DONE)
        assert current.idempotency_key != stale.idempotency_key
        row = record_of(app, PERIOD, nip, SKP)
        assert (row.status, row.skp_version) == (RecordStatus.DELIVERED, 3)
        (skp,) = [s for s in box.target.skps() if s["nip"] == nip]
        assert skp["versi"] == 3
        assert skp["body"] == json.loads(current.body)
        assert _outcomes(app, nip) == [
            ("create_skp", "delivered", 201),
            ("update_skp", "superseded", 412),
            ("update_skp", "delivered", 200),
        ]


def test_a_second_412_is_final_not_a_loop(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=False)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    puts: list[str | None] = []

    def always_moved_on(request: httpx.Request) -> httpx.Response | None:
        if request.method != "PUT":
            return None
        puts.append(request.headers.get("if-match"))
        versi = int(request.headers["if-match"]) + 1
        body = {"kode": "VERSI_TIDAK_SESUAI", "pesan": "versi SKP sudah berubah", "versi": versi}
        return httpx.Response(412, json=body)

    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        world.update_record(guru["id"], _other_indicator)
        box.intercept(always_moved_on)
        summary = app.engine.run(PERIOD)
        assert puts == ["1", "2"]
        assert summary.count("skp", "failed") == 1
        row = record_of(app, PERIOD, nip, SKP)
        assert (row.status, row.reason_code) == (RecordStatus.FAILED, "VERSI_TIDAK_SESUAI")
        assert [e.state for e in outbox_of(app, PERIOD, nip, SKP)] == [
            OutboxState.DONE,
            OutboxState.SUPERSEDED,
            OutboxState.DEAD,
        ]


# -- locked ------------------------------------------------------------------------------------


def test_skp_terkunci_is_reported_locked_and_never_retried(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=False)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        _penilaian_by_hand(box, nip)  # e-Kinerja locked the SKP; the sync does not know
        world.update_record(guru["id"], _other_indicator)
        summary = app.engine.run(PERIOD)
        assert summary.count("skp", "locked") == 1
        assert summary.count("skp", "failed") == 0
        row = record_of(app, PERIOD, nip, SKP)
        assert (row.status, row.reason_code) == (RecordStatus.LOCKED, "SKP_TERKUNCI")
        assert nip in (row.reason or "")
        update = outbox_of(app, PERIOD, nip, SKP)[-1]
        assert (update.action, update.state, update.attempts) == (
            OutboxAction.UPDATE_SKP,
            OutboxState.DEAD,
            1,
        )
        assert _outcomes(app, nip)[-1] == ("update_skp", "locked", 409)
        assert box.target.stats()["skp_updated"] == 0
        requests = len(box.api_requests)
        again = app.engine.run(PERIOD)
        assert again.requests_sent == 0
        assert len(box.api_requests) == requests
        assert record_of(app, PERIOD, nip, SKP).status is RecordStatus.LOCKED


def test_penilaian_sudah_ada_is_reported_locked(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=False)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        _penilaian_by_hand(box, nip)
        world.update_record(guru["id"], _finalise)
        before = box.target.stats()
        summary = app.engine.run(PERIOD)
        assert summary.count("assessment", "locked") == 1
        row = record_of(app, PERIOD, nip, ASSESSMENT)
        assert (row.status, row.reason_code) == (RecordStatus.LOCKED, "PENILAIAN_SUDAH_ADA")
        (entry,) = outbox_of(app, PERIOD, nip, ASSESSMENT)
        assert (entry.state, entry.last_status) == (OutboxState.DEAD, 409)
        assert _outcomes(app, nip, "assessment") == [("create_assessment", "locked", 409)]
        assert box.target.stats()["penilaian_created"] == before["penilaian_created"]
        requests = len(box.api_requests)
        assert app.engine.run(PERIOD).requests_sent == 0
        assert len(box.api_requests) == requests


def test_changes_after_the_penilaian_went_are_locked_without_a_request(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=5, seed=5, periods=[PERIOD])
    guru = _guru(world, final=True)
    nip = guru["pegawai"]["nip"]
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(PERIOD)
        assert record_of(app, PERIOD, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        requests = len(box.api_requests)

        def corrected(record: dict[str, Any]) -> None:
            _other_indicator(record)
            _finalise(record)

        world.update_record(guru["id"], corrected)
        summary = app.engine.run(PERIOD)
        assert summary.requests_sent == 0
        assert len(box.api_requests) == requests
        assert summary.count("skp", "locked") == summary.count("assessment", "locked") == 1
        for kind in (SKP, ASSESSMENT):
            row = record_of(app, PERIOD, nip, kind)
            assert row.status is RecordStatus.LOCKED
            assert "by hand" in (row.reason or "")
            assert row.delivered_hash != row.payload_hash
            assert [e.state for e in outbox_of(app, PERIOD, nip, kind)] == [OutboxState.DONE]
