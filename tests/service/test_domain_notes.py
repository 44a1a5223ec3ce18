"""Issue 23, "Domain", in-process: a bad entry of the period listing is reported and the
other periods sync; a NUPTK never holds a record back (an empty one is absent, a malformed
one a note that ``status`` shows); a tmt_jabatan after the period is a note on the record;
records an older release held back are read again from the store; a stored record that this
release's rules refuse is quarantined when it is planned again, not a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

import sync.pipeline.ingest
from connectors.sandbox import generate_world
from mappings.model import PerformanceRecord
from mappings.source import Rejection, read_record
from mappings.versions import get_mapping
from state.models import DeliveryKind, RecordStatus, SourceRecord, SourceStatus
from sync.cli import app as cli
from tests.service.harness import InProcessSandbox, app_for, record_of

Box = Callable[..., InProcessSandbox]
SKP, ASSESSMENT = DeliveryKind.SKP, DeliveryKind.ASSESSMENT
BROKEN = {  # no semester 3 in the contract
    "kode": "2025-3",
    "jenis": "semester",
    "tahun": 2025,
    "semester": 3,
    "tanggal_mulai": "2025-07-01",
    "tanggal_selesai": "2025-09-30",
    "batas_penilaian": None,
    "status": "ditutup",
}


def _source_row(app: Any, source_id: str) -> SourceRecord:
    with Session(app.store.engine) as session:
        row = session.get(SourceRecord, source_id)
        assert row is not None
        return row


def _final_teachers(world: Any, period: str) -> list[dict[str, Any]]:
    return [
        r
        for r in world.records(period)
        if r["penilaian"]["status"] == "final"
        and r["pegawai"]["jenis_ptk"] == "guru"
        and r["pegawai"]["jenjang_jabatan"]
        and not r["dibatalkan"]
        and isinstance(read_record(r), PerformanceRecord)
    ]


def test_a_bad_period_entry_is_reported_and_every_other_period_syncs(
    sandbox: Box, sqlite_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=3, seed=5, periods=["2024-1", "2026"])
    world.periods.append(BROKEN)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        for period in ("2024-1", "2026"):
            summary = app.engine.run(period)
            assert summary.count("skp", "new") > 0, period
            (problem,) = summary.listing_problems
            assert "'2025-3' that breaks its contract" in problem
            assert "PMM helpdesk" in problem
            assert problem.endswith("the other periods sync")
            assert summary.as_dict()["listing_problems"] == [problem]
    assert box.target.stats()["rejected"] == 0


def test_nuptk_never_holds_a_record_back_and_status_shows_the_malformed_one(
    sandbox: Box, sqlite_url: str, tmp_path: Path
) -> None:
    period = "2024-2"
    world = generate_world(schools=2, teachers_per_school=4, seed=7, periods=[period])
    empty, short = _final_teachers(world, period)[:2]

    def set_nuptk(value: str) -> Callable[[dict[str, Any]], None]:
        return lambda r: r["pegawai"].update(nuptk=value)

    world.update_record(empty["id"], set_nuptk(""))  # as Dapodik exports often have it
    world.update_record(short["id"], set_nuptk("320105120896000"))  # a digit lost: 15
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(period)
        for record in (empty, short):
            nip = record["pegawai"]["nip"]
            assert record_of(app, period, nip, SKP).status is RecordStatus.DELIVERED
            assert record_of(app, period, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        assert _source_row(app, empty["id"]).note is None
        noted = app.store.reports.noted(period)
        assert [(n.id, n.nip) for n in noted] == [(short["id"], short["pegawai"]["nip"])]
        assert "NUPTK '320105120896000' is not 16 digits" in (noted[0].note or "")

    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    shown = CliRunner().invoke(cli, ["--config", str(config), "status", "--period", period])
    assert "Data notes on 1 records" in shown.stdout, shown.stdout
    assert "320105120896000" in shown.stdout
    as_json = CliRunner().invoke(
        cli, ["--config", str(config), "status", "--period", period, "--json"]
    )
    notes = json.loads(as_json.stdout)["notes"]
    assert [(n["source_id"], n["nip"]) for n in notes] == [(short["id"], short["pegawai"]["nip"])]


def test_a_tmt_jabatan_after_the_period_is_sent_with_a_note_on_the_record(
    sandbox: Box, sqlite_url: str
) -> None:
    period = "2024-1"
    world = generate_world(schools=2, teachers_per_school=4, seed=3, periods=[period])
    (late,) = _final_teachers(world, period)[:1]
    # Promoted on 1 August 2024: after the semester ended (30 June).
    world.update_record(late["id"], lambda r: r["pegawai"].update(tmt_jabatan="2024-08-01"))
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        app.engine.run(period)
        nip = late["pegawai"]["nip"]
        assert record_of(app, period, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        note = _source_row(app, late["id"]).note or ""
        assert "tmt_jabatan 2024-08-01 is after the period ended (2024-06-30)" in note
        assert "angka kredit" in note
        assert [n.id for n in app.store.reports.noted(period)] == [late["id"]]


def test_a_record_an_older_release_held_back_is_read_again_from_the_store(
    sandbox: Box, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PMM serves a record again only when it changes: one quarantined for its empty NUPTK
    by a release before issue 23 goes out on the next run, with nothing changed in PMM."""
    period = "2024-2"
    world = generate_world(schools=2, teachers_per_school=4, seed=9, periods=[period])
    (held,) = _final_teachers(world, period)[:1]
    world.update_record(held["id"], lambda r: r["pegawai"].update(nuptk=""))
    nip = held["pegawai"]["nip"]

    def older_release(raw: object) -> object:
        if isinstance(raw, dict) and raw.get("id") == held["id"]:
            return Rejection(held["id"], period, nip, None, "invalid_nuptk", "NUPTK '' ...")
        return read_record(raw)

    box = sandbox(world)
    with monkeypatch.context() as patch:
        patch.setattr(sync.pipeline.ingest, "read_record", older_release)
        with app_for(box, sqlite_url) as app:
            app.engine.run(period)
            assert _source_row(app, held["id"]).status is SourceStatus.QUARANTINED
    requests = len(box.source_requests)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(period)
        row = _source_row(app, held["id"])
        assert (row.status, row.reason_code) == (SourceStatus.VALID, None)
        assert record_of(app, period, nip, SKP).status is RecordStatus.DELIVERED
        assert record_of(app, period, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        assert summary.quarantined == 0
    assert len(box.source_requests) > requests  # the run read PMM; the record came from the store


def test_a_stored_record_this_release_refuses_is_quarantined_when_planned_again(
    sandbox: Box, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = "2024-1"
    world = generate_world(schools=2, teachers_per_school=4, seed=4, periods=[period])
    (early,) = _final_teachers(world, period)[:1]
    # Finalised in December 2023, before the semester began: stored by an older release.
    world.update_record(
        early["id"],
        lambda r: r["penilaian"].update(difinalkan_pada="2023-12-20T10:00:00+07:00"),
    )
    nip = early["pegawai"]["nip"]

    def older_release(raw: object) -> object:
        if isinstance(raw, dict) and raw.get("id") == early["id"]:
            fixed = json.loads(json.dumps(raw))
            fixed["penilaian"]["difinalkan_pada"] = "2024-06-20T10:00:00+07:00"
            return read_record(fixed)
        return read_record(raw)

    box = sandbox(world)
    with monkeypatch.context() as patch:
        patch.setattr(sync.pipeline.ingest, "read_record", older_release)
        with app_for(box, sqlite_url) as app:
            app.engine.run(period)
    with app_for(box, sqlite_url) as app:
        assert record_of(app, period, nip, ASSESSMENT).status is RecordStatus.DELIVERED
        # Planned again (a remap, a replay, another record of the NIP) with today's rules.
        with app.store.unit_of_work() as session:
            plan = app.engine.planner.plan(session, period, get_mapping("2026.2"), {nip})
            app.engine.outbox_writer.write(session, plan)
        row = _source_row(app, early["id"])
        assert (row.status, row.reason_code) == (
            SourceStatus.QUARANTINED,
            "finalised_before_period",
        )
        # What was delivered stays as it was: e-Kinerja holds it, the quarantine says why.
        assert record_of(app, period, nip, ASSESSMENT).status is RecordStatus.DELIVERED
