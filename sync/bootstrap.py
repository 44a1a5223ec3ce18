"""The one assembly point: settings in, a ready engine out. The CLI, the daemon and the
tests all build the application here; nothing is built at import time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import Connection
from sqlmodel import Session

from connectors.ekinerja import EkinerjaClient
from connectors.pmm import PmmClient
from mappings.choice import MappingChoice
from mappings.model import PeriodKind
from mappings.versions import get_mapping
from state.db import open_engine, prepare_schema
from state.store import StateStore
from sync.delivery.answers import AnswerWriter
from sync.delivery.breaker import CircuitBreaker
from sync.delivery.claims import OutboxClaims
from sync.delivery.deliver import Deliverer
from sync.delivery.pages import OutboxPages
from sync.delivery.ratelimit import RateLimiter, SharedSchedule
from sync.delivery.results import Attempt, AttemptLog
from sync.delivery.retry import RetryPolicy
from sync.delivery.sender import PauseGate, Sender
from sync.delivery.target import Target
from sync.ledger_writer import LedgerWriter
from sync.logs import logging_setup
from sync.pipeline.engine import Engine
from sync.pipeline.ingest import Ingester
from sync.pipeline.outbox import OutboxWriter
from sync.pipeline.overlap import HelperProcess, Overlap, python_argv, spawn_helper
from sync.pipeline.planner import Planner
from sync.settings import Settings, settings_payload
from sync.workers import worker_id

__all__ = [
    "App",
    "build_app",
    "build_store",
    "helper_launcher",
    "mapping_choice",
    "rate_limiter",
]


@dataclass
class App:
    settings: Settings
    store: StateStore
    engine: Engine
    source: PmmClient
    target: Target  # e-Kinerja's client (``EkinerjaClient``), below
    retry: RetryPolicy  # what every request to either side is retried by
    rate_limiter: RateLimiter  # the one rate limit of everything sent to e-Kinerja


def build_store(settings: Settings, *, create: bool = True) -> StateStore:
    """The state store of the settings, at this release's schema.

    ``create``: a store that does not exist yet (no SQLite file, or an empty database) is
    made. The CLI passes it only for ``run --create-store`` and ``daemon --create-store``
    (``db upgrade`` makes one too); without it, ``StoreUnusable`` names the path, and an
    empty database raises ``SchemaBehind``. ``StoreUnusable`` also says why a store cannot
    be opened at all (no server, no database, no driver).
    """
    engine = open_engine(settings.state.url, create=create)
    try:  # a schema that is behind raises SchemaBehind: the CLI and the daemon stop there
        prepare_schema(engine, auto_create=create)
    except BaseException:
        engine.dispose()
        raise
    return StateStore(engine)


class _Observed:
    """An attempt log whose attempts an observer sees too, once written (metrics)."""

    def __init__(self, log: AttemptLog, observer: Callable[[Attempt], None]) -> None:
        self._log = log
        self._observer = observer

    def attempts(self, session: Session | Connection, attempts: Sequence[Attempt]) -> None:
        self._log.attempts(session, attempts)
        for attempt in attempts:
            self._observer(attempt)


def rate_limiter(
    settings: Settings,
    store: StateStore,
    sleep: Callable[[float], None] = time.sleep,
    *,
    overlap: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> RateLimiter:
    """The one rate limit of everything this installation sends to e-Kinerja (issue 22).

    On PostgreSQL its send slots are in the database, shared by every worker process and
    thread (and several daemons) on it; on SQLite one process holds the store, and the
    limiter of that process, shared by its threads, is the installation's, unless a run
    delivers from two processes (``overlap``: a run's helper may be started, or this is
    one): then SQLite's slots are in the database too.
    """
    rate = settings.target.rate_limit_per_s
    shared = rate > 0 and (store.engine.dialect.name == "postgresql" or overlap)
    schedule = SharedSchedule(store, clock=clock) if shared else None
    return RateLimiter(rate, clock=clock, sleep=sleep, schedule=schedule)


def helper_launcher(settings: Settings, actor: str) -> Overlap:
    """How ``run`` and the daemon start a delivery helper (``sync.deliver_helper``): this
    interpreter, a fresh process, the same settings (over its stdin), logging as this one."""

    def start(
        period: str, run_id: str, progress: Callable[[str, int], None] | None
    ) -> HelperProcess:
        request = {
            "period": period,
            "run_id": run_id,
            "actor": actor,
            "settings": settings_payload(settings),
            "logging": logging_setup(),
        }
        return spawn_helper(python_argv("sync.deliver_helper"), request, progress)

    return start


def mapping_choice(settings: Settings) -> MappingChoice:
    """The mapping version of each period kind, as the config picks them; a kind it names
    none for keeps, per period, the version the period was first planned with."""
    sync = settings.sync
    return MappingChoice(
        versions={k: get_mapping(sync.mapping_for(k)) for k in PeriodKind},
        settings={k: sync.mapping_setting(k) for k in PeriodKind},
        configured=frozenset(
            k
            for k in PeriodKind
            if k in sync.mapping_versions
            or (k is PeriodKind.SEMESTER and sync.mapping_version is not None)
        ),
    )


def _overlap(
    settings: Settings,
    actor: str,
    given: Overlap | None,
    *transports: httpx.BaseTransport | None,
) -> Overlap | None:
    if not settings.sync.overlap:
        return None
    if given is not None:
        return given
    return helper_launcher(settings, actor) if not any(transports) else None


@contextmanager
def build_app(
    settings: Settings,
    *,
    source_transport: httpx.BaseTransport | None = None,
    target_transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    actor: str = "cli",
    on_attempt: Callable[[Attempt], None] | None = None,
    create_store: bool = True,
    overlap: Overlap | None = None,
) -> Iterator[App]:
    """Build the application from settings; its HTTP clients close when the block ends.

    The transports are a seam for tests and benchmarks (``httpx.MockTransport``), and so
    is time: ``sleep`` (every wait) and ``monotonic`` (the delivery's pause gate, the time
    its retries have taken, and the rate limit's clock).
    ``actor`` is who the ledger names for what this application does ("daemon", "cli",
    "operator:<name>"); ``on_attempt`` sees every request to the target (metrics).
    ``create_store``: see ``build_store``'s ``create``. Credentials are checked first
    (``ConfigError``): the sandbox's go only to a loopback URL.
    ``overlap``: how a run starts its delivery helper (``[sync] overlap``); by default
    ``helper_launcher``, but not with a transport given (the helper could not use it).
    """
    source_id, source_secret = settings.source.credentials("source")
    target_id, target_secret = settings.target.credentials("target")
    store = build_store(settings, create=create_store)
    retry = RetryPolicy(
        max_attempts=settings.retry.max_attempts,
        initial_backoff_s=settings.retry.initial_backoff_s,
        max_backoff_s=settings.retry.max_backoff_s,
        max_elapsed_s=settings.retry.max_elapsed_s,
        sleep=sleep,
    )
    source_http = httpx.Client(
        base_url=settings.source.base_url,
        timeout=settings.source.timeout_s,
        transport=source_transport,
    )
    target_http = httpx.Client(
        base_url=settings.target.base_url,
        timeout=settings.target.timeout_s,
        transport=target_transport,
        limits=httpx.Limits(max_connections=settings.target.concurrency),
    )
    limiter: RateLimiter | None = None
    try:
        # The delivery helper a run may start (none: one process does it all).
        launcher = _overlap(settings, actor, overlap, source_transport, target_transport)
        limiter = rate_limiter(
            settings, store, sleep, overlap=launcher is not None, clock=monotonic
        )
        source = PmmClient(
            source_http,
            client_id=source_id,
            client_secret=source_secret,
            schema_version=settings.source.schema_version,
            page_size=settings.source.page_size,
            call=retry.call,
        )
        target = EkinerjaClient(
            target_http,
            client_id=target_id,
            client_secret=target_secret,
            scope=settings.target.scope,
            # Every request on the wire uses a send slot (token requests and repeats too).
            before_request=limiter.confirm if limiter.rate > 0 else None,
        )
        ledger = LedgerWriter(actor=actor)
        # Delivery: the pages of the outbox, claimed as this worker, each entry sent by the
        # sender, what came of it written by the writer (state and ledger).
        claims = OutboxClaims(store, worker=worker_id())
        attempt_log: AttemptLog = ledger if on_attempt is None else _Observed(ledger, on_attempt)
        writer = AnswerWriter(store=store, claims=claims, attempt_log=attempt_log)
        gate = PauseGate(clock=monotonic, sleep=sleep)
        sender = Sender(
            target=target,
            retry=retry,
            rate_limiter=limiter,
            gate=gate,
            breaker=CircuitBreaker(
                threshold=settings.target.breaker_failures,
                reset_s=settings.target.breaker_reset_s,
            ),
            writer=writer,
            monotonic=monotonic,
        )
        deliverer = Deliverer(
            pages=OutboxPages(store=store, claims=claims),
            sender=sender,
            writer=writer,
            claims=claims,
            gate=gate,
            concurrency=settings.target.concurrency,
        )
        # One record's way: the ingester reads its page, validates it and hands it to the
        # planner; the outbox writer writes the plan; the deliverer sends the outbox.
        planner = Planner(store)
        outbox_writer = OutboxWriter(store)
        ingester = Ingester(
            store=store,
            source=source,
            planner=planner,
            outbox_writer=outbox_writer,
            worker=deliverer.worker,
            batch_size=settings.source.page_size,
        )
        engine = Engine(
            store=store,
            source=source,
            ingester=ingester,
            planner=planner,
            outbox_writer=outbox_writer,
            deliverer=deliverer,
            mappings=mapping_choice(settings),
            audit=ledger,
            batch_size=settings.source.page_size,
            overlap=launcher,
        )
        yield App(settings, store, engine, source, target, retry=retry, rate_limiter=limiter)
    finally:
        source_http.close()
        target_http.close()
        if limiter is not None:
            limiter.close()
        store.engine.dispose()
