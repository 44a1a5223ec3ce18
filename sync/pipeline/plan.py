"""Planning: what to do about one teacher's record in one period. Pure: no I/O, no clock.

Given the effective source record (or the news that every record was cancelled) and what the
state store knows of the two deliverables (SKP, penilaian), decide each one's new status and
whether a request goes into the outbox. The rules are docs/design.md, "When something is sent".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mappings.model import PerformanceRecord
from mappings.versions import MappingVersion
from state.models import DISCARDED, DeliveryKind, OutboxAction, RecordStatus, SyncRecord
from sync.hashing import canonical_json_and_hash

__all__ = [
    "Decision",
    "Known",
    "Send",
    "awaits_replay",
    "closed_by_operator",
    "effective_record",
    "known_of",
    "plan_cancellation",
    "plan_record",
]


@dataclass(frozen=True, slots=True)
class Known:
    """What the state store holds for one deliverable."""

    status: RecordStatus
    payload_hash: str | None
    delivered_hash: str | None
    skp_id: str | None = None
    skp_version: int | None = None
    # Closed by an operator (discarded) and PMM has served no new version since: an
    # operator's decision holds against a mapping switch, a remap, a reset or a replay.
    closed_by_operator: bool = False
    # Refused by e-Kinerja (failed) and PMM has served no new version since: it waits for an
    # operator's replay, whatever the mapping (a switch does not send it again: docs/operators/
    # failures.md). A new version from PMM is planned as usual (the fix is often made there).
    awaits_replay: bool = False

    @property
    def delivered(self) -> bool:
        return self.delivered_hash is not None


@dataclass(frozen=True, slots=True)
class Send:
    action: OutboxAction
    body_json: str
    payload_hash: str
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The new state of one deliverable; ``send`` is a request for the outbox (or None).

    ``keep`` means: nothing changes for this deliverable (no write at all).
    """

    kind: DeliveryKind
    status: RecordStatus
    reason: str | None = None
    payload_hash: str | None = None
    send: Send | None = None
    keep: bool = False


def _keep(kind: DeliveryKind, payload_hash: str) -> Decision:
    """Nothing changes; the payload the active mapping makes is ``payload_hash``."""
    return Decision(kind, RecordStatus.WAITING, payload_hash=payload_hash, keep=True)


_KEEP_SKP = Decision(DeliveryKind.SKP, RecordStatus.WAITING, keep=True)
_KEEP_ASSESSMENT = Decision(DeliveryKind.ASSESSMENT, RecordStatus.WAITING, keep=True)
# Statuses in which a request with the same payload is already on its way or was refused
# for good: planning the same payload again changes nothing (replay is the operator's call).
_SETTLED = {RecordStatus.PENDING, RecordStatus.HELD, RecordStatus.FAILED, RecordStatus.LOCKED}


def closed_by_operator(
    reason_code: str | None, closed_at: dt.datetime, source_seen_at: dt.datetime | None
) -> bool:
    """A deliverable an operator closed (``discard``) stays closed until PMM serves a new
    version of its record (stored after the decision: ``source_seen_at`` later)."""
    if reason_code != DISCARDED:
        return False
    return source_seen_at is None or source_seen_at <= closed_at


def awaits_replay(
    status: RecordStatus, failed_at: dt.datetime, source_seen_at: dt.datetime | None
) -> bool:
    """A deliverable e-Kinerja refused waits for a replay until PMM serves a new version of
    its record (stored after the refusal: ``source_seen_at`` later)."""
    if status is not RecordStatus.FAILED:
        return False
    return source_seen_at is None or source_seen_at <= failed_at


def known_of(row: SyncRecord | None, source_seen_at: dt.datetime | None = None) -> Known | None:
    """What the planner needs of a deliverable's row; ``source_seen_at``: when PMM's newest
    version of the teacher's record was stored (a discard holds until a newer one)."""
    if row is None:
        return None
    return Known(
        row.status,
        row.payload_hash,
        row.delivered_hash,
        row.skp_id,
        row.skp_version,
        closed_by_operator(row.reason_code, row.changed_at, source_seen_at),
        awaits_replay(row.status, row.changed_at, source_seen_at),
    )


def _payload(body: dict[str, Any]) -> tuple[str, str]:
    """The request body as sent and stored (canonical JSON) and its hash, encoded once."""
    return canonical_json_and_hash(body)


class _Dated(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def updated_at(self) -> dt.datetime: ...
    @property
    def cancelled(self) -> bool: ...


_R = TypeVar("_R", bound=_Dated)


def effective_record(rows: Sequence[_R]) -> tuple[_R, bool]:
    """The record that counts for a teacher in a period: the latest non-cancelled one by
    (diperbarui_pada, id); if all are cancelled, the latest one, flagged as cancelled."""
    live = [r for r in rows if not r.cancelled]
    pool = live or list(rows)
    return max(pool, key=lambda r: (r.updated_at, r.id)), not live


def _plan_skp(
    record: PerformanceRecord,
    known: Known | None,
    mapping: MappingVersion,
    assessment_delivered: bool,
) -> Decision:
    kind = DeliveryKind.SKP
    if known is not None and (known.closed_by_operator or known.awaits_replay):
        return _KEEP_SKP
    if not record.plan_approved:
        if known is not None and known.delivered:
            return _KEEP_SKP
        return Decision(kind, RecordStatus.WAITING, "perencanaan not approved yet in PMM")
    body_json, payload_hash = _payload(mapping.skp(record))
    if known is not None and known.payload_hash == payload_hash and known.status in _SETTLED:
        return _keep(kind, payload_hash)
    if known is not None and known.delivered:
        if known.delivered_hash == payload_hash:
            if known.status is RecordStatus.DELIVERED:
                return _keep(kind, payload_hash)
            # A pending change was changed back before it went out: nothing to send.
            return Decision(kind, RecordStatus.DELIVERED, None, payload_hash)
        if assessment_delivered:
            return Decision(
                kind,
                RecordStatus.LOCKED,
                "SKP changed (in PMM, or by a new mapping version) after its penilaian was "
                "sent; e-Kinerja has locked it: correct it in e-Kinerja by hand",
                payload_hash,
            )
        send = Send(OutboxAction.UPDATE_SKP, body_json, payload_hash, known.skp_version)
        return Decision(kind, RecordStatus.PENDING, None, payload_hash, send)
    if known is not None and known.skp_id is not None:
        # The target already holds an SKP we never saw confirmed (found by a 409): update it.
        send = Send(OutboxAction.UPDATE_SKP, body_json, payload_hash, known.skp_version)
    else:
        send = Send(OutboxAction.CREATE_SKP, body_json, payload_hash)
    return Decision(kind, RecordStatus.PENDING, None, payload_hash, send)


def _plan_assessment(
    record: PerformanceRecord,
    known: Known | None,
    mapping: MappingVersion,
    skp: Decision,
    skp_known: Known | None,
) -> Decision:
    kind = DeliveryKind.ASSESSMENT
    if known is not None and (known.closed_by_operator or known.awaits_replay):
        return _KEEP_ASSESSMENT
    if not record.assessment_final:
        if known is not None and known.delivered:
            return _KEEP_ASSESSMENT
        state = {"not_started": "belum", "draft": "draf"}.get(record.assessment.status.value)
        return Decision(kind, RecordStatus.WAITING, f"penilaian is {state} in PMM, not final")
    skp_will_exist = not (skp_known is not None and skp_known.closed_by_operator) and (
        (skp_known is not None and skp_known.delivered)
        or skp.send is not None
        or (skp.keep and skp_known is not None and skp_known.status in _SETTLED)
    )
    if not skp_will_exist:
        return Decision(kind, RecordStatus.WAITING, "waiting for its SKP (perencanaan)")
    body_json, payload_hash = _payload(mapping.assessment(record))
    if known is not None and known.delivered:
        if known.delivered_hash == payload_hash:
            return _keep(kind, payload_hash)
        if known.status is RecordStatus.LOCKED and known.payload_hash == payload_hash:
            return _keep(kind, payload_hash)
        return Decision(
            kind,
            RecordStatus.LOCKED,
            "penilaian changed (in PMM, or by a new mapping version) after it was sent; "
            "e-Kinerja accepts one penilaian per SKP: correct it in e-Kinerja by hand",
            payload_hash,
        )
    if known is not None and known.payload_hash == payload_hash and known.status in _SETTLED:
        return _keep(kind, payload_hash)
    send = Send(OutboxAction.CREATE_ASSESSMENT, body_json, payload_hash)
    return Decision(kind, RecordStatus.PENDING, None, payload_hash, send)


def plan_record(
    record: PerformanceRecord,
    skp: Known | None,
    assessment: Known | None,
    mapping: MappingVersion,
) -> tuple[Decision, Decision]:
    """Decide the SKP and the penilaian of one effective, valid, non-cancelled record."""
    skp_decision = _plan_skp(
        record, skp, mapping, assessment_delivered=assessment is not None and assessment.delivered
    )
    return skp_decision, _plan_assessment(record, assessment, mapping, skp_decision, skp)


def plan_cancellation(
    skp: Known | None, assessment: Known | None, *, reason: str = "cancelled in PMM"
) -> tuple[Decision, Decision]:
    """Every record of the teacher for the period is cancelled (``dibatalkan``) in PMM, or
    no longer carries this NIP (``reason`` says which)."""

    def one(kind: DeliveryKind, known: Known | None) -> Decision:
        if known is not None and known.closed_by_operator:
            return Decision(kind, RecordStatus.WAITING, keep=True)
        if known is not None and known.delivered:
            return Decision(
                kind,
                RecordStatus.CANCELLED_AFTER_DELIVERY,
                f"{reason} after it was sent; e-Kinerja has no delete: "
                "withdraw it in e-Kinerja by hand if it must go",
            )
        return Decision(kind, RecordStatus.CANCELLED, f"{reason} before it was sent")

    return one(DeliveryKind.SKP, skp), one(DeliveryKind.ASSESSMENT, assessment)
