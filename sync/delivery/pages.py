"""One phase of delivery on the pool: the outbox read, claimed and prepared a page at a
time, the entries queued for as many sending threads as the caller says can be kept busy.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from state.models import DeliveryKind, RecordStatus
from state.store import OutboxHead, StateStore
from sync.delivery.claims import OutboxClaims
from sync.delivery.results import ENTRY_CLOSED, DeliveryContext, DeliveryResult

__all__ = ["OutboxPages", "PageClaims", "Phase", "SendQueue"]


@dataclass(frozen=True, slots=True)
class Phase:
    """The outbox entries one phase sends: a kind (SKPs of penilai or of the others, or
    penilaian) of a period, of some schools (none: all), up to an entry id, optionally only
    some deliverables."""

    period: str
    npsns: Sequence[str]
    kind: DeliveryKind
    assessors: bool | None
    up_to_id: int
    only: set[tuple[str, DeliveryKind]] | None


class OutboxPages:
    """Reads a phase's outbox a page at a time, claims the page (``OutboxClaims``), reads
    what its entries need of the state, and queues them for the sending threads."""

    def __init__(self, *, store: StateStore, claims: OutboxClaims, page_size: int = 500) -> None:
        self.store = store
        self.claims = claims
        # Outbox entries are read, claimed and prepared a page at a time (bounded memory).
        self.page_size = page_size

    def horizon(self) -> int:
        """The newest outbox entry now: a round reads none written after it (a 412's
        replacement is sent at once, not read back)."""
        with self.store.unit_of_work() as session:
            return self.store.outbox.last_id(session)

    def send_phase(
        self,
        pool: ThreadPoolExecutor,
        phase: Phase,
        one: Callable[[OutboxHead, DeliveryContext | None], DeliveryResult | None],
        *,
        senders: int,
        go_on: Callable[[], bool],
    ) -> list[DeliveryResult]:
        """Send every entry of ``phase`` on the pool with ``one``, on ``senders`` threads;
        hand back the claims of those that stay pending; return the results of those not
        delivered.

        The entries of a phase do not depend on each other, so the threads never wait for a
        page's end: while they send, this thread claims the next page (one statement), reads
        what its entries need (two queries) and queues it once fewer than ``low_water`` are
        left. Each of the ``senders`` threads takes the next queued entry until the queue is
        closed and empty (one task per thread, not one per entry: a task costs about as much
        as a request to a fast target)."""
        # Half a page left: time enough to claim and prepare the next one, which competes for
        # the GIL with every sending thread.
        queue = SendQueue(low_water=max(2 * senders, self.page_size // 2))
        claims: list[PageClaims] = []
        results: list[DeliveryResult] = []

        def drain() -> None:
            try:
                while (item := queue.take()) is not None:
                    entry, context, page = item
                    result = one(entry, context)
                    if result is not None and result.status in ENTRY_CLOSED:
                        page.close(entry.id)
                    if result is not None and result.status is not RecordStatus.DELIVERED:
                        results.append(result)  # only these: a phase may send 100,000
                    if (pending := page.through_one()) is not None:
                        self.claims.release(pending)
            except BaseException:
                queue.close()  # a fatal error: no more pages (and nobody waits for room)
                raise

        # Each thread runs in a copy of this one's context variables: the log context bound
        # for the job (``job``, by the daemon or the command) reaches every ``deliver.*`` line.
        tasks = [pool.submit(contextvars.copy_context().run, drain) for _ in range(senders)]
        try:
            after = 0
            while go_on() and (read := self._page(phase, after)) is not None:
                after, page = read
                # Invariant 6: only the worker holding the claim sends the entry.
                mine = self.claims.claim_page([e.id for e in page])
                entries = [e for e in page if e.id in mine]
                if not entries:
                    continue
                claims.append(page_claims := PageClaims(mine))
                contexts = self.contexts(entries)
                if not queue.put([(e, contexts.get(e.id), page_claims) for e in entries]):
                    break  # closed by a fatal error
                queue.wait_for_room()
        finally:
            queue.close()
            wait(tasks)
            # The claims of pages not gone through (a stop, a fatal error) are handed back too.
            for page_claims in claims:
                if (pending := page_claims.abandon()) is not None:
                    self.claims.release(pending)
        for task in tasks:
            if (error := task.exception()) is not None:
                raise error
        return results

    def _page(self, phase: Phase, after: int) -> tuple[int, list[OutboxHead]] | None:
        """The id of the last entry read and the entries to send of the page after
        ``after`` (None at the end)."""
        # A connection, not a session: the page is read by one prepared statement.
        with self.store.engine.connect() as connection:
            page = self.store.outbox.pending_page(
                connection,
                phase.period,
                phase.npsns,
                kind=phase.kind,
                assessors=phase.assessors,
                after_id=after,
                up_to_id=phase.up_to_id,
                limit=self.page_size,
            )
        if not page:
            return None
        only = phase.only
        return page[-1].id, [e for e in page if only is None or (e.nip, e.kind) in only]

    def contexts(self, entries: Sequence[OutboxHead]) -> dict[int, DeliveryContext]:
        """The state each entry's delivery needs, in two queries for the lot."""
        if not entries:
            return {}
        period = entries[0].period
        with self.store.engine.connect() as connection:
            heads = self.store.deliverables.heads
            known = heads(connection, period, {e.nip for e in entries})
            penilai = {
                row.assessor_nip for (_nip, kind), row in known.items() if kind is DeliveryKind.SKP
            } - {nip for nip, _kind in known}
            known.update(heads(connection, period, penilai))
        contexts: dict[int, DeliveryContext] = {}
        for entry in entries:
            record = known.get((entry.nip, entry.kind))
            if record is None:
                continue
            assessor = (
                known.get((record.assessor_nip, DeliveryKind.SKP))
                if entry.kind is DeliveryKind.SKP
                else None
            )
            contexts[entry.id] = DeliveryContext(
                record, known.get((entry.nip, DeliveryKind.SKP)), assessor
            )
        return contexts


class PageClaims:
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
_Item = tuple[OutboxHead, DeliveryContext | None, PageClaims]


class SendQueue:
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
