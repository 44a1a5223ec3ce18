"""This worker's claims on outbox entries: only the worker holding the claim sends the entry
(docs/design.md, invariant 6), a claim outlives its worker by its lease, and a claim whose
owner died on this host is taken over at once (``sync.workers.orphaned``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection

from state.store import StateStore
from sync.workers import orphaned

__all__ = ["OutboxClaims"]


class OutboxClaims:
    """Claims, renews and hands back outbox entries as ``worker``."""

    def __init__(
        self,
        store: StateStore,
        *,
        worker: str,
        lease_s: float = 300.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.worker = worker  # this process's name in claims (``sync.workers.worker_id``)
        self.lease = dt.timedelta(seconds=lease_s)
        self.clock = clock

    def claim_page(self, entry_ids: Collection[int]) -> set[int]:
        """Those of the entries this worker now holds (one statement for the lot)."""
        return self.store.claims.claim_entries(
            entry_ids, self.worker, now=self.clock(), lease=self.lease, orphaned=orphaned
        )

    def claim(self, entry_id: int) -> bool:
        """Claim one entry (a replacement request sent at once)."""
        return self.store.claims.claim_entry(
            entry_id, self.worker, now=self.clock(), lease=self.lease, orphaned=orphaned
        )

    def renew(self, entry_id: int) -> None:
        """Extend the lease of an entry this worker holds (a retry can take a while)."""
        self.store.claims.claim_entry(entry_id, self.worker, now=self.clock(), lease=self.lease)

    def release(self, entry_ids: Collection[int]) -> None:
        """Hand back the claims of entries that stay pending."""
        self.store.claims.release_entries(entry_ids, self.worker)
