"""One phase of delivery on the pool: the outbox read, claimed and prepared a page at a
time, the entries queued for as many sending threads as can be kept busy.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from state.models import DeliveryKind, RecordStatus
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
    page_size: int

    def _deliver_phase(
        self,
        pool: ThreadPoolExecutor,
        pages: Callable[[int], tuple[int, list[OutboxHead]] | None],
        one: Callable[[OutboxHead, _Context | None], DeliveryResult | None],
        *,
        go_on: Callable[[], bool],
    ) -> list[DeliveryResult]:
        """Send every entry ``pages`` gives on the pool; hand back the claims of those that
        stay pending; return the results of those not delivered. ``pages(after_id)``: the id
        of the last entry read and the entries to send of the next page (None at the end).

        The entries of a phase do not depend on each other, so the threads never wait for a
        page's end: while they send, this thread claims the next page (one statement), reads
        what its entries need (two queries) and queues it once fewer than ``low_water`` are
        left. Each of at most ``concurrency`` threads takes the next queued entry until the
        queue is closed and empty (one task per thread, not one per entry: a task costs
        about as much as a request to a fast target)."""
        senders = self._senders()
        # Half a page left: time enough to claim and prepare the next one, which competes for
        # the GIL with every sending thread.
        queue = _Queue(low_water=max(2 * senders, self.page_size // 2))
        claimed: set[int] = set()
        closed: set[int] = set()
        results: list[DeliveryResult] = []

        def drain() -> None:
            try:
                while (item := queue.take()) is not None:
                    entry, context = item
                    result = one(entry, context)
                    if result is None:
                        continue
                    if result.status in _ENTRY_CLOSED:
                        closed.add(entry.id)  # set.add, list.append: atomic under the GIL
                    if result.status is not RecordStatus.DELIVERED:
                        results.append(result)  # only these: a phase may send 100,000
            except BaseException:
                queue.close()  # a fatal error: no more pages (and nobody waits for room)
                raise

        tasks = [pool.submit(drain) for _ in range(senders)]
        try:
            after = 0
            while go_on() and (read := pages(after)) is not None:
                after, page = read
                # Invariant 6: only the worker holding the claim sends the entry.
                mine = self.store.claim_entries(
                    [e.id for e in page],
                    self.worker,
                    now=self.clock(),
                    lease=self.lease,
                    orphaned=orphaned,
                )
                claimed |= mine
                entries = [e for e in page if e.id in mine]
                contexts = self._contexts(entries)
                if not queue.put([(e, contexts.get(e.id)) for e in entries]):
                    break  # closed by a fatal error
                queue.wait_for_room()
        finally:
            queue.close()
            wait(tasks)
            # An entry that went (or died) is no longer pending: its claim no longer matters.
            # One that stays pending (unsent, deferred, held) is handed back for the next
            # round or worker.
            self.store.release_entries(claimed - closed, self.worker)
        for task in tasks:
            if (error := task.exception()) is not None:
                raise error
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


class _Queue:
    """Entries queued for the sending threads: ``put`` a page, ``take`` one at a time;
    ``wait_for_room`` returns once fewer than ``low_water`` are left (or it is closed)."""

    def __init__(self, *, low_water: int) -> None:
        self._items: deque[tuple[OutboxHead, _Context | None]] = deque()
        self._low_water = low_water
        self._closed = False
        self._changed = threading.Condition()

    def put(self, items: list[tuple[OutboxHead, _Context | None]]) -> bool:
        """Queue a page; False (and nothing queued) once closed."""
        with self._changed:
            if self._closed:
                return False
            self._items.extend(items)
            self._changed.notify_all()
            return True

    def take(self) -> tuple[OutboxHead, _Context | None] | None:
        """The next entry; None once closed and empty."""
        with self._changed:
            while not self._items and not self._closed:
                self._changed.wait()
            if not self._items:
                return None
            item = self._items.popleft()
            if len(self._items) == self._low_water - 1:
                self._changed.notify_all()  # the loop may queue the next page
            return item

    def wait_for_room(self) -> None:
        with self._changed:
            while len(self._items) >= self._low_water and not self._closed:
                self._changed.wait()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
