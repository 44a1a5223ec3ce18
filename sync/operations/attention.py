"""What a run left for a person, and the records an operator discarded.

``needs_a_person`` is taken before and after a run: the records e-Kinerja refused for good or
locked, and the source records quarantined for bad data. What the run added is what a cron
wrapper must hear about (exit code 1): the summary's counts are the period's state after the
run, old dead letters included, and cannot tell.

``discarded`` counts the deliverables an operator closed with ``discard`` (status
``cancelled``, reason code ``DISCARDED``): the summary and ``status`` show them on their own
line, not among those cancelled in PMM.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session, col, func, select

from state.models import DISCARDED, RecordStatus, SourceRecord, SourceStatus, SyncRecord
from state.store import StateStore

__all__ = ["Attention", "discarded", "needs_a_person"]


@dataclass(frozen=True, slots=True)
class Attention:
    """The deliverables refused or locked (period, NIP, kind) and the quarantined source
    records (ids) of a period at one moment."""

    refused: frozenset[tuple[str, str, str]]
    quarantined: frozenset[str]

    def added_since(self, before: Attention) -> tuple[int, int]:
        """(refused or locked, quarantined) that are here and were not ``before``."""
        return len(self.refused - before.refused), len(self.quarantined - before.quarantined)


def needs_a_person(store: StateStore, period: str, npsns: Sequence[str] = ()) -> Attention:
    refused = select(SyncRecord.period, SyncRecord.nip, SyncRecord.kind).where(
        SyncRecord.period == period,
        col(SyncRecord.status).in_([RecordStatus.FAILED, RecordStatus.LOCKED]),
    )
    quarantined = select(SourceRecord.id).where(
        SourceRecord.period == period, SourceRecord.status == SourceStatus.QUARANTINED
    )
    if npsns:
        refused = refused.where(col(SyncRecord.npsn).in_(list(npsns)))
        quarantined = quarantined.where(col(SourceRecord.npsn).in_(list(npsns)))
    with Session(store.engine) as session:
        return Attention(
            frozenset((str(p), str(n), str(k)) for p, n, k in session.exec(refused)),
            frozenset(str(i) for i in session.exec(quarantined)),
        )


def discarded(
    store: StateStore, period: str, npsns: Sequence[str] = ()
) -> dict[str, dict[str, int]]:
    """Per school, per kind (``skp``, ``assessment``): deliverables an operator discarded."""
    query = (
        select(SyncRecord.npsn, SyncRecord.kind, func.count())
        .where(
            SyncRecord.period == period,
            SyncRecord.status == RecordStatus.CANCELLED,
            SyncRecord.reason_code == DISCARDED,
        )
        .group_by(col(SyncRecord.npsn), col(SyncRecord.kind))
    )
    if npsns:
        query = query.where(col(SyncRecord.npsn).in_(list(npsns)))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    with Session(store.engine) as session:
        for npsn, kind, n in session.exec(query):
            counts[str(npsn)][str(kind)] = int(n)
    return dict(counts)
