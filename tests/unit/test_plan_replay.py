"""A refused deliverable waits for a replay whatever the mapping (issue 23 item 8): planning
keeps it, however the payload the active version makes differs, until PMM serves a new version
of its record or an operator replays it."""

from __future__ import annotations

import datetime as dt

import pytest

from mappings.versions import get_mapping
from state.models import DeliveryKind, RecordStatus
from sync.hashing import content_hash
from sync.pipeline.plan import Known, awaits_replay, plan_record
from tests.unit.test_plan import RECORD, assert_no_change, delivered, skp_hash

FAILED_AT = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
OTHER_VERSION = get_mapping("2026.1")  # makes another SKP body of RECORD (its training hours)


def test_the_fixture_maps_otherwise_under_the_other_version() -> None:
    assert content_hash(OTHER_VERSION.skp(RECORD)) != skp_hash(RECORD)


def test_a_refusal_awaits_a_replay_until_pmm_serves_a_new_version() -> None:
    before, after = FAILED_AT - dt.timedelta(days=1), FAILED_AT + dt.timedelta(seconds=1)
    assert awaits_replay(RecordStatus.FAILED, FAILED_AT, before)
    assert awaits_replay(RecordStatus.FAILED, FAILED_AT, FAILED_AT)
    assert awaits_replay(RecordStatus.FAILED, FAILED_AT, None)
    assert not awaits_replay(RecordStatus.FAILED, FAILED_AT, after)  # fixed in PMM: planned
    for status in set(RecordStatus) - {RecordStatus.FAILED}:
        assert not awaits_replay(status, FAILED_AT, before)


def test_a_refused_skp_is_kept_under_another_mapping_version() -> None:
    refused = Known(RecordStatus.FAILED, skp_hash(RECORD), None, awaits_replay=True)
    skp, assessment = plan_record(RECORD, refused, None, OTHER_VERSION)
    assert_no_change(skp, DeliveryKind.SKP)
    # Its penilaian is planned behind it, as behind any refused SKP: it goes after the replay.
    assert assessment.status is RecordStatus.PENDING


@pytest.mark.parametrize("skp_delivered", [True, False])
def test_a_refused_penilaian_or_update_is_kept_under_another_mapping_version(
    skp_delivered: bool,
) -> None:
    refused_update = Known(
        RecordStatus.FAILED, "an-older-hash", skp_hash(RECORD), "SKP-1", 1, awaits_replay=True
    )
    skp, _ = plan_record(RECORD, refused_update, None, OTHER_VERSION)
    assert_no_change(skp, DeliveryKind.SKP)
    refused = Known(RecordStatus.FAILED, "an-older-hash", None, awaits_replay=True)
    skp_known = delivered(skp_hash(RECORD)) if skp_delivered else None
    _, assessment = plan_record(RECORD, skp_known, refused, OTHER_VERSION)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)
