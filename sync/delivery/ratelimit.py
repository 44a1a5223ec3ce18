"""The client-side rate limit: ``target.rate_limit_per_s`` is what e-Kinerja sees from the
whole installation (every worker process, thread and token request together).

e-Kinerja counts the requests that *arrive* within any sliding one-second window. So the
limit is a schedule of send slots with no burst at all (GCRA with a tolerance of zero: the
next slot is ``max(next slot, now) + s``, idle time earns no credit), and a request goes at
its slot: ``acquire`` takes one and waits for it, and ``confirm``, called by the connectors
right before a request goes on the wire, lets it go if its slot is still on time, else takes
a fresh one (none held: a token request; or it passed while the request waited).

Between a slot and the request's arrival lies some jitter (waking from the sleep, building
the request, the network): if every arrival lands within ``J`` seconds after its slot, a
one-second window of arrivals holds requests of slots within ``1 + J`` seconds of one
another, which is at most ``ceil((1 + J) / s)`` of them. Hence ``s = (1 + J) / R``: no window
holds more than R, and the rate let through is ``R / (1 + J)`` (93 % of R with the ``J`` of
0.08 s used here). A slot more than ``J / 2`` behind (woken late on a busy machine, or the
slot's answer took that long to come back) is given up for a later one; the other half of
``J`` is for sending the request.

Where the schedule lives: on PostgreSQL in the database (``SharedSchedule``: one row, one
atomic UPDATE per slot, the database's clock), so the workers of one daemon and several
daemons on one database share one limit; on SQLite one process holds the store, and an
in-process schedule (``LocalSchedule``) shared by its threads is enough.

The rate adapts to e-Kinerja (AIMD): ``throttled()`` (a 429 or 503) halves it, at most once a
second and not below a floor; ``accepted()`` (a success) adds a little back, up to R. On
PostgreSQL the adapted rate lives in the same row, so every worker slows down together.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from state.store import StateStore

__all__ = ["JITTER_S", "LocalSchedule", "RateLimiter", "Schedule", "SharedSchedule"]

log = structlog.get_logger("ekinerja_sync.deliver")

JITTER_S = 0.08
"""The jitter allowed between a send slot and the request's arrival at e-Kinerja."""
CUT_HOLD_S = 1.0
"""After a cut, further 429s within this long (those of requests already in flight) do not
cut again."""
_NEAR = 1 - 1e-9  # a rate this close to the limit is the limit (float dust of the steps)
_RETAKES = 3  # a sender late this often in a row sends at its last slot all the same


class Schedule(Protocol):
    """Where the send slots and the adapted rate are kept."""

    def take(self, limit: float, margin: float) -> tuple[float, float, float]:
        """Take the next slot, ``margin / rate`` after the one before: (seconds until it from
        an instant at most the third value before this answer, the rate it was spaced by, at
        most ``limit``; that uncertainty)."""
        ...

    def cut(self, limit: float, floor: float) -> float | None:
        """Halve the rate (not below ``floor``) unless it was cut within ``CUT_HOLD_S``; the
        new rate, or None when not cut."""
        ...

    def raise_rate(self, limit: float, step: float) -> float:
        """Add ``step`` to the rate, up to ``limit``; the rate now."""
        ...


class LocalSchedule:
    """The schedule of one process, shared by its threads (SQLite; tests)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None
        self._rate: float | None = None  # None: the configured one
        self._cut_at: float | None = None

    def take(self, limit: float, margin: float) -> tuple[float, float, float]:
        with self._lock:
            rate = limit if self._rate is None else min(self._rate, limit)
            now = self._clock()
            slot = now if self._next is None else max(self._next, now)
            self._next = slot + margin / rate
            return slot - now, rate, 0.0

    def cut(self, limit: float, floor: float) -> float | None:
        with self._lock:
            now = self._clock()
            if self._cut_at is not None and self._cut_at <= now < self._cut_at + CUT_HOLD_S:
                return None
            rate = limit if self._rate is None else min(self._rate, limit)
            self._rate = max(floor, rate / 2)
            self._cut_at = now
            return self._rate

    def raise_rate(self, limit: float, step: float) -> float:
        with self._lock:
            if self._rate is not None:
                rate = min(self._rate, limit) + step
                self._rate = None if rate >= limit * _NEAR else rate
            return limit if self._rate is None else self._rate


class SharedSchedule:
    """The schedule in the state store's ``rate_slot`` row ``name`` (PostgreSQL): every
    worker process and thread on the database takes its slots there.

    The slots of this process go through one connection of their own, one sender at a time:
    one round trip each, timed, so a sender knows how far from its answer the database's
    instant can be (the uncertainty of ``take``)."""

    def __init__(
        self, store: StateStore, name: str = "target", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._slots = store.rate_slots
        self._name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._slots.ensure(name)

    def take(self, limit: float, margin: float) -> tuple[float, float, float]:
        with self._lock:
            for attempt in range(2):
                if self._connection is None:
                    self._connection = self._slots.connect()
                started = self._clock()
                try:
                    wait, rate = self._slots.take(
                        self._name, limit=limit, margin=margin, connection=self._connection
                    )
                except DBAPIError:  # a connection the server closed: once more on a new one
                    self.close(broken=True)
                    if attempt:
                        raise
                    continue
                return wait, rate, self._clock() - started
        raise AssertionError("unreachable")  # pragma: no cover

    def cut(self, limit: float, floor: float) -> float | None:
        return self._slots.cut(self._name, limit=limit, floor=floor, hold_s=CUT_HOLD_S)

    def raise_rate(self, limit: float, step: float) -> float:
        return self._slots.raise_rate(self._name, limit=limit, step=step)

    def close(self, *, broken: bool = False) -> None:
        """Give the connection back (the application ends), or drop a ``broken`` one."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(DBAPIError):
            if broken:
                connection.invalidate()
            connection.close()


class RateLimiter:
    """At most ``rate_per_s`` requests in any one second as e-Kinerja counts them (on
    arrival), whoever sends them; ``rate_per_s == 0`` disables the limit (no cost at all).

    ``rate`` is the configured limit; ``current`` the adapted rate as last seen. ``clock`` and
    ``sleep`` are the ones a sender waits on (a virtual clock in tests); ``schedule`` where
    the slots are kept (default: this process's).
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        schedule: Schedule | None = None,
        jitter_s: float = JITTER_S,
    ) -> None:
        self.rate = rate_per_s
        self.current = rate_per_s
        self.jitter_s = jitter_s
        # A microsecond more: slots exactly 1 + J apart would meet at a window's edge in
        # floating point.
        self._margin = 1.0 + jitter_s + 1e-6
        self._clock = clock
        self._sleep = sleep
        self._schedule = schedule if schedule is not None else LocalSchedule(clock)
        # The floor of a cut: a twentieth of R, at least 0.5/s (R itself when below that).
        self.floor = min(rate_per_s, max(0.5, rate_per_s / 20))
        # About 25 successes take half the rate back to the whole.
        self.step = rate_per_s / 50
        # Slots taken, and those given up late (counted without a lock: a figure, not a gate).
        self.slots = 0
        self.slots_unused = 0
        self._held = threading.local()  # ``until`` of the slot this thread holds

    def acquire(self) -> None:
        """Wait for a send slot for this thread's next request (``confirm`` uses it)."""
        if self.rate <= 0:
            return
        self._held.until = self._take()

    def confirm(self) -> None:
        """Right before a request goes on the wire (the connectors call it): it goes at this
        thread's slot if that is still on time, else at a fresh one, taken and waited for now
        (no slot held, or it passed while the request waited: for a token, say). Each request
        on the wire uses one slot, however it came there."""
        if self.rate <= 0:
            return
        until = getattr(self._held, "until", None)
        self._held.until = None
        if until is None or self._clock() > until:
            self._take()

    def _take(self) -> float:
        """Take a slot and wait for it; until when (on ``clock``) a request may still go."""
        for taken in range(1, _RETAKES + 1):
            wait, self.current, uncertain = self._schedule.take(self.rate, self._margin)
            answered = self._clock()
            self.slots += 1
            # The slot is ``wait`` after an instant at most ``uncertain`` before the answer:
            # slept to from the answer (never early), late by at most that much more.
            if wait > 0:
                self._sleep(wait)
            until = answered + wait - uncertain + self.jitter_s / 2
            if self._clock() <= until:
                return until
            if taken == _RETAKES:  # late each time: this one goes, late or not
                return math.inf
            # Late (a busy machine, a slow answer from the database): sent now it would land
            # among the next slots' requests. This slot goes unused; a later one is taken.
            self.slots_unused += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def throttled(self) -> None:
        """e-Kinerja answered 429 or 503: halve the rate (multiplicative decrease), once for
        the requests that were in flight together."""
        if self.rate <= 0:
            return
        rate = self._schedule.cut(self.rate, self.floor)
        if rate is not None:
            self.current = rate
            log.info("deliver.rate_cut", rate_per_s=round(rate, 3), limit_per_s=self.rate)

    def close(self) -> None:
        """Let go of what the schedule holds (a database connection)."""
        close = getattr(self._schedule, "close", None)
        if close is not None:
            close()

    def accepted(self) -> None:
        """e-Kinerja accepted a request: add a little back (additive increase), up to the
        configured rate. Nothing to do (no database round trip) while at that rate."""
        if self.rate <= 0 or self.current >= self.rate:
            return
        self.current = self._schedule.raise_rate(self.rate, self.step)
