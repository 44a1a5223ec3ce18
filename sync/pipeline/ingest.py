"""The ingest of source rows: pull a school's pages (under its lease, from its cursor),
store each page, validate each record (quarantine bad ones with a reason), plan the teachers
it touches and move the cursor, all of a page in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from connectors.pmm import PmmClient
from mappings.model import PerformanceRecord
from mappings.source import Rejection, read_record
from mappings.versions import MappingVersion
from state.models import (
    SourceRecord,
    SourceStatus,
)
from sync.delivery.deliver import Deliverer, orphaned
from sync.hashing import content_hash
from sync.pipeline.outbox import _Outbox
from sync.pipeline.summary import RunSummary

log = structlog.get_logger("ekinerja_sync.engine")

# How long a worker's lease on reading a school lasts without renewal (renewed every page).
_LEASE = dt.timedelta(minutes=5)


def _batches(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class _Ingest(_Outbox):
    """The pulling half of ``Engine`` (see ``sync.pipeline.engine``)."""

    source: PmmClient
    deliverer: Deliverer
    batch_size: int

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
