"""sync.plan and sync.hashing: what is sent for one record (docs/design.md, "When something is
sent")."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from mappings.model import (
    Assessment,
    AssessmentStatus,
    Assessor,
    Employee,
    EmploymentStatus,
    Indicator,
    PerformanceRecord,
    Period,
    Role,
    School,
)
from mappings.rules import Grade, Predicate, Rating
from mappings.versions import FIRST_VERSION, get_mapping
from state.models import DeliveryKind, OutboxAction, RecordStatus
from sync.hashing import canonical_json, content_hash, idempotency_key
from sync.pipeline.plan import Decision, Known, plan_cancellation, plan_record

WIB = dt.timezone(dt.timedelta(hours=7))
MAPPING = get_mapping(FIRST_VERSION)
NIP = "198503152010012003"


def make_record(
    *,
    approved: bool = True,
    status: AssessmentStatus = AssessmentStatus.FINAL,
    npsn: str = "20212345",
    indicator: str = "G-03",
    ratings: tuple[Rating, Rating] = (Rating.MEETS, Rating.MEETS),
    predicate: Predicate = Predicate.GOOD,
) -> PerformanceRecord:
    final = status is AssessmentStatus.FINAL
    rated = status is not AssessmentStatus.NOT_STARTED
    return PerformanceRecord(
        source_id="src-1",
        schema_version=2,
        period=Period.parse("2025-1"),
        employee=Employee(
            nip=NIP,
            nuptk=None,
            name="Siti",
            role=Role.TEACHER,
            employment_status=EmploymentStatus.PNS,
            position="Guru Ahli Muda",
            grade=Grade.JUNIOR,
        ),
        school=School(npsn=npsn, name=f"Sekolah {npsn}"),
        assessor=Assessor(nip="197002101995031001", name="Budi", role=Role.PRINCIPAL),
        indicators=(Indicator(indicator, "Indikator"),),
        plan_approved_at=dt.datetime(2025, 1, 20, 9, tzinfo=WIB) if approved else None,
        training_hours=32,
        assessment=Assessment(
            status=status,
            result_rating=ratings[0] if rated else None,
            behaviour_rating=ratings[1] if rated else None,
            predicate=predicate if rated else None,
            finalised_at=dt.datetime(2025, 6, 25, 9, tzinfo=WIB) if final else None,
            note=None,
        ),
        cancelled=False,
        updated_at=dt.datetime(2025, 6, 26, 9, tzinfo=WIB),
    )


def skp_hash(record: PerformanceRecord) -> str:
    return content_hash(MAPPING.skp(record))


def assessment_hash(record: PerformanceRecord) -> str:
    return content_hash(MAPPING.assessment(record))


def delivered(payload_hash: str, *, version: int = 1) -> Known:
    return Known(RecordStatus.DELIVERED, payload_hash, payload_hash, "SKP-1", version)


def assert_no_change(decision: Decision, kind: DeliveryKind) -> None:
    assert decision.kind is kind
    assert decision.keep
    assert decision.send is None


RECORD = make_record()
MOVED = make_record(npsn="20299999")  # a rotation: another school, so another SKP body
REGRADED = make_record(ratings=(Rating.ABOVE, Rating.ABOVE), predicate=Predicate.VERY_GOOD)


def test_fixtures_differ_where_intended() -> None:
    assert skp_hash(MOVED) != skp_hash(RECORD)
    assert assessment_hash(MOVED) == assessment_hash(RECORD)
    assert skp_hash(REGRADED) == skp_hash(RECORD)
    assert assessment_hash(REGRADED) != assessment_hash(RECORD)


# --- new records -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "word"), [(AssessmentStatus.DRAFT, "draf"), (AssessmentStatus.NOT_STARTED, "belum")]
)
def test_new_approved_record_with_unfinished_penilaian(status: AssessmentStatus, word: str) -> None:
    record = make_record(status=status)
    skp, assessment = plan_record(record, None, None, MAPPING)
    assert skp.kind is DeliveryKind.SKP
    assert skp.status is RecordStatus.PENDING
    assert skp.send is not None
    assert skp.send.action is OutboxAction.CREATE_SKP
    assert skp.send.if_match is None
    assert json.loads(skp.send.body_json) == MAPPING.skp(record)
    assert skp.send.payload_hash == skp.payload_hash == skp_hash(record)
    assert assessment.kind is DeliveryKind.ASSESSMENT
    assert assessment.status is RecordStatus.WAITING
    assert assessment.send is None
    assert not assessment.keep
    assert assessment.reason is not None
    assert word in assessment.reason


def test_new_approved_final_record_creates_skp_and_penilaian() -> None:
    skp, assessment = plan_record(RECORD, None, None, MAPPING)
    assert skp.send is not None
    assert skp.send.action is OutboxAction.CREATE_SKP
    assert assessment.status is RecordStatus.PENDING
    assert assessment.send is not None
    assert assessment.send.action is OutboxAction.CREATE_ASSESSMENT
    assert json.loads(assessment.send.body_json) == MAPPING.assessment(RECORD)
    assert assessment.payload_hash == assessment.send.payload_hash == assessment_hash(RECORD)


def test_unapproved_plan_waits_and_sends_nothing() -> None:
    record = make_record(approved=False)
    skp, assessment = plan_record(record, None, None, MAPPING)
    assert skp.status is RecordStatus.WAITING
    assert skp.send is None
    assert skp.reason is not None
    assert "perencanaan" in skp.reason
    # Even a final penilaian cannot go without its SKP.
    assert assessment.status is RecordStatus.WAITING
    assert assessment.send is None


def test_delivered_skp_is_kept_when_the_plan_is_unapproved_again() -> None:
    skp, _ = plan_record(make_record(approved=False), delivered(skp_hash(RECORD)), None, MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)


# --- delivered SKP ---------------------------------------------------------------------------


def test_delivered_same_hash_is_kept() -> None:
    skp, assessment = plan_record(RECORD, delivered(skp_hash(RECORD)), None, MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)
    # The SKP is there: the final penilaian can go.
    assert assessment.send is not None
    assert assessment.send.action is OutboxAction.CREATE_ASSESSMENT


def test_delivered_both_same_hash_sends_nothing() -> None:
    known_skp = delivered(skp_hash(RECORD))
    known_assessment = delivered(assessment_hash(RECORD))
    skp, assessment = plan_record(RECORD, known_skp, known_assessment, MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


@pytest.mark.parametrize("version", [1, 4])
def test_delivered_changed_skp_is_updated_with_if_match(version: int) -> None:
    record = make_record(npsn="20299999", status=AssessmentStatus.DRAFT)
    skp, _ = plan_record(record, delivered(skp_hash(RECORD), version=version), None, MAPPING)
    assert skp.status is RecordStatus.PENDING
    assert skp.send is not None
    assert skp.send.action is OutboxAction.UPDATE_SKP
    assert skp.send.if_match == version
    assert skp.payload_hash == skp_hash(record)
    assert json.loads(skp.send.body_json)["unit_kerja"]["npsn"] == "20299999"


def test_changed_indicator_is_an_update() -> None:
    record = make_record(indicator="G-07", status=AssessmentStatus.DRAFT)
    skp, _ = plan_record(record, delivered(skp_hash(RECORD), version=2), None, MAPPING)
    assert skp.send is not None
    assert skp.send.action is OutboxAction.UPDATE_SKP
    assert skp.send.if_match == 2


def test_skp_changed_after_its_penilaian_was_delivered_is_locked() -> None:
    known_skp = delivered(skp_hash(RECORD))
    known_assessment = delivered(assessment_hash(RECORD))
    skp, assessment = plan_record(MOVED, known_skp, known_assessment, MAPPING)
    assert skp.status is RecordStatus.LOCKED
    assert skp.send is None
    assert skp.reason is not None
    assert "by hand" in skp.reason
    assert skp.payload_hash == skp_hash(MOVED)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


def test_locked_skp_is_not_reported_again_for_the_same_change() -> None:
    known_skp = Known(RecordStatus.LOCKED, skp_hash(MOVED), skp_hash(RECORD), "SKP-1", 1)
    skp, _ = plan_record(MOVED, known_skp, delivered(assessment_hash(RECORD)), MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)


def test_skp_change_reverted_before_it_went_out_is_delivered_again() -> None:
    # An update to MOVED is pending; PMM changed it back to what e-Kinerja already holds.
    known_skp = Known(RecordStatus.PENDING, skp_hash(MOVED), skp_hash(RECORD), "SKP-1", 2)
    skp, _ = plan_record(RECORD, known_skp, None, MAPPING)
    assert skp.status is RecordStatus.DELIVERED
    assert skp.send is None
    assert skp.payload_hash == skp_hash(RECORD)


# --- delivered penilaian ---------------------------------------------------------------------


def test_penilaian_changed_after_delivery_is_locked() -> None:
    known_skp = delivered(skp_hash(RECORD))
    known_assessment = delivered(assessment_hash(RECORD))
    skp, assessment = plan_record(REGRADED, known_skp, known_assessment, MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)
    assert assessment.status is RecordStatus.LOCKED
    assert assessment.send is None
    assert assessment.reason is not None
    assert assessment.payload_hash == assessment_hash(REGRADED)


def test_locked_penilaian_is_not_reported_again_for_the_same_change() -> None:
    known_assessment = Known(
        RecordStatus.LOCKED, assessment_hash(REGRADED), assessment_hash(RECORD)
    )
    _, assessment = plan_record(REGRADED, delivered(skp_hash(RECORD)), known_assessment, MAPPING)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


def test_delivered_penilaian_back_to_draft_is_kept() -> None:
    record = make_record(status=AssessmentStatus.DRAFT)
    known = (delivered(skp_hash(record)), delivered(assessment_hash(RECORD)))
    _, assessment = plan_record(record, *known, MAPPING)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


# --- in flight, held, failed -----------------------------------------------------------------


@pytest.mark.parametrize("status", [RecordStatus.PENDING, RecordStatus.HELD, RecordStatus.FAILED])
def test_skp_in_flight_or_failed_with_the_same_hash_is_kept(status: RecordStatus) -> None:
    known_skp = Known(status, skp_hash(RECORD), None)
    skp, _ = plan_record(RECORD, known_skp, None, MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)


@pytest.mark.parametrize("status", [RecordStatus.PENDING, RecordStatus.FAILED])
def test_penilaian_in_flight_or_failed_with_the_same_hash_is_kept(status: RecordStatus) -> None:
    known_assessment = Known(status, assessment_hash(RECORD), None)
    _, assessment = plan_record(RECORD, delivered(skp_hash(RECORD)), known_assessment, MAPPING)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


def test_pending_skp_lets_its_final_penilaian_be_planned() -> None:
    skp, assessment = plan_record(
        RECORD, Known(RecordStatus.PENDING, skp_hash(RECORD), None), None, MAPPING
    )
    assert_no_change(skp, DeliveryKind.SKP)
    assert assessment.send is not None
    assert assessment.send.action is OutboxAction.CREATE_ASSESSMENT


def test_failed_skp_with_new_content_is_sent_again() -> None:
    known_skp = Known(RecordStatus.FAILED, skp_hash(RECORD), None)
    skp, _ = plan_record(MOVED, known_skp, None, MAPPING)
    assert skp.status is RecordStatus.PENDING
    assert skp.send is not None
    assert skp.send.action is OutboxAction.CREATE_SKP
    assert skp.payload_hash == skp_hash(MOVED)


@pytest.mark.parametrize("status", [RecordStatus.WAITING, RecordStatus.FAILED])
def test_known_skp_id_but_not_delivered_is_an_update(status: RecordStatus) -> None:
    # A 409 SKP_SUDAH_ADA told us the target already holds SKP-9 at versi 5.
    known_skp = Known(status, "an-older-hash", None, skp_id="SKP-9", skp_version=5)
    skp, _ = plan_record(RECORD, known_skp, None, MAPPING)
    assert skp.status is RecordStatus.PENDING
    assert skp.send is not None
    assert skp.send.action is OutboxAction.UPDATE_SKP
    assert skp.send.if_match == 5


def test_waiting_record_becomes_a_create_once_approved() -> None:
    known_skp = Known(RecordStatus.WAITING, None, None)
    skp, _ = plan_record(RECORD, known_skp, None, MAPPING)
    assert skp.send is not None
    assert skp.send.action is OutboxAction.CREATE_SKP


def test_planning_is_deterministic() -> None:
    known = (delivered(skp_hash(RECORD)), None)
    assert plan_record(MOVED, *known, MAPPING) == plan_record(MOVED, *known, MAPPING)


# --- cancellation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "known",
    [
        None,
        Known(RecordStatus.WAITING, None, None),
        Known(RecordStatus.PENDING, "h", None),
        Known(RecordStatus.FAILED, "h", None, "SKP-1", 1),
    ],
)
def test_cancelled_before_delivery_is_not_sent(known: Known | None) -> None:
    for decision, kind in zip(
        plan_cancellation(known, known), (DeliveryKind.SKP, DeliveryKind.ASSESSMENT), strict=True
    ):
        assert decision.kind is kind
        assert decision.status is RecordStatus.CANCELLED
        assert decision.send is None
        assert decision.reason


def test_cancelled_after_delivery_is_reported() -> None:
    skp, assessment = plan_cancellation(delivered("h1"), None)
    assert skp.status is RecordStatus.CANCELLED_AFTER_DELIVERY
    assert skp.send is None
    assert skp.reason is not None
    assert "by hand" in skp.reason
    assert assessment.status is RecordStatus.CANCELLED


def test_cancelled_after_both_were_delivered() -> None:
    skp, assessment = plan_cancellation(delivered("h1"), delivered("h2"))
    assert skp.status is RecordStatus.CANCELLED_AFTER_DELIVERY
    assert assessment.status is RecordStatus.CANCELLED_AFTER_DELIVERY
    assert assessment.kind is DeliveryKind.ASSESSMENT


def test_cancelled_with_an_unsent_update_still_counts_as_delivered() -> None:
    known_skp = Known(RecordStatus.PENDING, "h2", "h1", "SKP-1", 1)
    skp, _ = plan_cancellation(known_skp, None)
    assert skp.status is RecordStatus.CANCELLED_AFTER_DELIVERY


# --- hashing and idempotency keys ------------------------------------------------------------


def test_canonical_json_ignores_key_order_and_spacing() -> None:
    one = {"b": 1, "a": {"y": [1, 2], "x": "é"}}
    two = {"a": {"x": "é", "y": [1, 2]}, "b": 1}
    assert canonical_json(one) == canonical_json(two)
    assert content_hash(one) == content_hash(two)
    assert json.loads(canonical_json(one)) == one
    assert " " not in canonical_json(one)
    assert content_hash(one) != content_hash({**one, "b": 2})
    assert content_hash([1, 2]) != content_hash([2, 1])


def key(body: dict[str, object], if_match: int | None = None, **kw: str) -> str:
    action = kw.get("action", "create_skp")
    return idempotency_key(
        action, kw.get("nip", NIP), kw.get("period", "2025-1"), canonical_json(body), if_match
    )


def test_idempotency_key_is_equal_for_equal_content() -> None:
    body = MAPPING.skp(RECORD)
    reordered = dict(reversed(list(body.items())))
    assert list(reordered) != list(body)
    assert key(body) == key(reordered)
    assert key(body, 3) == key(reordered, 3)


def test_idempotency_key_differs_for_another_request() -> None:
    body = MAPPING.skp(RECORD)
    base = key(body, 1)
    others = [
        key(body, 2),
        key(body, None),
        key(MAPPING.skp(MOVED), 1),
        key(body, 1, action="update_skp"),
        key(body, 1, nip="198503152010012004"),
        key(body, 1, period="2025-2"),
    ]
    assert base not in others
    assert len(set(others)) == len(others)


@pytest.mark.parametrize("action", [a.value for a in OutboxAction])
def test_idempotency_key_fits_the_target_limit(action: str) -> None:
    long_body = {"catatan": "x" * 5000}
    value = idempotency_key(action, NIP, "2025-1", canonical_json(long_body), 999_999)
    assert len(value) <= 128
    assert value.isascii()
    assert value == idempotency_key(action, NIP, "2025-1", canonical_json(long_body), 999_999)


def test_send_body_and_hash_agree_with_hashing() -> None:
    skp, assessment = plan_record(RECORD, None, None, MAPPING)
    for decision in (skp, assessment):
        assert decision.send is not None
        body = json.loads(decision.send.body_json)
        assert decision.send.body_json == canonical_json(body)
        assert decision.send.payload_hash == content_hash(body)


def test_replacing_a_record_field_that_is_not_sent_keeps_the_hash() -> None:
    later = dataclasses.replace(RECORD, updated_at=dt.datetime(2025, 6, 29, tzinfo=WIB))
    skp, assessment = plan_record(
        later, delivered(skp_hash(RECORD)), delivered(assessment_hash(RECORD)), MAPPING
    )
    assert skp.keep
    assert assessment.keep


# --- an operator's decision holds (issue 12.1) -------------------------------------------------

DISCARDED_AT = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)


def _discarded(payload_hash: str | None = "an-old-mapping") -> Known:
    return Known(RecordStatus.CANCELLED, payload_hash, None, closed_by_operator=True)


def test_a_discarded_skp_is_not_planned_again_by_any_mapping() -> None:
    from mappings.versions import MAPPING_VERSIONS

    for mapping in MAPPING_VERSIONS.values():
        if not mapping.maps(RECORD.period.kind):
            continue
        skp, assessment = plan_record(RECORD, _discarded(), None, mapping)
        assert_no_change(skp, DeliveryKind.SKP)
        # Its penilaian waits: it has no SKP to hang under.
        assert assessment.send is None
        assert assessment.status is RecordStatus.WAITING


def test_a_discarded_penilaian_is_not_planned_again() -> None:
    skp, assessment = plan_record(RECORD, delivered(skp_hash(RECORD)), _discarded(), MAPPING)
    assert_no_change(skp, DeliveryKind.SKP)
    assert_no_change(assessment, DeliveryKind.ASSESSMENT)


def test_a_discarded_record_stays_closed_when_cancelled_afterwards_without_a_new_version() -> None:
    skp, _assessment = plan_cancellation(_discarded(), None)
    assert_no_change(skp, DeliveryKind.SKP)


def test_only_a_new_version_from_pmm_reopens_a_discarded_record() -> None:
    from state.models import DISCARDED
    from sync.pipeline.plan import closed_by_operator

    before = DISCARDED_AT - dt.timedelta(days=1)
    after = DISCARDED_AT + dt.timedelta(seconds=1)
    assert closed_by_operator(DISCARDED, DISCARDED_AT, before)
    assert closed_by_operator(DISCARDED, DISCARDED_AT, DISCARDED_AT)
    assert not closed_by_operator(DISCARDED, DISCARDED_AT, after)
    # Only a discard closes a record: a refusal by e-Kinerja does not.
    assert not closed_by_operator("NIP_TIDAK_DITEMUKAN", DISCARDED_AT, before)
    reopened = dataclasses.replace(_discarded(), closed_by_operator=False)
    skp, _assessment = plan_record(RECORD, reopened, None, MAPPING)
    assert skp.send is not None
    assert skp.send.action is OutboxAction.CREATE_SKP
