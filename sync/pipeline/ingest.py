"""The ingester: pull a school's or the whole period's pages (under the lease, from the
cursor), store each page, validate each record once (a bad one quarantined with a reason),
hand the valid ones to the planner and the plan to the outbox writer, and move the cursor,
all of a page in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from connectors.pmm import PmmClient
from mappings.model import PerformanceRecord
from mappings.source import Rejection, read_record
from mappings.versions import MappingVersion
from state.models import (
    SourceRecord,
    SourceStatus,
)
from state.store import PERIOD_WIDE, StateStore, insert_rows, update_rows
from sync.hashing import content_hash
from sync.pipeline.outbox import OutboxWriter
from sync.pipeline.planner import Planner
from sync.pipeline.summary import RunSummary
from sync.workers import orphaned

__all__ = ["Ingester"]

log = structlog.get_logger("ekinerja_sync.engine")

Clock = Callable[[], dt.datetime]
Progress = Callable[[str, int], None]

# How long a worker's lease on reading a school lasts without renewal (renewed every page).
_LEASE = dt.timedelta(minutes=5)


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Ingester:
    """Reads the source into the store: each page stored, each record validated once and,
    if valid, planned (``planner``) and written to the outbox (``outbox_writer``) as read.

    ``worker``: who holds the leases this ingester takes (``sync.workers.worker_id``); the
    deliverer claims outbox entries under the same name.
    """

    def __init__(
        self,
        *,
        store: StateStore,
        source: PmmClient,
        planner: Planner,
        outbox_writer: OutboxWriter,
        worker: str,
        batch_size: int = 500,
        clock: Clock = _utcnow,
    ) -> None:
        self.store = store
        self.source = source
        self.planner = planner
        self.outbox_writer = outbox_writer
        self.worker = worker
        self.batch_size = batch_size
        self.clock = clock

    def pull_school(
        self,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        summary: RunSummary,
        progress: Progress | None = None,
        *,
        session: Session | None = None,
    ) -> None:
        """The school's records changed since its cursor, under its lease (another worker
        holding it reads them: skipped). ``session``: a dry run's, rolled back at its end;
        no lease is taken."""
        if session is not None:  # a dry run: one transaction, rolled back; no lease needed
            since = self.store.cursors.position(session, period, npsn)
            pages = self.source.performance_records(period, npsn=npsn, updated_since=since)
            for batch in _batches(pages, self.batch_size):
                self._ingest(session, period, mapping, npsn, batch, summary)
                summary.pulled += len(batch)
                if progress is not None:
                    progress("pull", len(batch))
            return
        if not self._leased_pull(period, mapping, npsn, summary, progress):
            log.info("pull.skipped", period=period, npsn=npsn, reason="another worker reads it")

    def pull_period(
        self,
        period: str,
        mapping: MappingVersion,
        summary: RunSummary,
        progress: Progress | None,
        after_page: Callable[[], None],
    ) -> bool:
        """Every school of the period in one incremental walk (``diperbarui_sejak`` without
        ``npsn``), from the period-wide cursor, under the period-wide lease (another worker
        holding it walks it: this one goes on to delivery; returns False). Each page also
        moves the cursor of every school it carries, so a later ``--npsn`` run of one school
        reads on from there (the walk is in order of ``diperbarui_pada``, as a school's is)."""
        if not self._leased_pull(period, mapping, PERIOD_WIDE, summary, progress, after_page):
            log.info("pull.skipped", period=period, reason="another worker walks the period")
            return False
        return True

    def _leased_pull(
        self,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        summary: RunSummary,
        progress: Progress | None,
        after_page: Callable[[], None] | None = None,
    ) -> bool:
        """Lease, cursor, pull, release: the pages of school ``npsn`` (``PERIOD_WIDE``: of
        the whole period's walk) from its cursor, under its lease. The lease and the cursor
        in one transaction; each page renews the lease in its own; the release is the last:
        2 + pages transactions. False, having read nothing: another worker holds the lease."""
        worker = self.worker
        with self.store.unit_of_work() as s:
            leased = self.store.claims.take_school(
                s, period, npsn, worker, now=self.clock(), lease=_LEASE, orphaned=orphaned
            )
            since = self.store.cursors.position(s, period, npsn) if leased else None
        if not leased:
            return False
        try:
            pages = self.source.performance_records(
                period, npsn=None if npsn == PERIOD_WIDE else npsn, updated_since=since
            )
            for batch in _batches(pages, self.batch_size):
                self._ingest_page(period, mapping, npsn, batch, summary, worker)
                if progress is not None:
                    progress("pull", len(batch))
                if after_page is not None:
                    after_page()
        finally:
            self.store.claims.release_school(period, npsn, worker)
        return True

    def _ingest_page(
        self,
        period: str,
        mapping: MappingVersion,
        npsn: str,
        batch: list[dict[str, Any]],
        summary: RunSummary,
        worker: str,
    ) -> None:
        """One page in one transaction, with the renewal of the school's lease; once more
        if another worker's commit collided with ours (a teacher in two schools read by two
        workers at once)."""
        for attempt in (1, 2):
            try:
                with self.store.unit_of_work() as s:
                    self._ingest(s, period, mapping, npsn, batch, summary)
                    until = self.clock() + _LEASE
                    self.store.claims.renew_school(s, period, npsn, worker, until=until)
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
        # What is stored of these ids: (content_hash, nip); rows are written with one
        # multi-row INSERT (new) and one UPDATE by primary key (changed) per page.
        stored = self.store.sources.hashes(session, {str(raw.get("id")) for raw in batch})
        fresh: dict[str, dict[str, Any]] = {}
        changed: dict[str, dict[str, Any]] = {}
        # Each record is validated once: every valid one of the page is handed to planning as
        # read, and the planner reads no stored body of it again.
        validated: dict[str, PerformanceRecord] = {}
        touched: set[str] = set()
        newest: dt.datetime | None = None
        newest_of: dict[str, dt.datetime] = {}  # per school, for the period-wide walk
        for raw in batch:
            digest = content_hash(raw)
            checked = read_record(raw)
            if isinstance(checked, PerformanceRecord):
                newest = max(filter(None, (newest, checked.updated_at)))
                school = checked.school.npsn
                if school not in newest_of or newest_of[school] < checked.updated_at:
                    newest_of[school] = checked.updated_at
                if checked.period.code != period:
                    continue  # not asked for: the source broke its contract; ignore the row
            existing = stored.get(checked.source_id)
            if existing is not None and existing[0] == digest:
                if isinstance(checked, PerformanceRecord):
                    # Nothing to store, but the model travels on: a changed record of the same
                    # teacher may leave this one the record that counts.
                    validated[checked.source_id] = checked
                continue
            if existing is not None and existing[1]:
                touched.add(existing[1])  # the NIP may have been corrected: re-plan the old one
            row = _source_row(raw, checked, digest, period, now)
            if row is None:
                continue
            source_id = checked.source_id
            if source_id in fresh or existing is None:
                fresh[source_id] = row
            else:
                changed[source_id] = row
            stored[source_id] = (digest, row["nip"])
            if isinstance(checked, PerformanceRecord):
                validated[source_id] = checked
            else:
                validated.pop(source_id, None)
            if row["status"] is SourceStatus.QUARANTINED:
                log.warning(
                    "record.quarantined",
                    run_id=summary.run_id,
                    period=period,
                    npsn=row["npsn"],
                    nip=row["nip"],
                    source_id=source_id,
                    reason=row["reason"],
                )
            if row["nip"]:
                touched.add(row["nip"])
        insert_rows(session, SourceRecord, list(fresh.values()))
        update_rows(session, SourceRecord, ("id",), list(changed.values()))
        self.outbox_writer.write(
            session, self.planner.plan(session, period, mapping, touched, validated)
        )
        positions = dict(newest_of) if npsn == PERIOD_WIDE else {}
        if newest is not None:
            positions[npsn] = newest
        self.store.cursors.advance(session, period, positions)

    def recheck_quarantine(
        self, period: str, mapping: MappingVersion, session: Session | None = None
    ) -> None:
        """Validate the period's quarantined records again, from their stored bodies, with
        this release's rules: PMM serves a record again only when it changes, so one held
        back by an older release's rule (a malformed NUPTK once did) would wait forever.
        The ones now valid are planned; the others keep their place with today's reason.
        ``session``: a dry run's; else one transaction, once more if another worker
        released the same records at the same moment."""
        if session is not None:
            self._release(session, period, mapping)
            return
        for attempt in (1, 2):
            try:
                with self.store.unit_of_work() as s:
                    self._release(s, period, mapping)
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def _release(self, session: Session, period: str, mapping: MappingVersion) -> None:
        now = self.clock()
        rows = session.exec(
            select(SourceRecord).where(
                SourceRecord.period == period, SourceRecord.status == SourceStatus.QUARANTINED
            )
        ).all()
        changed: list[dict[str, Any]] = []
        touched: set[str] = set()
        validated: dict[str, PerformanceRecord] = {}
        for stored in rows:
            checked = read_record(stored.body)
            if isinstance(checked, Rejection) and (
                checked.code == stored.reason_code or stored.reason_code == "mapping_failed"
            ):
                continue  # held for the same reason (or by the mapping: planning says again)
            row = _source_row(stored.body, checked, stored.content_hash, period, now)
            if row is None:
                continue
            row["seen_at"] = stored.seen_at  # not a new version from PMM (a discard holds)
            changed.append(row)
            if isinstance(checked, PerformanceRecord):
                validated[checked.source_id] = checked
                touched.update(filter(None, (stored.nip, row["nip"])))
        update_rows(session, SourceRecord, ("id",), changed)
        if touched:
            self.outbox_writer.write(
                session, self.planner.plan(session, period, mapping, touched, validated)
            )
            log.info("quarantine.released", period=period, records=len(validated))


def _source_row(
    raw: dict[str, Any],
    checked: PerformanceRecord | Rejection,
    digest: str,
    period: str,
    now: dt.datetime,
) -> dict[str, Any] | None:
    """The row of a source record as stored (valid, or quarantined with the reason)."""
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
            "note": None,
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
            "note": "; ".join(checked.notes) or None,
        }
    values.update(id=checked.source_id, content_hash=digest, body=raw, seen_at=now)
    return values
