"""The periods of the source, as the engine, the CLI, the daemon and the console see them.

``fetch_listing`` asks the source (``GET /api/v1/periode``) and keeps what it said in the state
store; ``stored_listing`` reads that copy back for the commands that do not call the source
(``status``, the deadline view, the console). A period's kind, dates and ``batas_penilaian``
are always the source's own, never worked out from its year.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import structlog

from connectors.pmm import PmmClient
from mappings.choice import MappingChoice, MappingChoiceError
from mappings.model import ListedPeriod, Period, PeriodKind
from mappings.periods import PeriodListing, read_periods
from mappings.versions import MAPPING_VERSIONS, MappingVersion
from state import models
from state.store import StateStore

__all__ = ["fetch_listing", "period_mapping", "stored_listing", "stored_period"]

log = structlog.get_logger("ekinerja_sync.periods")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fetch_listing(
    source: PmmClient, store: StateStore | None, *, clock: Callable[[], dt.datetime] = _utcnow
) -> PeriodListing:
    """The source's periods, oldest first; kept in ``store`` when one is given. An entry
    that breaks the contract is logged and left out (``problems``): the others sync."""
    listed = read_periods(source.periods())
    for problem in listed.problems:
        log.warning("periods.entry_broken", kode=problem.code, reason=str(problem))
    if store is not None:
        now = clock()
        store.periods.save_listing(
            [
                models.ListedPeriod(
                    code=p.code,
                    kind=p.period.kind.value,
                    starts_on=p.period.start,
                    ends_on=p.period.end,
                    deadline=p.deadline,
                    running=p.running,
                    listed_at=now,
                )
                for p in listed
            ]
        )
    return listed


def period_mapping(
    store: StateStore,
    choice: MappingChoice,
    period: Period,
    *,
    record: bool,
    now: dt.datetime,
) -> MappingVersion:
    """The mapping version of ``period``.

    The config's for the period's kind, when it names one: the operator's switch. Else the
    version recorded for the period when it was first planned. Else, planning it for the
    first time: the version most of its delivered records went out with, if e-Kinerja holds
    any (a store upgraded from a release whose semester default was 2025.1 keeps it), or
    this release's default (``choice.versions``); kept for the period when ``record``.
    """
    kind = period.kind
    if choice.fixed(kind):
        return choice.for_period(period)
    name = store.periods.mapping(period.code)
    if name is None:
        delivered = store.periods.delivered_mapping_versions(period.code)
        usable = [
            (n, version)
            for version, n in delivered.items()
            if version in MAPPING_VERSIONS and MAPPING_VERSIONS[version].maps(kind)
        ]
        name = max(usable)[1] if usable else choice.for_period(period).name
        if record:
            name = store.periods.record_mapping(period.code, name, now) or name
            log.info(
                "periods.mapping_chosen",
                period=period.code,
                mapping=name,
                why="its delivered records" if usable else "the default",
            )
    mapping = MAPPING_VERSIONS.get(name)
    if mapping is None or not mapping.maps(kind):
        setting = choice.settings.get(kind, f"[sync] mapping_versions.{kind.value}")
        raise MappingChoiceError(
            f"period {period.code} was first planned with mapping version {name}, which this "
            f"release cannot map {kind.value} periods with: set {setting} to a version that "
            "can (`ekinerja-sync mappings list`)"
        )
    return mapping


def _from_row(row: models.ListedPeriod) -> ListedPeriod:
    period = Period.parse(row.code)
    if period.kind is not PeriodKind(row.kind):  # written by fetch_listing: never expected
        raise ValueError(f"the state store holds period {row.code} as {row.kind}")
    return ListedPeriod(period, row.deadline, running=row.running)


def stored_listing(store: StateStore) -> list[ListedPeriod]:
    """The periods the source listed when last asked (empty before the first run)."""
    return [_from_row(row) for row in store.periods.listing()]


def stored_period(store: StateStore, code: str) -> ListedPeriod:
    """Period ``code`` as last listed; before any run listed it, what its code says with
    its last day as deadline (the contract's default for a ``batas_penilaian`` of null)."""
    for entry in stored_listing(store):
        if entry.code == code:
            return entry
    period = Period.parse(code)
    return ListedPeriod(period, period.end, running=False)
