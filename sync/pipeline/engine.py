"""The engine: one ``run`` of a period, from pull to delivery, by its collaborators.

    ingester.recheck_quarantine   what an older release held back, validated again
    ingester.pull_period          per page, in ONE transaction: store the source records,
      (or pull_school)            validate each once (quarantine), planner.plan (new, changed,
                                  unchanged), outbox_writer.write (statuses and requests),
                                  the cursor
    planner.plan, then            again for the teachers an older mapping version planned
      outbox_writer.write         (remap)
    deliverer.deliver             penilai SKPs first, then other SKPs, then penilaian

A crash between pages loses nothing: a page's records, decisions and cursor commit together,
and unsent outbox entries are delivered by the next run with the same idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import structlog
from sqlmodel import Session

from connectors.pmm import PmmClient
from mappings.choice import MappingChoice
from mappings.model import ListedPeriod, Period
from mappings.periods import find_period
from mappings.versions import MappingVersion
from state.models import (
    DeliveryKind,
    RecordStatus,
    Run,
    SyncRecord,
)
from state.store import PERIOD_WIDE, StateStore
from sync.delivery.deliver import Deliverer, DeliveryResult
from sync.pipeline.audit import Audit, NullAudit
from sync.pipeline.ingest import Ingester
from sync.pipeline.outbox import OutboxWriter
from sync.pipeline.overlap import HelperProcess, Overlap, merge_helper
from sync.pipeline.periods import fetch_listing, period_mapping
from sync.pipeline.planner import Planner
from sync.pipeline.summary import ReplayOutcome, RunSummary
from sync.workers import orphaned

__all__ = ["Engine", "ReplayOutcome", "RunSummary"]

log = structlog.get_logger("ekinerja_sync.engine")

Clock = Callable[[], dt.datetime]

# Records read before the planner's statistics are first refreshed during a pull.
_ANALYZE_AFTER = 2_000
# How often a worker delivering beside another's walk of the period looks for more to send.
_WALK_WAIT_S = 0.25


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Engine:
    """Runs the sync of a period. Built by ``sync.bootstrap``; everything is passed in:
    the ``ingester`` reads the source (and hands each page to the ``planner`` and the
    ``outbox_writer``), the ``planner`` and the ``outbox_writer`` also plan again after a
    mapping switch and for a replay, the ``deliverer`` sends the outbox, the ``audit``
    records an operator's replay in the ledger."""

    def __init__(
        self,
        *,
        store: StateStore,
        source: PmmClient,
        ingester: Ingester,
        planner: Planner,
        outbox_writer: OutboxWriter,
        deliverer: Deliverer,
        mappings: MappingChoice,
        audit: Audit | None = None,
        batch_size: int = 500,
        clock: Clock = _utcnow,
        overlap: Overlap | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.ingester = ingester
        self.planner = planner
        self.outbox_writer = outbox_writer
        self.deliverer = deliverer
        self.mappings = mappings
        self.audit: Audit = audit or NullAudit()
        self.batch_size = batch_size
        self.clock = clock
        # Starts a second process that delivers while this one walks the period (None: one
        # process does both, one after the other): ``sync.pipeline.overlap``.
        self.overlap = overlap

    # -- the run -------------------------------------------------------------------------

    def run(
        self,
        period: str,
        *,
        schools: Sequence[str] = (),
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
        listing: Sequence[ListedPeriod] | None = None,
    ) -> RunSummary:
        """Sync ``period``. ``listing``: the source's periods as the caller has just fetched
        them (``fetch_listing``), so the source is not asked twice; None: asked here."""
        run_id = str(uuid.uuid4())
        # The period as the source lists it (its kind above all); a dry run keeps nothing.
        if listing is None:
            store = None if dry_run else self.store
            listing = fetch_listing(self.source, store, clock=self.clock)
        listed = find_period(listing, period)
        # The period's own version (recorded when first planned; a dry run records nothing).
        mapping = period_mapping(
            self.store, self.mappings, listed.period, record=not dry_run, now=self.clock()
        )
        summary = RunSummary(
            run_id=run_id,
            period=period,
            dry_run=dry_run,
            kind=listed.period.kind.value,
            mapping_version=mapping.name,
            listing_problems=[str(p) for p in getattr(listing, "problems", ())],
        )
        bound = log.bind(run_id=run_id, period=period)
        started = self.clock()
        # Every school (no list given): one walk of the period and no list of schools at
        # all (``()`` below means the whole period); a dry run still reads school by school.
        npsns = list(schools) or ([s["npsn"] for s in self.source.schools()] if dry_run else [])
        bound.info(
            "run.start",
            schools=len(npsns) if npsns else "all",
            dry_run=dry_run,
            kind=summary.kind,
            mapping=mapping.name,
        )
        if dry_run:
            # Everything in one transaction that is rolled back at the end, and the would-be
            # requests handed to nobody: a dry run writes nothing and sends nothing.
            with self.store.unit_of_work(commit=False) as session:
                self.ingester.recheck_quarantine(period, mapping, session)
                for npsn in npsns:
                    self.ingester.pull_school(
                        period, mapping, npsn, summary, progress, session=session
                    )
                self._remap(period, mapping, npsns, session)
                for entry, _record in self.store.outbox.pending(session, period, npsns):
                    summary.outcomes[(entry.kind.value, "would_send")] += 1
                self._tally(session, period, npsns, summary)
        else:
            analyzed_at = 0
            helper: HelperProcess | None = None

            def analyze() -> None:
                # A first sync grows the tables from empty: the planner's statistics are
                # refreshed each time what was read doubles (a handful of times in all).
                nonlocal analyzed_at
                if summary.pulled >= max(2 * analyzed_at, _ANALYZE_AFTER):
                    self.store.refresh_statistics()
                    analyzed_at = summary.pulled

            def after_page() -> None:
                # The walk's first page and its outbox are committed: a second process
                # delivers while this one walks on (by the walk's lease: hence the whole
                # period's walk only), when the page was full (a walk of one page, a rerun
                # with a few changes, is not worth a process).
                nonlocal helper
                analyze()
                if (
                    helper is None
                    and self.overlap is not None
                    and summary.pulled >= self.batch_size
                ):
                    helper = self.overlap(period, run_id, progress)
                    bound.info("run.helper_started", pid=helper.pid)

            try:
                self.ingester.recheck_quarantine(period, mapping)
                walked = True
                if schools:
                    for npsn in npsns:
                        self.ingester.pull_school(period, mapping, npsn, summary, progress)
                        analyze()
                else:
                    # Every school: one incremental walk of the whole period, not one per
                    # school, so a rerun costs what changed, not the number of schools.
                    walked = self.ingester.pull_period(
                        period, mapping, summary, progress, after_page
                    )
                self._remap(period, mapping, npsns, None)
                if summary.pulled > analyzed_at:
                    self.store.refresh_statistics()
                self.deliver_beside(period, npsns, summary, progress, walked=walked)
                if helper is not None:
                    self._join_helper(helper, period, npsns, summary, progress)
                    helper = None
            finally:
                if helper is not None:  # this process failed or was stopped: so is the helper
                    helper.finish(stop=True)
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

    def deliver_beside(
        self,
        period: str,
        npsns: Sequence[str],
        summary: RunSummary,
        progress: Callable[[str, int], None] | None = None,
        *,
        walked: bool = False,
    ) -> None:
        """Deliver the period; while another worker walks it (``walked``: this one did, it is
        over), what it has planned so far, again and again until its walk is over, then once
        more (shared by the claims). An overlap helper's whole work."""

        def walking() -> bool:
            return not walked and self.store.claims.school_held_elsewhere(
                period, PERIOD_WIDE, self.deliverer.worker, now=self.clock(), orphaned=orphaned
            )

        while True:
            # Asked again before each round of the delivery: the walk may end during one.
            still = walking()
            self.deliver(
                period, npsns, summary, progress, read_elsewhere=walking if still else False
            )
            if not still or self.deliverer.stop.is_set():
                break
            self.deliverer.gate.sleep(_WALK_WAIT_S)

    def _join_helper(
        self,
        helper: HelperProcess,
        period: str,
        npsns: Sequence[str],
        summary: RunSummary,
        progress: Callable[[str, int], None] | None,
    ) -> None:
        """Wait for the overlap helper, add what it did to the summary; when it died without
        a word (killed), deliver once more: its claims are taken over (owner dead)."""
        outcome = helper.finish(stop_when=self.deliverer.stop.is_set)
        if outcome.summary is not None:
            merge_helper(summary, outcome.summary)
        if outcome.error is not None:
            summary.helper_error = (outcome.exit_code, outcome.error, outcome.problem)
            log.error("run.helper_failed", period=period, error=outcome.error)
        if outcome.summary is None and not self.deliverer.stop.is_set():
            log.warning(
                "run.helper_died",
                period=period,
                pid=helper.pid,
                returncode=outcome.returncode,
                note="its claims are taken over; what it left unsent goes now",
            )
            self.deliver(period, npsns, summary, progress)

    def retry_due(self, period: str, *, schools: Sequence[str] = ()) -> RunSummary:
        """Send what is still unsent for the period (held records, interrupted sends),
        without reading the source: the daemon's "due retries" job."""
        summary = RunSummary(run_id=str(uuid.uuid4()), period=period, dry_run=False)
        self.deliver(period, list(schools), summary)
        return summary

    # -- plan again after a mapping switch ------------------------------------------------

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
            nips = self.store.deliverables.nips_mapped_otherwise(s, period, npsns, mapping.name)
            for start in range(0, len(nips), self.batch_size):
                batch = set(nips[start : start + self.batch_size])
                self.outbox_writer.write(s, self.planner.plan(s, period, mapping, batch))
            return len(nips)

        if session is not None:
            remapped = remap(session)
        else:
            with self.store.unit_of_work() as s:
                remapped = remap(s)
        if remapped:
            log.info("run.remapped", period=period, mapping=mapping.name, teachers=remapped)

    # -- replay --------------------------------------------------------------------------

    def replay(
        self,
        targets: Sequence[SyncRecord],
        *,
        actor: str,
        dry_run: bool = False,
        progress: Callable[[str, int], None] | None = None,
        theirs_only: bool = False,
    ) -> list[ReplayOutcome]:
        """Replay dead records: read their schools' source records again (the fix is usually
        made in PMM), re-plan, and send through the normal pipeline.

        A record whose source did not change is sent again as it is (same idempotency key
        when the body is the same: the target evaluates a refused request afresh).
        ``theirs_only``: send the replayed teachers' deliverables alone, not whatever else
        their schools have pending (an approved replay in a closed period, which sends
        nothing else: docs/design.md, invariant 9).
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
            mapping = period_mapping(
                self.store, self.mappings, Period.parse(period), record=True, now=self.clock()
            )
            for npsn in sorted(npsns):
                self.ingester.pull_school(period, mapping, npsn, summary, progress)
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
                plan = self.planner.plan(session, period, mapping, {r.nip for r in chosen})
                self.outbox_writer.write(session, plan)
            # The normal pipeline: whatever the schools now have pending goes out.
            only = {(r.nip, kind) for r in chosen for kind in DeliveryKind} if theirs_only else None
            self.deliverer.deliver(
                period, sorted(npsns), run_id=run_id, progress=progress, only=only
            )
            with self.store.unit_of_work() as session:
                for r in chosen:
                    after = session.get(SyncRecord, (r.nip, r.period, r.kind))
                    assert after is not None  # deliverables are never deleted
                    reason = after.reason
                    moved = self.store.sources.records(session, [after.source_id]).get(
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
        *,
        read_elsewhere: bool | Callable[[], bool] = False,
    ) -> list[DeliveryResult]:
        """Send the unsent requests of the period: penilai SKPs, other SKPs, penilaian
        (``read_elsewhere``: another worker is still reading the period; asked before
        each round when a function)."""
        counts: Counter[tuple[str, str]] = Counter()
        results = self.deliverer.deliver(
            period,
            npsns,
            run_id=summary.run_id,
            counts=counts,
            progress=progress,
            read_elsewhere=read_elsewhere,
        )
        summary.outcomes.update(counts)
        summary.target_unreachable = summary.target_unreachable or self.deliverer.outage
        summary.add_backpressure(self.deliverer.backpressure)
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
        counts = Counter(self.store.reports.kind_status_counts(session, period, npsns))
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
        summary.quarantined = self.store.reports.quarantined_count(session, period, npsns)
