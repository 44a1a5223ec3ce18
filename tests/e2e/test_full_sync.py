"""A semester, end to end: PMM sandbox -> engine -> e-Kinerja sandbox, over real HTTP,
on SQLite and on PostgreSQL. The delivery branches one by one (updates, dry run, one school,
held, a record the mapping refuses) are the service tier's (tests/service/), in-process."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from connectors.sandbox import generate_world, running_sandbox
from state import ledger
from state.models import (
    RecordStatus,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from tests.e2e.helpers import app_for, expected_after_sync

PERIOD = "2025-1"


@pytest.mark.parametrize("schema_version", [1, 2])
def test_semester_reaches_target_exactly_once(state_url: str, schema_version: int) -> None:
    world = generate_world(schools=10, teachers_per_school=20, seed=11, periods=[PERIOD])
    assert len(world.records(PERIOD)) >= 200
    expected = expected_after_sync(world, PERIOD)
    assert expected.defects, "the sandbox must serve some bad records"
    with (
        running_sandbox(world, schema_version=1) as box,
        app_for(box, state_url, source={"schema_version": schema_version}) as app,
    ):
        summary = app.engine.run(PERIOD)
        stats = box.target.stats()

        # Every valid, ready record reached the target exactly once, by the sandbox's count.
        assert stats["creates"]["skp"] == expected.skp
        assert stats["creates"]["penilaian"] == expected.assessment
        assert summary.count("skp", "new") == len(expected.skp)
        assert summary.count("assessment", "new") == len(expected.assessment)

        # Every bad record is quarantined with a reason a person can read.
        with Session(app.store.engine) as session:
            quarantined = {
                r.id: r
                for r in session.exec(
                    select(SourceRecord).where(SourceRecord.status == SourceStatus.QUARANTINED)
                )
            }
            held = {
                r.nip
                for r in session.exec(
                    select(SyncRecord).where(SyncRecord.status == RecordStatus.HELD)
                )
            }
        assert set(quarantined) == expected.defects
        for defect in world.defects:
            row = quarantined[defect.source_id]
            assert row.reason is not None
            assert len(row.reason) > 20
            assert (
                row.reason_code
                in {
                    "bad_nip": {"invalid_nip"},
                    "wrong_indicator_family": {"indicator_role_mismatch"},
                    "predicate_mismatch": {"predicate_mismatch"},
                }[defect.kind]
            )
        assert summary.quarantined == len(expected.defects)
        assert held == expected.held

        # The ledger holds one entry per delivery, with the body as sent, and verifies.
        with Session(app.store.engine) as session:
            delivered = [e for e in ledger.query(session) if e.outcome == "delivered"]
            assert ledger.verify(session).ok
        assert len(delivered) == len(expected.skp) + len(expected.assessment)
        sample = next(e for e in delivered if e.kind == "skp")
        assert sample.request_body is not None
        assert json.loads(sample.request_body)["nip"] == sample.nip
        assert sample.http_status == 201
        assert sample.mapping_version == "2026.2"  # a new store's default (issue 23)
        assert sample.actor == "cli"

        # A rerun with no source change sends nothing.
        again = app.engine.run(PERIOD)
        assert again.requests_sent == 0
        assert box.target.stats()["requests"] == stats["requests"]
        assert again.count("skp", "unchanged") == len(expected.skp)
