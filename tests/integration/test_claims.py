"""Claims on outbox entries, on SQLite and PostgreSQL: a worker gets the free entries of a
page in one statement; an entry another worker holds stays theirs until the claim runs out
or its owner is known dead; an entry no longer pending is never claimed."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, insert, update

from state.models import DeliveryKind, OutboxAction, OutboxEntry, OutboxState
from state.store import StateStore

T0 = dt.datetime(2025, 7, 1, 8, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)
OUTBOX = OutboxEntry.__table__  # type: ignore[attr-defined]


@pytest.fixture
def ids(engine: Engine) -> list[int]:
    with engine.begin() as connection:
        connection.execute(
            insert(OUTBOX),
            [
                {
                    "nip": f"19800101200501100{i}",
                    "period": "2025",
                    "kind": DeliveryKind.SKP,
                    "action": OutboxAction.CREATE_SKP,
                    "body": "{}",
                    "payload_hash": f"{i:064x}",
                    "idempotency_key": f"eks-{i}",
                    "mapping_version": "2026.2",
                    "created_at": T0,
                }
                for i in range(6)
            ],
        )
        return sorted(connection.execute(OUTBOX.select().with_only_columns(OUTBOX.c.id)).scalars())


def test_a_worker_gets_the_free_entries_and_not_those_another_holds(
    engine: Engine, ids: list[int]
) -> None:
    store = StateStore(engine)
    assert store.claims.claim_entries(ids[:4], "a", now=T0, lease=LEASE) == set(ids[:4])
    # b's page overlaps a's claims: b gets only the free ones, a keeps its own
    assert store.claims.claim_entries(ids[2:], "b", now=T0, lease=LEASE) == set(ids[4:])
    # a renews its claims (one of them done meanwhile: not pending, not claimed)
    with engine.begin() as connection:
        connection.execute(
            update(OUTBOX).where(OUTBOX.c.id == ids[0]).values(state=OutboxState.DONE)
        )
    later = T0 + dt.timedelta(minutes=1)
    assert store.claims.claim_entries(ids[:4], "a", now=later, lease=LEASE) == set(ids[1:4])


def test_a_claim_is_taken_over_once_it_runs_out_or_its_owner_is_dead(
    engine: Engine, ids: list[int]
) -> None:
    store = StateStore(engine)
    assert store.claims.claim_entries(ids[:3], "a", now=T0, lease=LEASE) == set(ids[:3])
    assert store.claims.claim_entries(ids[:3], "b", now=T0 + LEASE / 2, lease=LEASE) == set()
    assert store.claims.claim_entries(
        ids[:3], "b", now=T0 + LEASE / 2, lease=LEASE, orphaned=lambda owner: owner == "a"
    ) == set(ids[:3])
    # b's claims run out: c takes them at their expiry, not before
    assert store.claims.claim_entries(ids[:2], "c", now=T0 + LEASE, lease=LEASE) == set()
    expired = T0 + LEASE / 2 + LEASE + dt.timedelta(seconds=1)
    assert store.claims.claim_entries(ids[:2], "c", now=expired, lease=LEASE) == set(ids[:2])
    store.claims.release_entries(ids[:2], "c")
    assert store.claims.claim_entries(ids[:2], "a", now=expired, lease=LEASE) == set(ids[:2])
