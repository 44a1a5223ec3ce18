"""The state store's tables (SQLModel).

- ``SourceRecord``: the last version of every PMM record read, with its validation outcome
  (``quarantined`` and why). Kept so the effective record of a teacher can be chosen across
  schools (rotation), and so a quarantined record is validated again when it changes.
- ``SyncRecord``: one deliverable per (nip, period, kind), kind ``skp`` or ``assessment``:
  what should be on the target (``payload_hash``), what is (``delivered_hash``), and the status.
- ``OutboxEntry``: a request to send, written in the same transaction as the decision to send.
- ``Cursor``: the incremental read position per (period, npsn).
- ``Run``: one ``run`` of the engine and its summary.
- ``ListedPeriod``: the periods the source listed when last asked (kind, dates, deadline), so
  the commands that do not call the source (status, the deadline view, the console) know a
  year from a semester and the period's ``batas_penilaian``.
- ``RateSlot``: the send schedule of a rate limit shared by every worker on the database
  (``sync.delivery.ratelimit``): the next free send slot and the rate adapted to 429s.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, Text
from sqlmodel import Field, SQLModel

from state.types import UTCDateTime

__all__ = [
    "DISCARDED",
    "Cursor",
    "DeliveryKind",
    "ListedPeriod",
    "OutboxAction",
    "OutboxEntry",
    "OutboxState",
    "RateSlot",
    "RecordStatus",
    "Run",
    "SchoolLease",
    "SourceRecord",
    "SourceStatus",
    "SyncRecord",
]

# Constraint names are the same on SQLite and PostgreSQL (and so in migrations).
SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class SourceStatus(StrEnum):
    VALID = "valid"
    QUARANTINED = "quarantined"


class DeliveryKind(StrEnum):
    SKP = "skp"
    ASSESSMENT = "assessment"


class RecordStatus(StrEnum):
    WAITING = "waiting"  # not ready: plan not approved, penilaian not final, SKP not there yet
    PENDING = "pending"  # in the outbox, to be sent
    HELD = "held"  # the target said "later" (its penilai has no SKP yet)
    DELIVERED = "delivered"
    FAILED = "failed"  # dead: the target refused it for good; replay after a fix
    LOCKED = "locked"  # changed after the SKP was locked: reported for manual action
    CANCELLED = "cancelled"  # cancelled in PMM before delivery: not sent
    CANCELLED_AFTER_DELIVERY = "cancelled_after_delivery"  # reported: the target has no delete


# ``SyncRecord.reason_code`` of a deliverable an operator closed by hand (``discard``): it is
# planned again only when PMM serves a new version of its record.
DISCARDED = "DISCARDED"


class OutboxAction(StrEnum):
    CREATE_SKP = "create_skp"
    UPDATE_SKP = "update_skp"
    CREATE_ASSESSMENT = "create_assessment"


class OutboxState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"
    SUPERSEDED = "superseded"  # a newer decision for the same record replaced it unsent


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SourceRecord(SQLModel, table=True):
    __tablename__ = "source_record"
    __table_args__ = (Index("ix_source_record_period_nip", "period", "nip"),)

    id: str = Field(primary_key=True, max_length=200)
    period: str = Field(max_length=16)
    npsn: str = Field(default="", max_length=64, index=True)
    nip: str = Field(default="", max_length=64)
    schema_version: int | None = None
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    cancelled: bool = False
    content_hash: str = Field(max_length=64)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: SourceStatus = Field(default=SourceStatus.VALID, max_length=16)
    reason_code: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    seen_at: dt.datetime = Field(default_factory=_now, sa_column=Column(UTCDateTime()))
    # What is odd in a valid record but not wrong (``PerformanceRecord.notes``, joined): it is
    # sent, and ``status`` shows this to the school.
    note: str | None = Field(default=None, sa_column=Column(Text))


class SyncRecord(SQLModel, table=True):
    __tablename__ = "sync_record"
    __table_args__ = (
        Index("ix_sync_record_period_npsn", "period", "npsn"),
        # Is this teacher some record's penilai (delivery's phases): an index lookup per
        # outbox entry, not a scan of the period's deliverables per entry.
        Index("ix_sync_record_period_assessor", "period", "assessor_nip"),
    )

    nip: str = Field(primary_key=True, max_length=18)
    period: str = Field(primary_key=True, max_length=16)
    kind: DeliveryKind = Field(primary_key=True, max_length=16)
    npsn: str = Field(max_length=8)
    source_id: str = Field(max_length=200)
    assessor_nip: str = Field(max_length=18)
    # The penilai's role as PMM gives it (``mappings.model.Role``: principal, supervisor,
    # head_of_office); None for rows planned before it was kept.
    assessor_role: str | None = Field(default=None, max_length=16)
    status: RecordStatus = Field(max_length=32)
    reason_code: str | None = Field(default=None, max_length=64)  # e.g. NIP_TIDAK_DITEMUKAN
    reason: str | None = Field(default=None, sa_column=Column(Text))
    mapping_version: str | None = Field(default=None, max_length=32)
    payload_hash: str | None = Field(default=None, max_length=64)
    delivered_hash: str | None = Field(default=None, max_length=64)
    delivered_mapping_version: str | None = Field(default=None, max_length=32)
    skp_id: str | None = Field(default=None, max_length=128)
    skp_version: int | None = None
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    changed_at: dt.datetime = Field(default_factory=_now, sa_column=Column(UTCDateTime()))


class OutboxEntry(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # Delivery's page of unsent requests (state, period, kind, after an id, by id): an
        # index range in id order, not a sort of every unsent request per page. Its prefix
        # (state, period) serves the other queries of unsent requests.
        Index("ix_outbox_pending_page", "state", "period", "kind", "id"),
        # Superseding the unsent requests of one deliverable: a lookup, not a scan.
        Index("ix_outbox_nip_period_kind", "nip", "period", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    nip: str = Field(max_length=18)
    period: str = Field(max_length=16)
    kind: DeliveryKind = Field(max_length=16)
    action: OutboxAction = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON, as sent
    payload_hash: str = Field(max_length=64)
    idempotency_key: str = Field(max_length=128)
    if_match: int | None = None
    mapping_version: str = Field(max_length=32)
    state: OutboxState = Field(default=OutboxState.PENDING, max_length=16)
    attempts: int = 0
    last_status: int | None = None
    last_answer: str | None = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=_now, sa_column=Column(UTCDateTime()))
    finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # A worker's claim on the entry while it sends it; a dead worker's claim runs out.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class SchoolLease(SQLModel, table=True):
    """A worker's lease on reading one school's records of a period (several daemons)."""

    __tablename__ = "school_lease"

    period: str = Field(primary_key=True, max_length=16)
    npsn: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=64)
    until: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Cursor(SQLModel, table=True):
    __tablename__ = "cursor"

    period: str = Field(primary_key=True, max_length=16)
    npsn: str = Field(primary_key=True, max_length=64)
    updated_since: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ListedPeriod(SQLModel, table=True):
    """A period as the source listed it at ``listed_at`` (``GET /api/v1/periode``)."""

    __tablename__ = "period"

    code: str = Field(primary_key=True, max_length=16)
    kind: str = Field(max_length=16)  # "semester" or "tahunan", as the source says (jenis)
    starts_on: dt.date
    ends_on: dt.date
    deadline: dt.date  # batas_penilaian
    running: bool  # status "berjalan"
    listed_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The mapping version the period was first planned with when the config names none for
    # its kind; kept, so a later release's default never remaps what was delivered.
    mapping_version: str | None = Field(default=None, max_length=32)
    mapping_chosen_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class Run(SQLModel, table=True):
    __tablename__ = "run"

    id: str = Field(primary_key=True, max_length=36)
    period: str = Field(max_length=16)
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = Field(default=None, max_length=32)
    summary: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class RateSlot(SQLModel, table=True):
    """The send schedule of one rate limit (``name``: ``target``), shared by every worker
    process and thread on this database: one row, updated atomically per request.

    Times are seconds since the epoch on the database's clock (PostgreSQL), so workers on
    several hosts agree on them; ``rate`` is the rate adapted to 429s (None: the configured
    one); ``cut_at`` is when it was last cut (one cut per burst of 429s)."""

    __tablename__ = "rate_slot"

    name: str = Field(primary_key=True, max_length=32)
    next_at: float
    rate: float | None = None
    cut_at: float | None = None
