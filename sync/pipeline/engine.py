"""The engine: one ``run`` of a period, from pull to delivery.

    pull (per school, incremental)  -> for each page, in ONE transaction:
        store source records, validate (quarantine), choose each teacher's effective record,
        map + plan, write the outbox, move the cursor
    deliver the outbox (penilai SKPs first, then other SKPs, then penilaian)

A crash between pages loses nothing: a page's records, decisions and cursor commit together,
and unsent outbox entries are delivered by the next run with the same idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from connectors.pmm import PmmClient
from mappings.model import PerformanceRecord, Period, PeriodKind
from mappings.periods import find_period
from mappings.source import Rejection, read_record
from mappings.versions import MappingVersion
from state.models import (
    DeliveryKind,
    OutboxEntry,
    RecordStatus,
    Run,
    SourceRecord,
    SourceStatus,
    SyncRecord,
)
from state.store import StateStore
from sync.advice import advice
from sync.delivery.deliver import Deliverer, DeliveryResult, orphaned
from sync.hashing import content_hash, idempotency_key
from sync.pipeline.audit import Audit, NullAudit
from sync.pipeline.periods import fetch_listing
from sync.pipeline.plan import (
    Decision,
    Known,
    closed_by_operator,
    effective_record,
    plan_cancellation,
    plan_record,
)

__all__ = ["Engine", "MappingChoice", "MappingChoiceError", "ReplayOutcome", "RunSummary"]

log = structlog.get_logger("ekinerja_sync.engine")

Clock = Callable[[], dt.datetime]

# How long a worker's lease on reading a school lasts without renewal (renewed every page).
_LEASE = dt.timedelta(minutes=5)
_QUEUED = {RecordStatus.PENDING, RecordStatus.HELD, RecordStatus.WAITING}
# Records read before the planner's statistics are first refreshed during a pull.
_ANALYZE_AFTER = 2_000


@dataclass
class _NewRows:
    """Rows a planning pass creates, inserted together at its end."""

    records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)


_NIP_GONE = "not in PMM under this NIP any more (NIP corrected?)"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class MappingChoiceError(Exception):
    """The mapping version set for a period kind cannot map that kind; names the setting."""


@dataclass(frozen=True)
class MappingChoice:
    """The mapping version of each period kind, and the setting that chose it (for errors)."""

    versions: dict[PeriodKind, MappingVersion]
    settings: dict[PeriodKind, str] = field(default_factory=dict)

    @classmethod
    def single(cls, mapping: MappingVersion) -> MappingChoice:
        """One version for every kind it can map (tests, benchmarks)."""
        return cls({kind: mapping for kind in mapping.period_kinds})

    def for_period(self, period: Period) -> MappingVersion:
        setting = self.settings.get(period.kind, f"[sync] mapping_versions.{period.kind.value}")
        mapping = self.versions.get(period.kind)
        if mapping is None or not mapping.maps(period.kind):
            chosen = f" = {mapping.name!r} (it maps {mapping.kinds_label})" if mapping else ""
            raise MappingChoiceError(
                f"period {period.code} is {period.kind.value}, and {setting}{chosen} cannot map "
                f"{period.kind.value} periods: set {setting} to a version that does "
                "(`ekinerja-sync mappings list`)"
            )
        return mapping


@dataclass
class RunSummary:
    """What one run did, for the summary table and the run row."""

    run_id: str
    period: str
    dry_run: bool
    kind: str = ""  # semester or tahunan
    mapping_version: str = ""
    pulled: int = 0
    # (kind, outcome) -> count; outcomes: new, updated, unchanged, waiting, held, failed,
    # locked, cancelled, pending
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: int = 0
    requests_sent: int = 0
    # Why requests stayed unsent because e-Kinerja could not be reached (None: it could).
    target_unreachable: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "period": self.period,
            "kind": self.kind,
            "mapping_version": self.mapping_version,
            "dry_run": self.dry_run,
            "pulled": self.pulled,
            "quarantined": self.quarantined,
            "requests_sent": self.requests_sent,
            "outcomes": {f"{k}.{o}": n for (k, o), n in sorted(self.outcomes.items())},
            "target_unreachable": self.target_unreachable,
        }

    def count(self, kind: str, outcome: str) -> int:
        return self.outcomes[(kind, outcome)]


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    nip: str
    period: str
    npsn: str
    kind: DeliveryKind
    before: RecordStatus
    after: RecordStatus | None
    reason: str | None


def _known(row: SyncRecord | None, source_seen_at: dt.datetime | None = None) -> Known | None:
    if row is None:
        return None
    return Known(
        row.status,
        row.payload_hash,
        row.delivered_hash,
        row.skp_id,
        row.skp_version,
        closed_by_operator(row.reason_code, row.changed_at, source_seen_at),
    )


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Engine:
    """Runs the sync of a period. Built by ``sync.bootstrap``; everything is passed in."""

    def __init__(
        self,
        *,
        store: StateStore,
        source: PmmClient,
        deliverer: Deliverer,
        mappings: MappingChoice,
        audit: Audit | None = None,
        batch_size: int = 500,
        clock: Clock = _utcnow,
    ) -> None:
        self.store = store
        self.source = source
        self.deliverer = deliverer
        self.mappings = mappings
        self.audit: Audit = audit or NullAudit()
        self.batch_size = batch_size
        self.clock = clock

    # -- the run -------------------------------------------------------------------------

    def run(
        self,
        period: str,
        *,
        schools: Sequence[str] = (),
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> RunSummary:
        run_id = str(uuid.uuid4())
        # The period as the source lists it (its kind above all); a dry run keeps nothing.
        listing = fetch_listing(self.source, None if dry_run else self.store, clock=self.clock)
        listed = find_period(listing, period)
        mapping = self.mappings.for_period(listed.period)
        summary = RunSummary(
            run_id=run_id,
            period=period,
            dry_run=dry_run,
            kind=listed.period.kind.value,
            mapping_version=mapping.name,
        )
        bound = log.bind(run_id=run_id, period=period)
        started = self.clock()
        npsns = list(schools) or [s["npsn"] for s in self.source.schools()]
        bound.info(
            "run.start",
            schools=len(npsns),
            dry_run=dry_run,
            kind=summary.kind,
            mapping=mapping.name,
        )
        if dry_run:
            # Everything in one transaction that is rolled back at the end, and the would-be
            # requests handed to nobody: a dry run writes nothing and sends nothing.
            with self.store.unit_of_work(commit=False) as session:
                for npsn in npsns:
                    self._pull_school(period, mapping, npsn, summary, session, progress)
                self._remap(period, mapping, npsns, session)
                for entry, _record in self.store.pending_outbox(session, period, npsns):
                    summary.outcomes[(entry.kind.value, "would_send")] += 1
                self._tally(session, period, npsns, summary)
        else:
            analyzed_at = 0
            for npsn in npsns:
                self._pull_school(period, mapping, npsn, summary, None, progress)
                # A first sync grows the tables from empty: the planner's statistics are
                # refreshed each time what was read doubles (a handful of times in all).
                if summary.pulled >= max(2 * analyzed_at, _ANALYZE_AFTER):
                    self.store.refresh_statistics()
                    analyzed_at = summary.pulled
            self._remap(period, mapping, npsns, None)
            if summary.pulled > analyzed_at:
                self.store.refresh_statistics()
            self.deliver(period, npsns, summary, progress)
            with self.store.unit_of_work() as session:
                self._tally(session, period, npsns, summary)
            self.store.save_run(
                Run(
                    id=run_id,
                    period=period,
                    started_at=started,
                    finished_at=self.clock(),
                    # A run cut short by a stop is not a successful sync of the period.
                    outcome="stopped"
                    if self.deliverer.stop.is_set()
                    else "unreachable"  # not a success: e-Kinerja was not reached
                    if summary.target_unreachable
                    else "ok",
                    summary=summary.as_dict(),
                )
            )
        bound.info("run.end", **summary.as_dict())
        return summary

    def retry_due(self, period: str, *, schools: Sequence[str] = ()) -> RunSummary:
        """Send what is still unsent for the period (held records, interrupted sends),
        without reading the source: the daemon's "due retries" job."""
        summary = RunSummary(run_id=str(uuid.uuid4()), period=period, dry_run=False)
        self.deliver(period, list(schools), summary)
        return summary

    # -- pull, validate, map, plan -------------------------------------------------------

    def _pull_school(
        self,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        summary: RunSummary,
        session: Session | None,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        if session is not None:  # a dry run: one transaction, rolled back; no lease needed
            since = self.store.cursor(session, period, npsn)
            pages = self.source.performance_records(period, npsn=npsn, updated_since=since)
            for batch in _batches(pages, self.batch_size):
                self._ingest(session, period, mapping, npsn, batch, summary)
                summary.pulled += len(batch)
                if progress is not None:
                    progress("pull", len(batch))
            return
        worker = self.deliverer.worker
        if not self.store.lease_school(
            period, npsn, worker, now=self.clock(), lease=_LEASE, orphaned=orphaned
        ):
            log.info("pull.skipped", period=period, npsn=npsn, reason="another worker reads it")
            return
        try:
            with self.store.unit_of_work() as s:
                since = self.store.cursor(s, period, npsn)
            pages = self.source.performance_records(period, npsn=npsn, updated_since=since)
            for batch in _batches(pages, self.batch_size):
                self._ingest_page(period, mapping, npsn, batch, summary)
                self.store.lease_school(period, npsn, worker, now=self.clock(), lease=_LEASE)
                if progress is not None:
                    progress("pull", len(batch))
        finally:
            self.store.release_school(period, npsn, worker)

    def _remap(
        self,
        period: str,
        mapping: MappingVersion,
        npsns: Sequence[str],
        session: Session | None,
    ) -> None:
        """After a switch of the active mapping version, plan again every teacher whose
        payload an older version made: changed payloads go as updates (or are reported as
        locked), unchanged ones stay."""

        def remap(s: Session) -> int:
            nips = self.store.nips_mapped_otherwise(s, period, npsns, mapping.name)
            for start in range(0, len(nips), self.batch_size):
                self._plan(s, period, mapping, set(nips[start : start + self.batch_size]))
            return len(nips)

        if session is not None:
            remapped = remap(session)
        else:
            with self.store.unit_of_work() as s:
                remapped = remap(s)
        if remapped:
            log.info("run.remapped", period=period, mapping=mapping.name, teachers=remapped)

    def _ingest_page(
        self,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        batch: list[dict[str, Any]],
        summary: RunSummary,
    ) -> None:
        """One page in one transaction; once more if another worker's commit collided
        with ours (a teacher in two schools read by two workers at once)."""
        for attempt in (1, 2):
            try:
                with self.store.unit_of_work() as s:
                    self._ingest(s, period, mapping, npsn, batch, summary)
            except IntegrityError:
                if attempt == 2:
                    raise
                log.info("ingest.collision", period=period, npsn=npsn)
                continue
            summary.pulled += len(batch)
            return

    def _ingest(
        self,
        session: Session,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        batch: list[dict[str, Any]],
        summary: RunSummary,
    ) -> None:
        """Store one page, decide for every teacher it touches, move the cursor: one unit."""
        now = self.clock()
        stored = self.store.source_records(session, {str(raw.get("id")) for raw in batch})
        touched: set[str] = set()
        newest: dt.datetime | None = None
        for raw in batch:
            digest = content_hash(raw)
            checked = read_record(raw)
            if isinstance(checked, PerformanceRecord):
                newest = max(filter(None, (newest, checked.updated_at)))
                if checked.period.code != period:
                    continue  # not asked for: the source broke its contract; ignore the row
            existing = stored.get(checked.source_id)
            if existing is not None and existing.content_hash == digest:
                continue
            if existing is not None and existing.nip:
                touched.add(existing.nip)  # the NIP may have been corrected: re-plan the old one
            row = self._source_row(raw, checked, digest, existing, period, now)
            if row is None:
                continue
            session.add(row)
            stored[row.id] = row
            if row.status is SourceStatus.QUARANTINED:
                log.warning(
                    "record.quarantined",
                    run_id=summary.run_id,
                    period=period,
                    npsn=row.npsn,
                    nip=row.nip,
                    source_id=row.id,
                    reason=row.reason,
                )
            if row.nip:
                touched.add(row.nip)
        session.flush()
        self._plan(session, period, mapping, touched)
        if newest is not None:
            self.store.set_cursor(session, period, npsn, newest)

    @staticmethod
    def _source_row(
        raw: dict[str, Any],
        checked: PerformanceRecord | Rejection,
        digest: str,
        existing: SourceRecord | None,
        period: str,
        now: dt.datetime,
    ) -> SourceRecord | None:
        if isinstance(checked, Rejection):
            if checked.source_id == "?":
                log.error("record.unidentifiable", period=period, reason=checked.reason)
                return None
            updated = raw.get("diperbarui_pada")
            try:
                updated_at = dt.datetime.fromisoformat(str(updated))
                if updated_at.tzinfo is None:
                    raise ValueError
            except ValueError:
                updated_at = now
            values: dict[str, Any] = {
                "period": checked.period or period,
                "npsn": (checked.npsn or "")[:64],
                "nip": (checked.nip or "")[:64],
                "schema_version": raw.get("versi_skema")
                if isinstance(raw.get("versi_skema"), int)
                else None,
                "updated_at": updated_at,
                "cancelled": raw.get("dibatalkan") is True,
                "status": SourceStatus.QUARANTINED,
                "reason_code": checked.code,
                "reason": checked.reason,
            }
        else:
            values = {
                "period": checked.period.code,
                "npsn": checked.school.npsn,
                "nip": checked.employee.nip,
                "schema_version": checked.schema_version,
                "updated_at": checked.updated_at,
                "cancelled": checked.cancelled,
                "status": SourceStatus.VALID,
                "reason_code": None,
                "reason": None,
            }
        if existing is None:
            return SourceRecord(
                id=checked.source_id, content_hash=digest, body=raw, seen_at=now, **values
            )
        for key, value in values.items():
            setattr(existing, key, value)
        existing.content_hash, existing.body, existing.seen_at = digest, raw, now
        return existing

    def _plan(self, session: Session, period: str, mapping: MappingVersion, nips: set[str]) -> None:
        sources = self.store.source_records_of(session, period, nips)
        current = self.store.sync_records(session, period, nips)
        new = _NewRows()
        for nip in sorted(nips):
            rows = sources.get(nip)
            skp_row = current.get((nip, DeliveryKind.SKP))
            assessment_row = current.get((nip, DeliveryKind.ASSESSMENT))
            if not rows:
                # No source record carries this NIP any more (corrected in PMM).
                gone = plan_cancellation(_known(skp_row), _known(assessment_row), reason=_NIP_GONE)
                for decision, row in zip(gone, (skp_row, assessment_row), strict=True):
                    self._apply(session, period, mapping, nip, None, decision, row, new)
                continue
            effective, all_cancelled = effective_record(rows)
            if effective.status is SourceStatus.QUARANTINED and not all_cancelled:
                continue  # the record that counts is bad data: it waits in quarantine
            checked = read_record(effective.body)
            record = checked if isinstance(checked, PerformanceRecord) else None
            seen = max(r.seen_at for r in rows)  # the newest version PMM served of this NIP
            if all_cancelled:
                decisions = plan_cancellation(_known(skp_row, seen), _known(assessment_row, seen))
            else:
                assert record is not None  # a valid, live effective record
                try:
                    decisions = plan_record(
                        record, _known(skp_row, seen), _known(assessment_row, seen), mapping
                    )
                except ValueError as exc:
                    # The mapping refused what validation let through: a gap in validation,
                    # kept from the batch like any bad record, with the mapping's words.
                    effective.status = SourceStatus.QUARANTINED
                    effective.reason_code = "mapping_failed"
                    effective.reason = (
                        f"mapping {mapping.name} cannot map this record: {exc}. "
                        f"What to do: {advice('mapping_failed')}"
                    )[:2000]
                    session.add(effective)
                    log.error("record.mapping_failed", period=period, nip=nip, error=str(exc))
                    continue
            for decision, row in zip(decisions, (skp_row, assessment_row), strict=True):
                self._apply(session, period, mapping, nip, record, decision, row, new)
        # New deliverables and requests go in one multi-row INSERT each (ORM bulk insert):
        # an ORM object per row was most of the ingest's time.
        if new.records:
            session.execute(insert(SyncRecord), new.records)
        if new.requests:
            session.execute(insert(OutboxEntry), new.requests)

    def _apply(
        self,
        session: Session,
        period: str,
        mapping: MappingVersion,
        nip: str,
        record: PerformanceRecord | None,
        decision: Decision,
        row: SyncRecord | None,
        new: _NewRows,
    ) -> None:
        if decision.keep:
            if row is not None and record is not None:
                row.npsn, row.source_id = record.school.npsn, record.source_id
                row.assessor_nip = record.assessor.nip
                if decision.payload_hash is not None and decision.payload_hash == row.payload_hash:
                    row.mapping_version = mapping.name  # it makes the same payload
                session.add(row)
            return
        now = self.clock()
        mapped = (
            {"payload_hash": decision.payload_hash, "mapping_version": mapping.name}
            if decision.payload_hash is not None
            else {}
        )
        if row is None:
            if record is None:
                return
            new.records.append(
                {
                    "nip": nip,
                    "period": period,
                    "kind": decision.kind,
                    "npsn": record.school.npsn,
                    "source_id": record.source_id,
                    "assessor_nip": record.assessor.nip,
                    "status": decision.status,
                    "reason": decision.reason,
                    "reason_code": None,
                    "payload_hash": None,
                    "mapping_version": None,
                    "changed_at": now,
                    **mapped,
                }
            )
        else:
            # Only these statuses can have an unsent outbox entry (held and waiting ones
            # stay queued): skip the supersede query for the rest.
            may_have_pending = row.status in _QUEUED
            if record is not None:
                row.npsn, row.source_id = record.school.npsn, record.source_id
                row.assessor_nip = record.assessor.nip
            row.status, row.reason, row.reason_code = decision.status, decision.reason, None
            for key, value in mapped.items():
                setattr(row, key, value)
            row.changed_at = now
            session.add(row)
            if may_have_pending:  # any unsent request for this deliverable is now out of date
                self.store.supersede_pending(session, nip, period, decision.kind)
        if decision.send is not None:
            send = decision.send
            new.requests.append(
                {
                    "nip": nip,
                    "period": period,
                    "kind": decision.kind,
                    "action": send.action,
                    "body": send.body_json,
                    "payload_hash": send.payload_hash,
                    "idempotency_key": idempotency_key(
                        send.action.value, nip, period, send.body_json, send.if_match
                    ),
                    "if_match": send.if_match,
                    "mapping_version": mapping.name,
                    "created_at": now,
                }
            )

    # -- replay --------------------------------------------------------------------------

    def replay(
        self,
        targets: Sequence[SyncRecord],
        *,
        actor: str,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[ReplayOutcome]:
        """Replay dead records: read their schools' source records again (the fix is usually
        made in PMM), re-plan, and send through the normal pipeline.

        A record whose source did not change is sent again as it is (same idempotency key
        when the body is the same: the target evaluates a refused request afresh).
        """
        run_id = str(uuid.uuid4())
        before = {(r.nip, r.period, r.kind): r for r in targets}
        if dry_run:
            return [
                ReplayOutcome(r.nip, r.period, r.npsn, r.kind, r.status, None, "would replay")
                for r in targets
            ]
        by_period: dict[str, set[str]] = {}
        for r in targets:
            by_period.setdefault(r.period, set()).add(r.npsn)
        outcomes: list[ReplayOutcome] = []
        for period, npsns in sorted(by_period.items()):
            summary = RunSummary(run_id=run_id, period=period, dry_run=False)
            mapping = self.mappings.for_period(Period.parse(period))
            for npsn in sorted(npsns):
                self._pull_school(period, mapping, npsn, summary, None, progress)
            chosen = [r for r in targets if r.period == period]
            with self.store.unit_of_work() as session:
                for r in chosen:
                    row = session.get(SyncRecord, (r.nip, r.period, r.kind))
                    if row is not None and row.status is RecordStatus.FAILED:
                        # Forget the refusal so planning decides afresh (source unchanged).
                        row.status, row.payload_hash = RecordStatus.WAITING, None
                        session.add(row)
                    self.audit.operator_action(
                        session,
                        actor=actor,
                        action="replay",
                        period=r.period,
                        nip=r.nip,
                        npsn=r.npsn,
                        kind=r.kind.value,
                        detail=f"was {r.status.value}: {r.reason or ''}"[:2000],
                        run_id=run_id,
                    )
                session.flush()
                self._plan(session, period, mapping, {r.nip for r in chosen})
            # The normal pipeline: whatever the schools now have pending goes out.
            self.deliverer.deliver(period, sorted(npsns), run_id=run_id, progress=progress)
            with self.store.unit_of_work() as session:
                for r in chosen:
                    after = session.get(SyncRecord, (r.nip, r.period, r.kind))
                    assert after is not None  # deliverables are never deleted
                    reason = after.reason
                    moved = self.store.source_records(session, [after.source_id]).get(
                        after.source_id
                    )
                    if moved is not None and moved.nip != r.nip:
                        now = session.get(SyncRecord, (moved.nip, r.period, r.kind))
                        reason = f"{reason}; its PMM record now carries NIP {moved.nip}" + (
                            f" ({now.status.value})" if now is not None else ""
                        )
                    outcomes.append(
                        ReplayOutcome(
                            r.nip,
                            r.period,
                            after.npsn,
                            r.kind,
                            before[(r.nip, r.period, r.kind)].status,
                            after.status,
                            reason,
                        )
                    )
        return outcomes

    # -- deliver -------------------------------------------------------------------------

    def deliver(
        self,
        period: str,
        npsns: Sequence[str],
        summary: RunSummary,
        progress: Callable[[str, int], None] | None = None,
    ) -> list[DeliveryResult]:
        """Send the unsent requests of the period: penilai SKPs, other SKPs, penilaian."""
        counts: Counter[tuple[str, str]] = Counter()
        results = self.deliverer.deliver(
            period, npsns, run_id=summary.run_id, counts=counts, progress=progress
        )
        summary.outcomes.update(counts)
        summary.target_unreachable = summary.target_unreachable or self.deliverer.outage
        # Delivered ones are in ``counts``; of the rest, all but the waiting were sent.
        summary.requests_sent += sum(counts.values()) + sum(
            1 for r in results if r.status is not RecordStatus.WAITING
        )
        return results

    # -- summary -------------------------------------------------------------------------

    def _tally(
        self, session: Session, period: str, npsns: Sequence[str], summary: RunSummary
    ) -> None:
        """Fill the summary from the state of the period after the run."""
        counts = Counter(self.store.kind_status_counts(session, period, npsns))
        for kind in (DeliveryKind.SKP.value, DeliveryKind.ASSESSMENT.value):
            new = summary.outcomes.pop((kind, "sent_new"), 0)
            updated = summary.outcomes.pop((kind, "sent_updated"), 0)
            delivered = counts[(kind, RecordStatus.DELIVERED.value)]
            summary.outcomes[(kind, "new")] = new
            summary.outcomes[(kind, "updated")] = updated
            summary.outcomes[(kind, "unchanged")] = max(delivered - new - updated, 0)
            for status in ("waiting", "pending", "held", "failed", "locked"):
                summary.outcomes[(kind, status)] = counts[(kind, status)]
            summary.outcomes[(kind, "cancelled")] = (
                counts[(kind, "cancelled")] + counts[(kind, "cancelled_after_delivery")]
            )
        summary.quarantined = self.store.quarantined_count(session, period, npsns)
