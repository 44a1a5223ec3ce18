"""One phase of delivery on the pool: the outbox read, claimed and prepared a page at a
time, the entries queued for as many sending threads as can be kept busy.
"""

from __future__ import annotations

import contextvars
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
from sync.workers import orphaned


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
        claims: list[_PageClaims] = []
        results: list[DeliveryResult] = []

        def drain() -> None:
            try:
                while (item := queue.take()) is not None:
                    entry, context, page = item
                    result = one(entry, context)
                    if result is not None and result.status in _ENTRY_CLOSED:
                        page.close(entry.id)
                    if result is not None and result.status is not RecordStatus.DELIVERED:
                        results.append(result)  # only these: a phase may send 100,000
                    if (pending := page.through_one()) is not None:
                        self.store.claims.release_entries(pending, self.worker)
            except BaseException:
                queue.close()  # a fatal error: no more pages (and nobody waits for room)
                raise

        # Each thread runs in a copy of this one's context variables: the log context bound
        # for the job (``job``, by the daemon or the command) reaches every ``deliver.*`` line.
        tasks = [pool.submit(contextvars.copy_context().run, drain) for _ in range(senders)]
        try:
            after = 0
            while go_on() and (read := pages(after)) is not None:
                after, page = read
                # Invariant 6: only the worker holding the claim sends the entry.
                mine = self.store.claims.claim_entries(
                    [e.id for e in page],
                    self.worker,
                    now=self.clock(),
                    lease=self.lease,
                    orphaned=orphaned,
                )
                entries = [e for e in page if e.id in mine]
                if not entries:
                    continue
                claims.append(page_claims := _PageClaims(mine))
                contexts = self._contexts(entries)
                if not queue.put([(e, contexts.get(e.id), page_claims) for e in entries]):
                    break  # closed by a fatal error
                queue.wait_for_room()
        finally:
            queue.close()
            wait(tasks)
            # The claims of pages not gone through (a stop, a fatal error) are handed back too.
            for page_claims in claims:
                if (pending := page_claims.abandon()) is not None:
                    self.store.claims.release_entries(pending, self.worker)
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
            known = self.store.deliverables.heads(session, period, {e.nip for e in entries})
            penilai = {
                row.assessor_nip for (_nip, kind), row in known.items() if kind is DeliveryKind.SKP
            } - {nip for nip, _kind in known}
            known.update(self.store.deliverables.heads(session, period, penilai))
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


class _PageClaims:
    """The claims of one page: those still pending are handed back as soon as its last entry
    is through (not at the end of the phase: a phase may claim 100,000)."""

    def __init__(self, ids: set[int]) -> None:
        self._pending = set(ids)  # claimed, not yet delivered or dead
        self._left = len(ids)  # entries not yet through
        self._lock = threading.Lock()

    def close(self, entry_id: int) -> None:
        """The entry went (or died): its claim no longer matters."""
        self._pending.discard(entry_id)  # atomic under the GIL

    def through_one(self) -> set[int] | None:
        """One more entry is through; the claims to hand back once it was the last."""
        with self._lock:
            self._left -= 1
            return self._give_back() if self._left == 0 else None

    def abandon(self) -> set[int] | None:
        """The claims to hand back of a page not gone through (None if already done)."""
        with self._lock:
            return self._give_back() if self._left > 0 else None

    def _give_back(self) -> set[int] | None:
        pending, self._pending = self._pending, set()
        self._left = -1  # handed back once only
        return pending or None


# An entry as queued: what its delivery needs, and the claims of its page.
_Item = tuple[OutboxHead, _Context | None, _PageClaims]


class _Queue:
    """Entries queued for the sending threads: ``put`` a page, ``take`` one at a time;
    ``wait_for_room`` returns once fewer than ``low_water`` are left (or it is closed)."""

    def __init__(self, *, low_water: int) -> None:
        self._items: deque[_Item] = deque()
        self._low_water = low_water
        self._closed = False
        self._changed = threading.Condition()

    def put(self, items: list[_Item]) -> bool:
        """Queue a page; False (and nothing queued) once closed."""
        with self._changed:
            if self._closed:
                return False
            self._items.extend(items)
            self._changed.notify_all()
            return True

    def take(self) -> _Item | None:
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
