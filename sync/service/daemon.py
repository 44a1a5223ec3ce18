"""``ekinerja-sync daemon``: the service that runs unattended.

Jobs, declared from ``[daemon]`` at start-up (``sync.service.schedule``, where all use of
APScheduler is):

- ``sync``: ``Engine.run`` of every active period (``sync_cron``, or every ``sync_every_s``);
- ``retry``: ``Engine.retry_due`` of every active period and of every other period with
  requests in the outbox (``job_periods``), every ``retry_every_s``, and once at start-up, so
  what a stop or a ``run`` left in the outbox goes out at once;
- ``reconcile``: ``sync.reconcile`` of every active period (``reconcile_cron``; report only);
- ``notify``: each school told once per change of its action list (``[notify] cron``, worker 1).

A closed (or sealed) period is left out of the sync and retry jobs, and the log says so
(``periods.closed_skipped``): nothing is sent to it automatically (``ekinerja-sync periods``).

Active periods come from ``[sync] periods``, else from the calendar (``sync.calendar``): the
periods the source lists as running or still inside their ``batas_penilaian``. The listing is
asked again before every sync and reconcile job (and kept in the state store), so the daemon
moves to a new period the day the source lists it. Jobs run one at a time
(the sync and the retries never hand the same outbox entry to two threads); a retry that falls
while another job runs is skipped, the others wait their turn.

A clean stop (SIGTERM, SIGINT): no job starts any more, delivery starts no new request
(``Deliverer.stop``), waits between retries and rate-limit pauses end at once (the request
stays in the outbox for the next start, with the same idempotency key), requests in flight
finish; up to ``stop_grace_s``. Then the process exits 0. Work still running after the grace
period is abandoned as a crash would abandon it, which loses nothing (docs/design.md,
invariant 1).

With SQLite, one daemon per state store: the second one refuses to start (a lock file
``<database>.daemon.lock`` held for the daemon's lifetime). Several daemons need PostgreSQL.
``daemon --workers N`` runs N of them (``sync.service.supervisor``): worker 1 alone serves
the endpoint and the web console and reconciles; every worker syncs and retries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from connectors.errors import SyncError, Unreachable
from mappings.choice import MappingChoiceError
from mappings.model import ListedPeriod
from mappings.periods import PeriodListingError
from state.db import require_existing
from state.lifecycle import Lifecycle
from sync.bootstrap import App, build_app
from sync.delivery.results import Attempt
from sync.notify.build import build_notifier
from sync.notify.notifier import SchoolNotifier
from sync.operations.reconcile import reconcile_period
from sync.pipeline.periods import fetch_listing, stored_listing
from sync.service.calendar import resolve_periods
from sync.service.health import DaemonMetrics, HealthReport, HealthServer, health_report
from sync.service.lock import StateLock, StoreLocked
from sync.service.schedule import ScheduleError, declare_jobs, scheduler_logs
from sync.settings import Settings
from sync.version import VERSION
from sync.web.server import start_in_thread

__all__ = ["ACTOR", "Daemon", "DaemonError", "DaemonStopping", "StateLock"]

log = structlog.get_logger("ekinerja_sync.daemon")

ACTOR = "daemon"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _raise_if_unreachable(outage: str | None) -> None:
    """A job whose requests stayed unsent for want of e-Kinerja failed (``job.failed``, the
    ``error`` job metric); its records stay pending for the next retry."""
    if outage:
        raise Unreachable(f"e-Kinerja unreachable, requests stay pending: {outage}")


class DaemonError(Exception):
    """The daemon cannot start; the message says why and what to do."""


class DaemonStopping(Exception):
    """Raised out of a wait (retry backoff, rate limit, maintenance pause) once the daemon
    stops: the request is not sent and stays in the outbox."""


class Daemon:
    """The service: jobs on a schedule, the health/metrics endpoint, signals and a clean stop.

    ``run`` blocks until SIGTERM/SIGINT (``install_signals``, main thread only) or
    ``request_stop``. ``clock`` is the calendar's "now"; the transports are a seam for tests,
    passed to ``build_app``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        source_transport: httpx.BaseTransport | None = None,
        target_transport: httpx.BaseTransport | None = None,
        create_store: bool = True,
        worker: int = 1,
    ) -> None:
        self.settings = settings
        self.worker = worker
        # (configured, alive) worker processes for /healthz; set by the supervisor.
        self.workers: Callable[[], tuple[int, int]] | None = None
        # The CLI passes --create-store; False: no store yet is an error (StoreUnusable).
        self.create_store = create_store
        self.clock = clock
        self.timezone = ZoneInfo(settings.daemon.timezone)
        self.health_url: str | None = None
        self.console_url: str | None = None
        self.started = threading.Event()  # set once the jobs are scheduled and the endpoint is up
        self._transports = (source_transport, target_transport)
        self._stopping = threading.Event()
        self._signal: int | None = None
        self._work = threading.Lock()  # jobs run one at a time
        self._idle = threading.Condition()
        self._running = 0
        self._app: App | None = None
        self._metrics: DaemonMetrics | None = None
        self._notifier: SchoolNotifier | None = None
        self._scheduler: Any = None
        self._listing: list[ListedPeriod] = []
        self._fresh = False  # whether ``_listing`` is the source's answer of this job
        self._closed_said: dict[str, frozenset[str]] = {}  # per job: closed periods left out

    # -- what to sync ----------------------------------------------------------------------

    def refresh_periods(self) -> None:
        """Ask the source for its periods (kept in the state store); when it cannot answer,
        go on with the listing it gave last."""
        assert self._app is not None
        self._fresh = False
        try:
            self._listing = fetch_listing(self._app.source, self._app.store, clock=self.clock)
            self._fresh = True
        except (SyncError, PeriodListingError) as exc:
            message = exc.message if isinstance(exc, SyncError) else str(exc)
            if not self._listing:
                self._listing = stored_listing(self._app.store)
            log.warning(
                "periods.unavailable",
                error=message,
                using=[p.code for p in self._listing] or "none: nothing to sync until it answers",
            )

    def active_periods(self) -> list[str]:
        return resolve_periods(
            self.settings.sync.periods,
            self._listing,
            self.clock(),
            timezone=self.timezone,
            grace_days=self.settings.daemon.previous_period_grace_days,
        )

    def job_periods(self, name: str) -> list[str]:
        """The periods a job goes over: the active ones; for the retry job also every other
        period with requests in the outbox (``run --period 2025`` left them pending for "the
        daemon's retry", or a period stopped being active before they went); a closed
        period is no job's but reconcile's. Every job's periods are chosen here and nowhere
        else."""
        periods = self.active_periods()
        if name == "retry":
            assert self._app is not None
            periods += [
                p for p in self._app.store.reports.periods_with_pending() if p not in periods
            ]
        if name == "reconcile":  # it only reads e-Kinerja: a closed period is compared too
            return periods
        return self._open_only(name, periods)

    def _open_only(self, name: str, periods: list[str]) -> list[str]:
        """``periods`` without the closed and sealed ones: nothing is sent to them
        automatically (docs/design.md, invariant 9). Said once each time the set left out
        changes."""
        assert self._app is not None
        closed = Lifecycle(self._app.store.engine).not_sending(periods)
        said = frozenset(closed)
        if said != self._closed_said.get(name, frozenset()):
            self._closed_said[name] = said
            if closed:
                log.info(
                    "periods.closed_skipped",
                    job=name,
                    periods=sorted(closed),
                    note="closed: nothing is sent automatically; a change needs two operators "
                    "(ekinerja-sync actions request, then actions approve)",
                )
        return [p for p in periods if p not in closed]

    # -- running and stopping --------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop as on SIGTERM (from another thread)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """True from the moment a stop is asked for (a signal, ``request_stop``)."""
        return self._stopping.is_set() or self._signal is not None

    def run(self, *, install_signals: bool = True) -> bool:
        """Run until stopped; True when every job had ended within the grace period.

        Raises ``DaemonError`` when it cannot start (another daemon on the SQLite file, a
        wrong cron expression, an unreachable state store).
        """
        settings = self.settings
        lock = StateLock.for_url(settings.state.url)
        safe_url = make_url(settings.state.url).render_as_string(hide_password=True)
        clean = False
        with contextlib.ExitStack() as stack:
            if install_signals:  # first: a stop during start-up is a clean stop too
                stack.enter_context(self._signals())
            if not self.create_store:  # before the lock file is made next to it
                require_existing(settings.state.url)
            if lock is not None:
                try:
                    lock.acquire()
                except StoreLocked as exc:
                    raise DaemonError(str(exc)) from None
                stack.callback(lock.release)
            try:
                app = stack.enter_context(
                    build_app(
                        settings,
                        source_transport=self._transports[0],
                        target_transport=self._transports[1],
                        sleep=self._sleep,
                        actor=ACTOR,
                        on_attempt=self._observe,
                        create_store=self.create_store,
                    )
                )
            except SQLAlchemyError as exc:
                cause = getattr(exc, "orig", None) or type(exc).__name__
                raise DaemonError(f"the state store {safe_url} cannot be used: {cause}") from None
            metrics = DaemonMetrics(app.store)
            self._app, self._metrics = app, metrics
            self._notifier = stack.enter_context(  # a ConfigError stops the start, in one line
                build_notifier(settings, app.store, actor=ACTOR, sleep=self._sleep)
            )
            # The listing kept by the last run, until the first sync job asks the source: a
            # start does not wait on the source.
            self._listing = stored_listing(app.store)
            try:
                scheduler = declare_jobs(
                    settings.daemon,
                    self.timezone,
                    worker=self.worker,
                    job=self._job,
                    notify_cron=settings.notify.cron,
                )
            except ScheduleError as exc:
                raise DaemonError(str(exc)) from None
            self._scheduler = scheduler
            stack.enter_context(scheduler_logs())
            server = self._start_endpoint(metrics)
            if server is not None:
                stack.callback(server.stop)
            if settings.web.enabled and self.worker == 1:  # the console, inside (issue 8)
                console = start_in_thread(settings, app.store)
                stack.callback(console.stop)
                self.console_url = console.url
            scheduler.start()
            log.info(
                "daemon.started",
                version=VERSION,
                pid=os.getpid(),
                worker=self.worker,
                periods=self.active_periods(),
                jobs={job.id: str(job.next_run_time) for job in scheduler.get_jobs()},
                http=self.health_url,
                console=self.console_url,
                state=safe_url,
            )
            self.started.set()
            while not self._stopping.is_set() and self._signal is None:
                # The signal handler only writes _signal (taking no lock in a handler is what
                # keeps it from deadlocking); this loop notices it within the timeout.
                self._stopping.wait(0.2)
            clean = self._stop(scheduler)
            if not clean:
                # Jobs still hold the clients, the database and the SQLite lock: leave them
                # to the end of the process (the CLI exits at once) instead of closing them
                # under the jobs' feet.
                stack.pop_all()
        return clean

    def _stop(self, scheduler: Any) -> bool:
        assert self._app is not None
        grace = self.settings.daemon.stop_grace_s
        name = signal.Signals(self._signal).name if self._signal is not None else "request"
        log.info("daemon.stopping", signal=name, grace_s=grace, jobs_running=self._running)
        started = time.monotonic()
        self._stopping.set()
        deliverer = self._app.engine.deliverer
        deliverer.stop.set()
        scheduler.shutdown(wait=False)
        deadline = started + grace
        with self._idle:
            while self._running and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(min(left, 0.1))
            clean = self._running == 0
        took = round(time.monotonic() - started, 2)
        if clean:
            log.info("daemon.stopped", took_s=took)
        else:
            log.warning(
                "daemon.stopped",
                took_s=took,
                abandoned_jobs=self._running,
                note="requests not answered stay in the outbox and go out on the next start",
            )
        return clean

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self._signal = signum

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _sleep(self, seconds: float) -> None:
        """Every wait of the application (backoff, rate limit, maintenance) ends on a stop."""
        if self._stopping.wait(max(seconds, 0.0)):
            raise DaemonStopping("the daemon is stopping")

    def _observe(self, attempt: Attempt) -> None:
        if self._metrics is not None:  # made once the store exists, before any job runs
            self._metrics.observe_attempt(attempt)

    # -- the endpoint ------------------------------------------------------------------------

    def _start_endpoint(self, metrics: DaemonMetrics) -> HealthServer | None:
        config = self.settings.daemon
        if not config.http_bind or self.worker != 1:  # one endpoint for all the workers
            return None
        try:
            server = HealthServer(
                config.http_host, config.http_port, registry=metrics.registry, health=self.health
            )
        except OSError as exc:
            raise DaemonError(
                f"cannot listen on daemon.http_bind = {config.http_bind!r}: {exc.strerror}"
            ) from None
        server.start()
        self.health_url = server.url
        return server

    def health(self) -> HealthReport:
        assert self._app is not None
        running = self._scheduler is not None and bool(self._scheduler.running)
        workers = self.workers() if self.workers is not None else (1, 1)
        return health_report(
            self._app.store,
            self.active_periods(),
            now=self.clock(),
            running=running,
            workers=workers,
        )

    # -- the jobs ----------------------------------------------------------------------------

    def _job(self, name: str) -> Callable[[], None]:
        def run() -> None:
            self.run_job(name)

        return run

    def run_job(self, name: str) -> None:
        """Run one job (``sync``, ``retry``, ``reconcile``) over its periods (``job_periods``),
        after the job that is running ends; a retry is skipped instead of waiting."""
        body = {
            "sync": self._sync,
            "retry": self._retry,
            "reconcile": self._reconcile,
            "notify": self._notify,
        }[name]
        if self._stopping.is_set():
            return
        with self._idle:
            self._running += 1
        try:
            if not self._take_turn(skip_when_busy=name == "retry"):
                return
            try:
                self._each_period(name, body)
            finally:
                self._work.release()
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def _take_turn(self, *, skip_when_busy: bool) -> bool:
        if skip_when_busy:
            return self._work.acquire(blocking=False)
        while not self._work.acquire(timeout=0.2):
            if self._stopping.is_set():
                return False
        return True

    def _each_period(self, name: str, body: Callable[[str], None]) -> None:
        assert self._metrics is not None
        result = "ok"
        if name != "retry":  # the retries follow the periods the last sync saw
            try:
                self.refresh_periods()
            except DaemonStopping:
                log.info("job.interrupted", job=name, reason="the daemon is stopping")
                self._metrics.jobs.labels(name, "interrupted").inc()
                return
        try:
            periods = self.job_periods(name)
        except SQLAlchemyError as exc:  # the retry job asks the store which periods have work
            cause = getattr(exc, "orig", None) or type(exc).__name__
            log.error("job.failed", job=name, error=f"the state store did not answer: {cause}")
            self._metrics.jobs.labels(name, "error").inc()
            return
        for period in periods:
            if self._stopping.is_set():
                result = "interrupted"
                break
            with structlog.contextvars.bound_contextvars(job=name, period=period):
                try:
                    body(period)
                except DaemonStopping:
                    log.info("job.interrupted", reason="the daemon is stopping")
                    result = "interrupted"
                    break
                except SyncError as exc:
                    result = "error"
                    log.error("job.failed", error=exc.message, status=exc.status)
                except (PeriodListingError, MappingChoiceError) as exc:
                    result = "error"  # a setting to change: said plainly, no traceback
                    log.error("job.failed", error=str(exc))
                except Exception as exc:  # a job never takes the daemon down
                    result = "error"
                    log.error("job.failed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        self._metrics.jobs.labels(name, result).inc()

    def _sync(self, period: str) -> None:
        assert self._app is not None
        # Not asked twice; a stale listing (the source did not answer) is not used.
        listing = self._listing if self._fresh else None
        summary = self._app.engine.run(period, schools=self.settings.sync.schools, listing=listing)
        _raise_if_unreachable(summary.target_unreachable)

    def _retry(self, period: str) -> None:
        assert self._app is not None
        summary = self._app.engine.retry_due(period, schools=self.settings.sync.schools)
        if summary.requests_sent:
            log.info("retry.sent", run_id=summary.run_id, requests=summary.requests_sent)
        _raise_if_unreachable(summary.target_unreachable)

    def _reconcile(self, period: str) -> None:
        assert self._app is not None
        assert self._metrics is not None
        report = reconcile_period(
            self._app,
            period,
            schools=self.settings.sync.schools,
            should_stop=self._stopping.is_set,
        )
        self._metrics.discrepancies.set(period, report.counts())

    def _notify(self, period: str) -> None:
        assert self._notifier is not None
        self._notifier.run_today(period)
