"""Figures (a), (c) and (d, in-process): the engine over in-process mocks, one measurement per
process so peak memory figures do not contaminate each other.

Run by ``bench.run`` as ``python -m bench.engine_case --json-out FILE ...``; each call is one
of:

- ``--mode first``: a fresh state store, the whole ``engine.run(period)`` over N records
  (pull, validate, map, plan, state, outbox, delivery to the mock target), timed; peak
  memory as the process's max RSS (``resource.getrusage``) and, with ``--tracemalloc``, the
  Python heap's peak (``tracemalloc``; it slows the run, so that run is not the timed one);
- ``--mode rerun``: the same store and the same (unchanged) source again: seconds and
  requests sent;
- ``--mode naive``: the baseline: the requests the engine delivered (read back from the
  audit ledger, in delivery order) pushed again by a plain sequential loop with httpx and
  tenacity to a fresh mock target; then, for the ceiling, the same loop and the engine's
  own request path alone (``request_path``) to a target that costs nothing;
- ``--mode profile``: ``--mode first`` under cProfile (every delivery thread included).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import httpx

from bench.mocks import FreeTarget, PmmMock, TargetMock
from bench.overlap_case import Launcher
from bench.result import write_result
from bench.world import LeanWorld

PERIOD = "2025-1"
# The token request of the loops that are not the engine (the sandbox's client credentials).
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": "sandbox",
    "client_secret": "sandbox-secret",
    "scope": "skp.write",
}


def quiet_logs() -> None:
    """Only critical log lines, as JSON: a measurement's output is its figures."""
    from sync.logs import configure_logging

    configure_logging(json=True, level="CRITICAL")


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _settings(db_url: str, concurrency: int, page_size: int, overlap: bool = False) -> Any:
    from sync.settings import load_settings

    return load_settings(
        None,
        overrides={
            "state": {"url": db_url},
            # In-process transports; *.localhost is loopback to sync.settings, which refuses
            # the sandbox credentials for any other host.
            "source": {
                "base_url": "http://pmm.bench.localhost",
                "page_size": page_size,
                "client_id": "sandbox",
                "client_secret": "sandbox-secret",
            },
            "target": {
                "base_url": "http://ekinerja.bench.localhost",
                "client_id": "sandbox",
                "client_secret": "sandbox-secret",
                "rate_limit_per_s": 0,
                "concurrency": concurrency,
            },
            "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.1, "max_attempts": 3},
            "sync": {"overlap": overlap},
        },
    )


class Phases:
    """Wall-clock marks of the pull and delivery phases, from the engine's progress hook;
    with ``progress_file``, the counts so far are written there every 2 s (so a run stopped
    for taking too long still says how far it got)."""

    def __init__(self, progress_file: str | None = None) -> None:
        self.marks: dict[str, float] = {}
        self.counts: dict[str, int] = {"pull": 0, "deliver": 0}
        self._lock = threading.Lock()
        self._file = progress_file
        self._start = time.perf_counter()
        self._written = 0.0

    def __call__(self, kind: str, count: int) -> None:
        now = time.perf_counter()
        with self._lock:
            self.marks.setdefault(f"{kind}_first", now)
            self.marks[f"{kind}_last"] = now
            self.counts[kind] = self.counts.get(kind, 0) + count
            if self._file and now - self._written > 2:
                self._written = now
                with open(self._file, "w", encoding="utf-8") as fh:
                    json.dump({**self.counts, "seconds": now - self._start}, fh)


@contextmanager
def _app(
    args: argparse.Namespace, world: LeanWorld, target: TargetMock
) -> Iterator[tuple[Any, PmmMock, Launcher | None]]:
    from sync.bootstrap import build_app

    source = PmmMock(world)
    overlap = getattr(args, "overlap", False)
    settings = _settings(args.db_url, args.concurrency, args.page_size, overlap)
    launcher = Launcher(settings) if overlap else None
    with build_app(
        settings,
        source_transport=source.transport(),
        target_transport=target.transport(),
        overlap=launcher,
    ) as app:
        yield app, source, launcher


class _StatementTimes:
    """The state store's SQL by statement: executions, rows (an ``executemany`` counts its
    rows) and seconds in the driver, from the engine's cursor events. The events fire once
    per statement, not per row (a few hundred at 10,000 records), so the timed run pays next
    to nothing for them."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self._engine = engine
        self._started: dict[int, float] = {}
        self.seconds: dict[str, float] = {}
        self.executions: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        took = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        words = statement.split()
        # "UPDATE outbox SET state", "INSERT INTO ledger_entry", "SELECT outbox.id": enough
        # to tell the statements of a run apart.
        key = " ".join(words[:4] if words[0].upper() == "UPDATE" else words[:3])
        with self._lock:
            self.seconds[key] = self.seconds.get(key, 0.0) + took
            self.executions[key] = self.executions.get(key, 0) + 1
            self.rows[key] = self.rows.get(key, 0) + (len(parameters) if many else 1)

    def report(self) -> list[dict[str, Any]]:
        """Every statement, the longest first."""
        return [
            {
                "statement": key,
                "seconds": seconds,
                "executions": self.executions[key],
                "rows": self.rows[key],
            }
            for key, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        ]


def _engine_run(args: argparse.Namespace, *, profile: bool = False) -> dict[str, Any]:
    world = LeanWorld(args.n, per_school=args.per_school, seed=args.seed)
    target = TargetMock()
    with _app(args, world, target) as (app, source, launcher):
        rss_before = _max_rss_mb()
        phases = Phases(args.progress_file)
        profiler = _ThreadProfiles() if profile else None
        if args.tracemalloc:
            tracemalloc.start()
        statements = _StatementTimes(app.store.engine)
        cpu0, t0 = _cpu_s(), time.perf_counter()
        helper_cpu0 = _cpu_s(resource.RUSAGE_CHILDREN)
        if profiler is not None:
            with profiler.active():
                summary = app.engine.run(PERIOD, progress=phases)
        else:
            summary = app.engine.run(PERIOD, progress=phases)
        seconds = time.perf_counter() - t0
        cpu = _cpu_s() - cpu0
        helper_cpu = _cpu_s(resource.RUSAGE_CHILDREN) - helper_cpu0  # the ended helpers'
        statements.close()
        heap_peak = None
        if args.tracemalloc:
            heap_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        marks = phases.marks
        # The delivery phase: from the end of the pull, or with overlap from the first
        # request delivered (during the pull), to the last.
        pull_end = marks.get("pull_last", t0)
        deliver_start = min(pull_end, marks.get("deliver_first", pull_end))
        counts = dict(target.counts)
        for kind, n in (launcher.target_counts() if launcher is not None else {}).items():
            counts[kind] = counts.get(kind, 0) + n
        result: dict[str, Any] = {
            "n": args.n,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "helper_cpu_seconds": helper_cpu,
            "records_per_s": args.n / seconds,
            "pull_seconds": marks.get("pull_last", t0) - t0,
            "deliver_seconds": (
                marks["deliver_last"] - deliver_start if "deliver_last" in marks else 0.0
            ),
            "overlap": launcher is not None,
            "helper_requests": sum(counts.values()) - target.requests,
            "requests_sent": sum(counts.values()),
            "target_counts": counts,
            "source_requests": source.requests,
            "summary_requests_sent": summary.requests_sent,
            "pulled": summary.pulled,
            "quarantined": summary.quarantined,
            "outcomes": {f"{k}.{o}": c for (k, o), c in sorted(summary.outcomes.items()) if c},
            "max_rss_mb": _max_rss_mb(),
            "rss_before_run_mb": rss_before,
            "tracemalloc_peak_mb": heap_peak,
            "statements": statements.report(),
        }
        if profiler is not None:
            result["profile"] = profiler.report(args.top)
            if args.pstats_out:
                profiler.dump(args.pstats_out)
        return result


# -- naive baseline -------------------------------------------------------------------------


def ledger_rows(db_url: str, sql: str) -> list[Any]:
    """The rows of one query of the state store (the ledger, after a measured run)."""
    from sqlalchemy import text

    from state.db import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def delivered_requests(db_url: str) -> list[tuple[str, str, str]]:
    """(action, nip, body) of every delivered request, in the order the engine sent them."""
    rows = ledger_rows(
        db_url,
        "SELECT action, nip, request_body FROM ledger_entry "
        "WHERE outcome = 'delivered' ORDER BY seq",
    )
    return [(str(a), str(n), str(b)) for a, n, b in rows]


def naive_push(client: httpx.Client, requests: list[tuple[str, str, str]]) -> tuple[int, float]:
    """The baseline: one request after the other, httpx + tenacity, no state, no ledger.

    Returns (requests sent, seconds). The SKP id for a penilaian comes from the SKP answer.
    """
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    retrying = Retrying(
        retry=retry_if_exception_type((httpx.TransportError, httpx.HTTPStatusError)),
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.05, max=2),
        reraise=True,
    )
    token = client.post("/oauth/token", data=TOKEN_FORM).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    skp_ids: dict[str, str] = {}
    versions: dict[str, int] = {}
    sent = 0

    def post(method: str, path: str, body: str, key: str, extra: dict[str, str]) -> httpx.Response:
        response = client.request(
            method,
            path,
            content=body.encode(),
            headers={
                **auth,
                **extra,
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        if response.status_code == 429 or response.status_code >= 500:
            response.raise_for_status()
        return response

    t0 = time.perf_counter()
    for i, (action, nip, body) in enumerate(requests):
        key = f"naive-{i}-{action}-{nip}"
        if action == "create_skp":
            answer = retrying(post, "POST", "/api/v1/skp", body, key, {})
            if answer.status_code < 300:
                skp_ids[nip] = answer.json()["id_skp"]
                versions[nip] = answer.json().get("versi", 1)
        elif action == "update_skp":
            skp_id = skp_ids.get(nip, f"SKP-{nip}")
            answer = retrying(
                post,
                "PUT",
                f"/api/v1/skp/{skp_id}",
                body,
                key,
                {"If-Match": str(versions.get(nip, 1))},
            )
        else:
            skp_id = skp_ids.get(nip, f"SKP-{nip}")
            answer = retrying(post, "POST", f"/api/v1/skp/{skp_id}/penilaian", body, key, {})
        sent += 1
    return sent, time.perf_counter() - t0


def request_path(args: argparse.Namespace, requests: list[tuple[str, str, str]]) -> float:
    """The engine's own request path alone: the same requests, one after the other, through
    ``EkinerjaClient`` and the engine's ``RetryPolicy`` as the delivery sends them, to a
    ``FreeTarget``, with no state, no claims and no ledger. Returns the seconds.

    What a request costs any engine built on this client: the floor under (a) and (d)."""
    from sync.bootstrap import build_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(f"sqlite:///{tmp}/path.db", 1, args.page_size)
        target = FreeTarget()
        with build_app(
            settings,
            source_transport=PmmMock(LeanWorld(1)).transport(),
            target_transport=target.transport(),
        ) as app:
            call, client = app.retry.call, app.target
            t0 = time.perf_counter()
            for i, (action, nip, body) in enumerate(requests):
                key = f"path-{i}-{action}-{nip}"
                if action == "create_skp":
                    call(partial(client.create_skp, body, idempotency_key=key))
                elif action == "update_skp":
                    call(partial(client.update_skp, "SKP-0", body, version=1, idempotency_key=key))
                else:
                    call(partial(client.create_assessment, "SKP-0", body, idempotency_key=key))
            seconds = time.perf_counter() - t0
        if target.requests != len(requests):
            raise RuntimeError(f"sent {target.requests} of {len(requests)} requests")
    return seconds


def _naive(args: argparse.Namespace) -> dict[str, Any]:
    requests = delivered_requests(args.db_url)
    target = TargetMock()
    with httpx.Client(base_url="http://ekinerja.bench", transport=target.transport()) as client:
        sent, seconds = naive_push(client, requests)
    # The ceiling: the same loop, then the engine's request path alone, against a target
    # that costs nothing (what is left is what a request costs the client).
    free = FreeTarget()
    with httpx.Client(base_url="http://ekinerja.bench", transport=free.transport()) as client:
        free_sent, free_seconds = naive_push(client, requests)
    path_seconds = request_path(args, requests)
    return {
        "n": args.n,
        "requests": sent,
        "seconds": seconds,
        "requests_per_s": sent / seconds if seconds else 0.0,
        "records_per_s": args.n / seconds if seconds else 0.0,
        "target_requests": target.requests,
        "free_target": {
            "naive_seconds": free_seconds,
            "naive_requests_per_s": free_sent / free_seconds,
            "naive_records_per_s": args.n / free_seconds,
            "request_path_seconds": path_seconds,
            "request_path_requests_per_s": free_sent / path_seconds,
            "request_path_records_per_s": args.n / path_seconds,
        },
    }


# -- profile ------------------------------------------------------------------------------


class _ThreadProfiles:
    """cProfile of the calling thread and of every delivery (on the pool's threads)."""

    def __init__(self) -> None:
        self.main = cProfile.Profile()
        self.workers: list[cProfile.Profile] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[None]:
        from sync.delivery import deliver

        original: Callable[..., Any] = deliver.Deliverer._deliver_claimed
        local = self._local

        def profiled(inner_self: Any, *a: Any, **k: Any) -> Any:
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile()
                local.depth = 0
                with self._lock:
                    self.workers.append(prof)
            local.depth += 1
            if local.depth == 1:
                prof.enable()
            try:
                return original(inner_self, *a, **k)
            finally:
                local.depth -= 1
                if local.depth == 0:
                    prof.disable()

        deliver.Deliverer._deliver_claimed = profiled  # type: ignore[method-assign,assignment]
        self.main.enable()
        try:
            yield
        finally:
            self.main.disable()
            deliver.Deliverer._deliver_claimed = original  # type: ignore[method-assign]

    def dump(self, path: str) -> None:
        import pstats

        pstats.Stats(self.main, *self.workers).dump_stats(path)

    def report(self, top: int) -> dict[str, Any]:
        from bench.profile import summarize

        return summarize(self.main, self.workers, top)


# -- entry --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("first", "rerun", "naive", "profile"), required=True)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--per-school", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--overlap", action="store_true", help="deliver from a second process during the pull"
    )
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json-out")
    parser.add_argument("--progress-file")
    parser.add_argument("--pstats-out", help="with --mode profile: the merged cProfile data")
    args = parser.parse_args(argv)
    quiet_logs()
    if args.mode == "naive":
        result = _naive(args)
    else:
        result = _engine_run(args, profile=args.mode == "profile")
        result["mode"] = args.mode
    write_result(result, args.json_out)


if __name__ == "__main__":
    main()
