"""Plain rows the engine reads by the thousand (no ORM object each): a deliverable's head, an
unsent request's head, a source record without its body."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from state.models import DeliveryKind, OutboxAction, OutboxEntry, RecordStatus, SourceStatus

__all__ = [
    "DELIVERABLE_HEAD_COLUMNS",
    "OUTBOX_HEAD_COLUMNS",
    "DeliverableHead",
    "OutboxHead",
    "SourceHead",
]


@dataclass(frozen=True, slots=True)
class DeliverableHead:
    """What delivery reads of a deliverable (a plain row, not an ORM object)."""

    nip: str
    kind: DeliveryKind
    assessor_nip: str
    assessor_role: str | None
    status: RecordStatus
    reason: str | None
    reason_code: str | None
    payload_hash: str | None
    delivered_hash: str | None
    skp_id: str | None
    skp_version: int | None


@dataclass(frozen=True, slots=True)
class OutboxHead:
    """An unsent request as delivery reads it (a plain row): the outbox entry's columns that
    sending needs, and the school of its deliverable."""

    id: int
    nip: str
    period: str
    kind: DeliveryKind
    action: OutboxAction
    body: str  # canonical JSON, as sent
    payload_hash: str
    idempotency_key: str
    if_match: int | None
    mapping_version: str
    npsn: str

    @classmethod
    def of(cls, entry: OutboxEntry, npsn: str) -> OutboxHead:
        """The head of an entry just written (its id assigned)."""
        return cls(**{name: getattr(entry, name) for name in OUTBOX_HEAD_COLUMNS}, npsn=npsn)


# The sync_record columns of a head, in its fields' order (a row is the head's fields).
DELIVERABLE_HEAD_COLUMNS = tuple(f.name for f in fields(DeliverableHead))

# The outbox columns of a head, in its fields' order (its ``npsn`` is the deliverable's).
OUTBOX_HEAD_COLUMNS = tuple(f.name for f in fields(OutboxHead) if f.name != "npsn")


@dataclass(frozen=True, slots=True)
class SourceHead:
    """A stored source record without its body."""

    id: str
    nip: str
    updated_at: dt.datetime
    cancelled: bool
    status: SourceStatus
    seen_at: dt.datetime
