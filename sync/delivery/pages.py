"""A page of the outbox at a time: claimed in one statement, what its entries need read in
two queries, then sent on the pool by as many threads as can be kept busy.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from state.models import DeliveryKind
from state.store import OutboxHead, StateStore
from sync.delivery.ratelimit import RateLimiter
from sync.delivery.results import _ENTRY_CLOSED, DeliveryResult, _Context
from sync.delivery.workers import orphaned


class _Pages:
    """The page half of ``Deliverer`` (see ``sync.delivery.deliver``)."""

    store: StateStore
    rate_limiter: RateLimiter
    concurrency: int
    worker: str
    lease: dt.timedelta
    clock: Callable[[], dt.datetime]
    latency_s: float | None

    def _deliver_page(
        self,
        pool: ThreadPoolExecutor,
        page: list[OutboxHead],
        one: Callable[[OutboxHead, _Context | None], DeliveryResult | None],
    ) -> list[DeliveryResult]:
        """Claim a page of entries at once, read what they need at once, send them on the
        pool; hand back the claims of those that stay pending.

        Each of at most ``concurrency`` pool threads takes the next entry until none is left
        (one task per thread, not one per entry: a task costs about as much as a request to
        a fast target)."""
        # Invariant 6: only the worker holding the claim sends the entry.
        claimed = self.store.claim_entries(
            [e.id for e in page], self.worker, now=self.clock(), lease=self.lease, orphaned=orphaned
        )
        mine = [e for e in page if e.id in claimed]
        closed: set[int] = set()
        results: list[DeliveryResult] = []
        try:
            contexts = self._contexts(mine)
            queue = iter(mine)  # a list iterator: each next() is atomic under the GIL

            def drain() -> None:
                for entry in queue:
                    result = one(entry, contexts.get(entry.id))
                    if result is not None:
                        results.append(result)  # list.append is atomic too
                        if result.status in _ENTRY_CLOSED:
                            closed.add(entry.id)

            tasks = [pool.submit(drain) for _ in range(min(self._senders(), len(mine)))]
            wait(tasks)
            for task in tasks:
                if (error := task.exception()) is not None:
                    raise error
        finally:
            # An entry that went (or died) is no longer pending: its claim no longer matters.
            # One that stays pending is handed back for the next round or worker.
            self.store.release_entries(claimed - closed, self.worker)
        return results

    def _senders(self) -> int:
        """How many threads send: ``concurrency``, but under a rate limit no more than can be
        busy at once (Little's law: the rate times how long an answer takes, as seen so far,
        plus one), so that idle threads do not wait in line for the rate limit's tokens."""
        rate, latency = self.rate_limiter.rate, self.latency_s
        if rate <= 0 or latency is None:
            return self.concurrency
        return max(1, min(self.concurrency, math.ceil(rate * latency) + 1))

    def _contexts(self, entries: Sequence[OutboxHead]) -> dict[int, _Context]:
        """The state each entry's delivery needs, in two queries for the lot."""
        if not entries:
            return {}
        period = entries[0].period
        with self.store.unit_of_work() as session:
            known = self.store.deliverable_heads(session, period, {e.nip for e in entries})
            penilai = {
                row.assessor_nip for (_nip, kind), row in known.items() if kind is DeliveryKind.SKP
            } - {nip for nip, _kind in known}
            known.update(self.store.deliverable_heads(session, period, penilai))
        contexts: dict[int, _Context] = {}
        for entry in entries:
            record = known.get((entry.nip, entry.kind))
            if record is None:
                continue
            assessor = (
                known.get((record.assessor_nip, DeliveryKind.SKP))
                if entry.kind is DeliveryKind.SKP
                else None
            )
            contexts[entry.id] = _Context(
                record, known.get((entry.nip, DeliveryKind.SKP)), assessor
            )
        return contexts
