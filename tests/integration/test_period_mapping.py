"""The mapping version of each period (issue 23): a period nothing was delivered for yet uses
2026.2 by default, semesters included; the choice is recorded when the period is first
planned and kept; a period already delivered with 2025.1 before choices were recorded keeps
2025.1; the config's version (the operator's switch) wins; a dry run records nothing. On
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from mappings.choice import MappingChoice, MappingChoiceError
from mappings.model import Period, PeriodKind
from mappings.versions import get_mapping
from state import models
from state.models import DeliveryKind, RecordStatus, SyncRecord
from state.store import StateStore
from sync.pipeline.periods import period_mapping

T0 = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
SEMESTER = Period.parse("2024-2")
# As sync.bootstrap.mapping_choice builds it from a config that names no version.
DEFAULTS = MappingChoice(
    versions={k: get_mapping("2026.2") for k in PeriodKind},
    settings={k: f"[sync] mapping_versions.{k.value}" for k in PeriodKind},
    configured=frozenset(),
)


@pytest.fixture
def store(engine: Engine) -> StateStore:
    store = StateStore(engine)
    store.periods.save_listing(
        [
            models.ListedPeriod(
                code=code,
                kind=Period.parse(code).kind.value,
                starts_on=Period.parse(code).start,
                ends_on=Period.parse(code).end,
                deadline=Period.parse(code).end,
                running=False,
                listed_at=T0,
            )
            for code in ("2024-1", "2024-2", "2026")
        ]
    )
    return store


def _delivered(store: StateStore, period: str, version: str, nips: range) -> None:
    with Session(store.engine) as session:
        for n in nips:
            session.add(
                SyncRecord(
                    nip=f"19850315201001{n:04d}",
                    period=period,
                    kind=DeliveryKind.SKP,
                    npsn="20212345",
                    source_id=f"rec-{n}",
                    assessor_nip="197002101995031001",
                    status=RecordStatus.DELIVERED,
                    payload_hash="h",
                    delivered_hash="h",
                    mapping_version=version,
                    delivered_mapping_version=version,
                )
            )
        session.commit()


def test_a_semester_nothing_was_delivered_for_uses_2026_2_and_keeps_it(store: StateStore) -> None:
    chosen = period_mapping(store, DEFAULTS, SEMESTER, record=True, now=T0)
    assert chosen.name == "2026.2"
    assert store.periods.mapping("2024-2") == "2026.2"
    with Session(store.engine) as session:
        row = session.get(models.ListedPeriod, "2024-2")
        assert row is not None
        assert row.mapping_chosen_at == T0
    # A later release whose default differs: the period keeps what it was planned with.
    later = MappingChoice(
        versions={PeriodKind.SEMESTER: get_mapping("2026.1")}, configured=frozenset()
    )
    assert period_mapping(store, later, SEMESTER, record=True, now=T0).name == "2026.2"
    # The listing written again (every run) leaves the choice alone.
    store.periods.save_listing(
        [
            models.ListedPeriod(
                code="2024-2",
                kind="semester",
                starts_on=SEMESTER.start,
                ends_on=SEMESTER.end,
                deadline=SEMESTER.end,
                running=False,
                listed_at=T0 + dt.timedelta(days=1),
            )
        ]
    )
    assert store.periods.mapping("2024-2") == "2026.2"


def test_a_semester_already_delivered_with_2025_1_keeps_it(store: StateStore) -> None:
    # An upgraded store: 2024-2 went out with the old default before choices were recorded,
    # and a few SKPs with 2026.1 while an operator tried it.
    _delivered(store, "2024-2", "2025.1", range(1, 6))
    _delivered(store, "2024-2", "2026.1", range(6, 8))
    assert period_mapping(store, DEFAULTS, SEMESTER, record=True, now=T0).name == "2025.1"
    assert store.periods.mapping("2024-2") == "2025.1"
    # The other semester, with nothing delivered, takes the new default.
    first = Period.parse("2024-1")
    assert period_mapping(store, DEFAULTS, first, record=True, now=T0).name == "2026.2"


def test_the_config_is_the_operators_switch_and_records_nothing(store: StateStore) -> None:
    _delivered(store, "2024-2", "2025.1", range(1, 3))
    switched = MappingChoice(
        versions={k: get_mapping("2026.2") for k in PeriodKind},
        configured=frozenset({PeriodKind.SEMESTER}),
    )
    assert period_mapping(store, switched, SEMESTER, record=True, now=T0).name == "2026.2"
    assert store.periods.mapping("2024-2") is None


def test_a_dry_run_records_nothing(store: StateStore) -> None:
    assert period_mapping(store, DEFAULTS, SEMESTER, record=False, now=T0).name == "2026.2"
    assert store.periods.mapping("2024-2") is None


def test_a_period_not_in_the_stored_listing_still_gets_its_version(store: StateStore) -> None:
    unlisted = Period.parse("2025-1")
    assert period_mapping(store, DEFAULTS, unlisted, record=True, now=T0).name == "2026.2"
    assert store.periods.mapping("2025-1") is None


def test_a_recorded_version_this_release_cannot_use_names_the_setting(store: StateStore) -> None:
    store.periods.record_mapping("2026", "2025.1", T0)  # a semester-only version for a year
    with pytest.raises(MappingChoiceError, match=r"\[sync\] mapping_versions.tahunan"):
        period_mapping(store, DEFAULTS, Period.parse("2026"), record=True, now=T0)
