"""Reconciliation: what the state store says was delivered, against what e-Kinerja holds.

For every SKP of a period that the sync delivered, ``GET /api/v1/skp?nip=&tahun=&jenis=``
``&semester=`` and compare with the body last delivered (the outbox entry the ledger recorded
as accepted):

- ``missing``: e-Kinerja holds no SKP for the NIP and period (or its penilaian is gone:
  the SKP is not locked although the sync delivered one);
- ``other_version``: it holds the content sent, under another ``versi`` than the one the sync
  was given (an update made elsewhere and reverted, or an answer that was lost);
- ``changed``: what it holds differs from what was sent: changed outside the sync;
- ``error``: it could not be asked (the answer after retries is named).

Then, per school, the school listing (``GET /api/v1/skp?npsn=``) finds the drift an auditor
asks about:

- ``untracked``: an SKP of the period at the school that the sync never sent (made by hand in
  e-Kinerja's pages, or by another tool).

Findings are reported (returned, logged, exported as metrics by the daemon) and never acted
on: the sync does not overwrite what somebody changed on e-Kinerja, and does not resend a
missing SKP, without an operator deciding it (``replay``).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import structlog
from sqlmodel import Session, col, select

from connectors.errors import FatalError, SyncError
from mappings.model import Period
from state.models import (
    DeliveryKind,
    OutboxEntry,
    OutboxState,
    Run,
    SourceRecord,
    SyncRecord,
)
from state.store import StateStore
from sync.bootstrap import App
from sync.delivery.target import Target

__all__ = [
    "PROBLEMS",
    "RECONCILE_OUTCOME",
    "Discrepancy",
    "ReconcileReport",
    "last_reconcile",
    "reconcile",
    "reconcile_period",
]

log = structlog.get_logger("ekinerja_sync.reconcile")

PROBLEMS = ("missing", "other_version", "changed", "untracked", "error")
# The ``run.outcome`` of a kept reconciliation report.
RECONCILE_OUTCOME = "reconcile"

T = TypeVar("T")


def _call_once(fn: Callable[[], T]) -> T:
    return fn()


@dataclass(frozen=True, slots=True)
class Discrepancy:
    period: str
    nip: str
    npsn: str
    kind: str  # skp | assessment
    problem: str  # one of PROBLEMS
    skp_id: str | None
    delivered_version: int | None
    target_version: int | None
    detail: str


@dataclass
class ReconcileReport:
    period: str
    checked: int = 0
    schools_listed: int = 0  # schools whose SKPs on e-Kinerja were listed for drift
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = Counter(d.problem for d in self.discrepancies)
        return {problem: found[problem] for problem in PROBLEMS}

    def untracked_by_school(self) -> dict[str, int]:
        """Per school, the SKPs on e-Kinerja the sync never sent."""
        found = Counter(d.npsn for d in self.discrepancies if d.problem == "untracked")
        return dict(sorted(found.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "checked": self.checked,
            "schools_listed": self.schools_listed,
            "counts": self.counts(),
            "untracked_by_school": self.untracked_by_school(),
            "discrepancies": [asdict(d) for d in self.discrepancies],
        }


@dataclass(frozen=True, slots=True)
class _Delivered:
    nip: str
    npsn: str
    skp_id: str | None
    version: int | None
    body: dict[str, Any]
    assessment_delivered: bool


def _delivered(session: Session, period: str, npsns: Sequence[str]) -> list[_Delivered]:
    """Every SKP of the period the sync delivered, with the body e-Kinerja accepted last."""
    query = select(SyncRecord).where(
        SyncRecord.period == period, col(SyncRecord.delivered_hash).is_not(None)
    )
    if npsns:
        query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
    rows = list(session.exec(query))
    skps = {r.nip: r for r in rows if r.kind is DeliveryKind.SKP}
    assessed = {r.nip for r in rows if r.kind is DeliveryKind.ASSESSMENT}
    accepted = session.exec(
        select(OutboxEntry)
        .where(
            OutboxEntry.period == period,
            OutboxEntry.kind == DeliveryKind.SKP,
            OutboxEntry.state == OutboxState.DONE,
        )
        .order_by(col(OutboxEntry.id))
    )
    bodies: dict[str, str] = {}
    for entry in accepted:  # the latest accepted body with the delivered hash wins
        row = skps.get(entry.nip)
        if row is not None and entry.payload_hash == row.delivered_hash:
            bodies[entry.nip] = entry.body
    return [
        _Delivered(
            nip=row.nip,
            npsn=row.npsn,
            skp_id=row.skp_id,
            version=row.skp_version,
            body=json.loads(bodies[nip]) if nip in bodies else {},
            assessment_delivered=nip in assessed,
        )
        for nip, row in sorted(skps.items())
    ]


def _compare(period: str, ours: _Delivered, held: list[dict[str, Any]]) -> list[Discrepancy]:
    def found(problem: str, detail: str, theirs: dict[str, Any] | None = None) -> Discrepancy:
        version = theirs.get("versi") if theirs else None
        return Discrepancy(
            period,
            ours.nip,
            ours.npsn,
            "skp",
            problem,
            ours.skp_id,
            ours.version,
            version if isinstance(version, int) else None,
            detail,
        )

    if not held:
        return [found("missing", "e-Kinerja holds no SKP for this NIP and period")]
    theirs = next((s for s in held if s.get("id_skp") == ours.skp_id), None)
    if theirs is None:
        ids = ", ".join(str(s.get("id_skp")) for s in held)
        return [found("changed", f"e-Kinerja holds SKP {ids}, the sync delivered {ours.skp_id}")]
    problems: list[Discrepancy] = []
    # Only the fields the sync sent: e-Kinerja adds its own (id_skp, versi, status, ...).
    differing = sorted(k for k, v in ours.body.items() if theirs.get(k) != v)
    if differing:
        problems.append(
            found(
                "changed",
                "changed outside the sync: " + ", ".join(differing) + " differ from what was sent",
                theirs,
            )
        )
    elif ours.version is not None and theirs.get("versi") != ours.version:
        problems.append(
            found(
                "other_version",
                f"the content sent, but as versi {theirs.get('versi')}, "
                f"not {ours.version} as e-Kinerja answered the sync",
                theirs,
            )
        )
    if ours.assessment_delivered and theirs.get("terkunci") is False:
        problems.append(
            Discrepancy(
                period,
                ours.nip,
                ours.npsn,
                "assessment",
                "missing",
                ours.skp_id,
                None,
                None,
                "the sync delivered a penilaian, but e-Kinerja's SKP is not locked by one",
            )
        )
    return problems


def reconcile(
    store: StateStore,
    target: Target,
    period: str,
    *,
    schools: Sequence[str] = (),
    call: Callable[[Callable[[], list[dict[str, Any]]]], list[dict[str, Any]]] = _call_once,
    before_request: Callable[[], None] = lambda: None,
    concurrency: int = 4,
    should_stop: Callable[[], bool] = lambda: False,
) -> ReconcileReport:
    """Compare every delivered SKP of ``period`` with e-Kinerja; change nothing.

    ``call`` wraps each request (the retry policy), ``before_request`` is the client-side
    rate limit; ``should_stop`` ends the walk early (the daemon stopping). A ``FatalError``
    (credentials refused) ends it at once; any other error is reported for its NIP.
    """
    parsed = Period.parse(period)
    with store.unit_of_work(commit=False) as session:
        delivered = _delivered(session, period, schools)
        sent_ids = _sent_skp_ids(session, period)
        listed_schools = list(schools) or _schools_of(session, period)
    report = ReconcileReport(period)

    def check(ours: _Delivered) -> list[Discrepancy] | None:
        if should_stop():
            return None
        held = _asked(
            call,
            before_request,
            lambda: target.find_skps(
                ours.nip, parsed.year, parsed.semester, jenis=parsed.kind.value
            ),
        )
        if isinstance(held, str):
            return [
                Discrepancy(
                    period,
                    ours.nip,
                    ours.npsn,
                    "skp",
                    "error",
                    ours.skp_id,
                    ours.version,
                    None,
                    f"could not ask e-Kinerja: {held}",
                )
            ]
        return _compare(period, ours, held)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="reconcile")
    try:
        # In a copy of this thread's context variables: the job's log context goes along.
        futures = [pool.submit(contextvars.copy_context().run, check, ours) for ours in delivered]
        for ours, future in zip(delivered, futures, strict=True):
            problems = future.result()  # a FatalError ends the walk: the rest is cancelled
            if problems is None:
                continue
            report.checked += 1
            for d in problems:
                report.discrepancies.append(d)
                log.warning(
                    "reconcile.discrepancy",
                    period=period,
                    npsn=ours.npsn,
                    nip=ours.nip,
                    kind=d.kind,
                    problem=d.problem,
                    skp_id=d.skp_id,
                    detail=d.detail,
                )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for npsn in listed_schools:
        if should_stop():
            break
        report.discrepancies.extend(_drift(target, parsed, npsn, sent_ids, call, before_request))
        report.schools_listed += 1
    log.info(
        "reconcile.done",
        period=period,
        checked=report.checked,
        schools_listed=report.schools_listed,
        **report.counts(),
    )
    return report


def _asked(
    call: Callable[[Callable[[], list[dict[str, Any]]]], list[dict[str, Any]]],
    before_request: Callable[[], None],
    fetch: Callable[[], list[dict[str, Any]]],
) -> list[dict[str, Any]] | str:
    """What e-Kinerja answered, or why it could not be asked (after the retries). Refused
    credentials (``FatalError``) end the whole walk: nothing else can be asked either."""

    def ask() -> list[dict[str, Any]]:
        before_request()
        return fetch()

    try:
        return call(ask)
    except FatalError:
        raise
    except SyncError as exc:
        return exc.message


def _sent_skp_ids(session: Session, period: str) -> set[str]:
    """Every SKP id e-Kinerja gave the sync for the period (in any status since)."""
    rows = session.exec(
        select(SyncRecord.skp_id).where(
            SyncRecord.period == period, col(SyncRecord.skp_id).is_not(None)
        )
    )
    return {skp_id for skp_id in rows if skp_id}


def _schools_of(session: Session, period: str) -> list[str]:
    """The schools the state store knows for the period (read from the source)."""
    rows = session.exec(select(SourceRecord.npsn).where(SourceRecord.period == period).distinct())
    return sorted(npsn for npsn in rows if npsn)


def _drift(
    target: Target,
    period: Period,
    npsn: str,
    ours: set[str],
    call: Callable[[Callable[[], list[dict[str, Any]]]], list[dict[str, Any]]],
    before_request: Callable[[], None],
) -> list[Discrepancy]:
    """The SKPs of the school on e-Kinerja that the sync never sent."""

    held = _asked(
        call,
        before_request,
        lambda: list(
            target.school_skps(npsn, period.year, period.semester, jenis=period.kind.value)
        ),
    )
    if isinstance(held, str):
        return [
            Discrepancy(
                period.code,
                "",
                npsn,
                "skp",
                "error",
                None,
                None,
                None,
                f"could not list the school's SKPs on e-Kinerja: {held}",
            )
        ]
    found = []
    for skp in held:
        skp_id = skp.get("id_skp")
        if not isinstance(skp_id, str) or skp_id in ours:
            continue
        version = skp.get("versi")
        nip = skp.get("nip")
        found.append(
            Discrepancy(
                period.code,
                nip if isinstance(nip, str) else "",
                npsn,
                "skp",
                "untracked",
                skp_id,
                None,
                version if isinstance(version, int) else None,
                "on e-Kinerja but never sent by the sync (made by hand or by another tool): "
                "check it with the school before the sync's own SKP for this NIP goes out",
            )
        )
        log.warning("reconcile.untracked", period=period.code, npsn=npsn, nip=nip, skp_id=skp_id)
    return found


def reconcile_period(
    app: App,
    period: str,
    *,
    schools: Sequence[str] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> ReconcileReport:
    """``reconcile`` with the application's target client, retry policy and rate limit."""
    started = dt.datetime.now(dt.UTC)
    report = reconcile(
        app.store,
        app.target,
        period,
        schools=schools,
        call=app.retry.call,
        before_request=app.rate_limiter.acquire,
        concurrency=app.settings.target.concurrency,
        should_stop=should_stop,
    )
    # Kept as a run of its own kind, so the console (and an auditor) can read the last
    # finding without asking e-Kinerja again; sync runs are those with outcome "ok".
    app.store.save_run(
        Run(
            id=str(uuid.uuid4()),
            period=period,
            started_at=started,
            finished_at=dt.datetime.now(dt.UTC),
            outcome=RECONCILE_OUTCOME,
            summary=report.as_dict(),
        )
    )
    return report


def last_reconcile(store: StateStore, period: str) -> tuple[dt.datetime, dict[str, Any]] | None:
    """When the period was last reconciled, and the report then (``as_dict``), or None."""
    with store.unit_of_work(commit=False) as session:
        row = session.exec(
            select(Run)
            .where(Run.period == period, Run.outcome == RECONCILE_OUTCOME)
            .order_by(col(Run.started_at).desc())
            .limit(1)
        ).first()
        if row is None or row.finished_at is None or row.summary is None:
            return None
        return row.finished_at, dict(row.summary)
