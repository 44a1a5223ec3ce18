"""The daemon's HTTP endpoint: ``/healthz`` (JSON) and ``/metrics`` (Prometheus text format).

- ``/healthz``: 200 when the state store answers (and the daemon's scheduler runs, and all
  its worker processes live), else 503;
  the body names the last successful sync of each active period and its age in seconds.
- ``/metrics``: the metrics of ``DaemonMetrics``, in their own ``CollectorRegistry`` (never the
  process-global one). What the state store holds (records by status and period, the outbox
  depth: the requests that can go now, what waits on a person and why, last success) is read
  from it at scrape time, so the numbers are right after a restart and whoever wrote them
  (the daemon, an operator's ``run`` or ``replay``); what only this process sees (attempts
  by outcome, request latency) is counted as it happens, through ``build_app``'s
  ``on_attempt`` observer.

A small WSGI application under ``wsgiref`` in a thread of its own: two read-only routes need
no framework, and ``prometheus_client`` ships the WSGI app for ``/metrics``.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, Info, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlmodel import Session, col, func, select

from state.models import Run, SourceRecord, SourceStatus, SyncRecord
from state.store import StateStore
from state.store.reports import WAITING_REASONS
from sync.delivery.results import Attempt
from sync.notify.metrics import SchoolMessageCollector
from sync.version import VERSION

__all__ = ["DaemonMetrics", "HealthServer", "StoreCollector", "health_report", "last_successes"]

log = structlog.get_logger("ekinerja_sync.health")

PREFIX = "ekinerja_sync"
# Requests to e-Kinerja take milliseconds to its timeout (5 s by default); retries add more.
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The (kind, reason) series of waiting_records every period has, at 0 when nothing waits so.
_WAITING_SERIES = (
    ("skp", "plan_not_approved"),
    ("skp", "penilai_missing"),
    ("skp", "failed"),
    ("skp", "locked"),
    ("assessment", "plan_not_approved"),
    ("assessment", "not_final"),
    ("assessment", "penilai_missing"),
    ("assessment", "skp_failed"),
    ("assessment", "skp_cancelled"),
    ("assessment", "failed"),
    ("assessment", "locked"),
    ("record", "quarantined"),
)


def last_successes(session: Session) -> dict[str, dt.datetime]:
    """Per period: when its last successful sync run finished (every run the store holds)."""
    query = (
        select(Run.period, func.max(Run.finished_at))
        .where(Run.outcome == "ok", col(Run.finished_at).is_not(None))
        .group_by(col(Run.period))
    )
    return {period: at for period, at in session.exec(query) if at is not None}


class StoreCollector(Collector):
    """Gauges read from the state store at every scrape."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        records = GaugeMetricFamily(
            f"{PREFIX}_records",
            "Deliverables by period, kind (skp, assessment) and status; kind 'record' counts "
            "source records quarantined for bad data.",
            labels=["period", "kind", "status"],
        )
        outbox = GaugeMetricFamily(
            f"{PREFIX}_outbox_depth",
            "Requests in the outbox that can be sent to e-Kinerja now, by period (not those "
            "that wait on a person: see waiting_records).",
            labels=["period"],
        )
        waiting = GaugeMetricFamily(
            f"{PREFIX}_waiting_records",
            "Deliverables that go nowhere until a person acts, by period, kind and reason ("
            + ", ".join(WAITING_REASONS)
            + "); kind 'record': source records quarantined for bad data.",
            labels=["period", "kind", "reason"],
        )
        last = GaugeMetricFamily(
            f"{PREFIX}_last_success_timestamp_seconds",
            "When the last successful sync run of a period finished (Unix time).",
            labels=["period"],
        )
        up = GaugeMetricFamily(
            f"{PREFIX}_state_store_up", "1 when the state store answered this scrape, else 0."
        )
        try:
            with Session(self.store.engine) as session:
                by_status = session.exec(
                    select(
                        SyncRecord.period, SyncRecord.kind, SyncRecord.status, func.count()
                    ).group_by(col(SyncRecord.period), col(SyncRecord.kind), col(SyncRecord.status))
                ).all()
                quarantined = session.exec(
                    select(SourceRecord.period, func.count())
                    .where(SourceRecord.status == SourceStatus.QUARANTINED)
                    .group_by(col(SourceRecord.period))
                ).all()
                sendable = self.store.reports.sendable_depths(session)
                stuck = self.store.reports.waiting_on_people(session)
                successes = last_successes(session)
        except Exception as exc:  # the endpoint must answer even when the store does not
            log.warning("metrics.store_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        for period, kind, status, n in by_status:
            records.add_metric([period, str(kind), str(status)], n)
        for period, n in quarantined:
            records.add_metric([period, "record", SourceStatus.QUARANTINED.value], n)
        # Every period the store knows gets a depth, 0 included: a series that vanishes when
        # the outbox drains would look like a scrape that failed.
        periods = sorted({row[0] for row in by_status})
        depth = dict.fromkeys(periods, 0) | sendable
        for period, n in depth.items():
            outbox.add_metric([period], n)
        # Likewise every reason of every period (with the kind it comes with), 0 included.
        people = {(p, kind, reason): 0 for p in periods for kind, reason in _WAITING_SERIES}
        people |= {(p, kind, reason): n for p, kind, reason, n in stuck}
        for (period, kind, reason), n in sorted(people.items()):
            waiting.add_metric([period, kind, reason], n)
        for period, at in successes.items():
            last.add_metric([period], at.timestamp())
        up.add_metric([], 1)
        yield from (records, outbox, waiting, last, up)


class DaemonMetrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self, store: StateStore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.attempts = Counter(
            f"{PREFIX}_attempts",
            "Requests to e-Kinerja by outcome (delivered, retry, paused, held, rejected, "
            "locked, failed, superseded) and kind.",
            ["outcome", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Duration of requests to e-Kinerja that got an answer.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.jobs = Counter(
            f"{PREFIX}_job_runs",
            "Runs of the daemon's jobs (sync, retry, reconcile) by result (ok, error).",
            ["job", "result"],
            registry=self.registry,
        )
        self.build = Info(
            f"{PREFIX}_build", "The running release of ekinerja-sync.", registry=self.registry
        )
        self.build.info({"version": VERSION})
        self.discrepancies = _LastReconcile()
        self.registry.register(StoreCollector(store))
        self.registry.register(self.discrepancies)
        self.registry.register(SchoolMessageCollector(store))  # issue 25

    def observe_attempt(self, attempt: Attempt) -> None:
        """``build_app``'s ``on_attempt``: count every request and time it."""
        self.attempts.labels(attempt.outcome, attempt.entry.kind.value).inc()
        if attempt.duration_ms is not None:
            self.latency.observe(attempt.duration_ms / 1000)


class _LastReconcile(Collector):
    """What the last reconciliation of each period found, by kind of discrepancy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, dict[str, int]] = {}

    def set(self, period: str, counts: dict[str, int]) -> None:
        with self._lock:
            self._found[period] = dict(counts)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{PREFIX}_reconcile_discrepancies",
            "SKPs the last reconciliation found not as delivered on e-Kinerja, by period and "
            "problem (missing, other_version, changed, untracked: made outside the sync, error).",
            labels=["period", "problem"],
        )
        with self._lock:
            for period, counts in sorted(self._found.items()):
                for problem, n in sorted(counts.items()):
                    family.add_metric([period, problem], n)
        yield family


@dataclass(frozen=True)
class HealthReport:
    healthy: bool
    body: dict[str, Any]


def health_report(
    store: StateStore,
    periods: Iterable[str],
    *,
    now: dt.datetime,
    running: bool = True,
    workers: tuple[int, int] = (1, 1),
) -> HealthReport:
    """The ``/healthz`` answer: is the state store reachable, and how old is each active
    period's last successful sync. ``workers``: (configured, alive) worker processes; fewer
    alive than configured is unhealthy."""
    try:
        with Session(store.engine) as session:
            session.execute(text("SELECT 1"))
            successes = last_successes(session)
        store_state = "ok"
    except Exception as exc:  # reported, never raised: this is the health check
        successes = {}
        store_state = f"unreachable ({type(exc).__name__})"
    report: dict[str, dict[str, Any]] = {}
    for period in periods:
        at = successes.get(period)
        report[period] = {
            "last_success": at.isoformat().replace("+00:00", "Z") if at else None,
            "age_s": round((now - at).total_seconds(), 1) if at else None,
        }
    configured, alive = workers
    healthy = store_state == "ok" and running and alive >= configured
    body = {
        "version": VERSION,
        "status": "ok" if healthy else "unavailable",
        "state_store": store_state,
        "scheduler": "running" if running else "stopped",
        "periods": report,
        "workers": {"configured": configured, "alive": alive},
    }
    return HealthReport(healthy, body)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None  # scrapes every 15 s would flood the log


class HealthServer:
    """``/healthz`` and ``/metrics`` on ``host:port`` (port 0: any free port), in a thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry,
        health: Callable[[], HealthReport],
    ) -> None:
        self._metrics_app = make_wsgi_app(registry)
        self._health = health
        self._server = make_server(
            host,
            port,
            self._app,
            server_class=_ThreadingServer6 if ":" in host else _ThreadingServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-http", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            report = self._health()
            body = json.dumps(report.body, sort_keys=True).encode()
            status = "200 OK" if report.healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz or /metrics\n"]
