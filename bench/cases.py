"""Running the benchmark's cases: each measurement in a fresh subprocess
(``bench.engine_case``, ``bench.loopback_case``, ``bench.ratelimit_case``), each on a fresh
database (SQLite in a temporary directory; PostgreSQL ``bench_<random>``, dropped afterwards),
the report saved after every measurement. A measurement that takes longer than
``--max-seconds`` is stopped and reported as not finished.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.machine import ROOT, machine_info
from bench.report import TARGETS, engine_line, figures, workers_line

__all__ = ["Databases", "run_benchmark", "run_case"]


# -- databases ----------------------------------------------------------------------------


class Databases:
    """Fresh state stores: SQLite files in one temporary directory, PostgreSQL databases
    ``bench_<random>`` on the server of ``pg_url`` (all dropped at the end)."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self._tmp = tempfile.TemporaryDirectory(prefix="ekinerja-bench-")
        self._pg_names: list[str] = []

    def new(self, kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{self._tmp.name}/{uuid.uuid4().hex[:8]}.db"
        import psycopg

        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._pg_names.append(name)
        return f"{self.pg_url.rsplit('/', 1)[0]}/{name}"

    def _admin_dsn(self) -> str:
        return self.pg_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def close(self) -> None:
        if self._pg_names:
            import psycopg

            with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
                for name in self._pg_names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._tmp.cleanup()


# -- subprocesses -------------------------------------------------------------------------


def run_case(module: str, argv: list[str], max_seconds: float) -> dict[str, Any]:
    """Run ``python -m module argv --json-out F`` in a fresh process; its JSON, or
    ``{"error": ...}`` / ``{"timed_out": seconds}``."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = fh.name
    progress = out + ".progress"
    if module == "bench.engine_case":
        argv = [*argv, "--progress-file", progress]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(  # noqa: S603 (our own modules, our own arguments)
            [sys.executable, "-m", module, *argv, "--json-out", out],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=max_seconds,
        )
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return {"error": " | ".join(tail)}
        return json.loads(Path(out).read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except subprocess.TimeoutExpired:
        result: dict[str, Any] = {"timed_out": time.perf_counter() - t0}
        with contextlib.suppress(OSError, ValueError):
            result["progress"] = json.loads(Path(progress).read_text(encoding="utf-8"))
        return result
    finally:
        for path in (out, progress):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _modes(args: argparse.Namespace) -> list[bool]:
    """Without overlap, with it, or both (``--overlap``: off, on, both)."""
    mode = getattr(args, "overlap", "off")
    return [False, True] if mode == "both" else [mode == "on"]


def median_run(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The run of median seconds, with every run's seconds (and the median delivery phase):
    one noisy run does not decide (issue 28). An unfinished run is reported as such."""
    unfinished = [r for r in runs if "seconds" not in r]
    if unfinished:
        return unfinished[0]
    ordered = sorted(runs, key=lambda r: r["seconds"])
    row = dict(ordered[(len(ordered) - 1) // 2])
    row["runs_seconds"] = [r["seconds"] for r in runs]
    if all("deliver_seconds" in r for r in runs):
        delivery = sorted(r["deliver_seconds"] for r in runs)
        row["deliver_seconds"] = delivery[(len(delivery) - 1) // 2]
        row["runs_deliver_seconds"] = [r["deliver_seconds"] for r in runs]
    row["records_per_s"] = n / row["seconds"]
    if "requests" in row:  # the naive loop
        row["requests_per_s"] = row["requests"] / row["seconds"] if row["seconds"] else 0.0
    return row


def _engine_rows(
    args: argparse.Namespace,
    databases: Databases,
    db: str,
    n: int,
    overlap: bool,
    common: list[str],
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[str]]:
    """(a) ``--repeat`` times, each on a fresh store: the median row, and the stores."""
    urls, runs = [], []
    mode = "with overlap" if overlap else "one process"
    for i in range(args.repeat):
        urls.append(databases.new(db))
        say(f"(a) engine, {db}, N={n:,}, {mode}, run {i + 1} of {args.repeat} ...")
        argv = ["--mode", "first", "--db-url", urls[-1], "--n", str(n), *common]
        runs.append(run_case("bench.engine_case", argv + ["--overlap"] * overlap, args.max_seconds))
    return {"db": db, "n": n, "overlap": overlap, **median_run(runs, n)}, urls


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the cases ----------------------------------------------------------------------------


def run_benchmark(args: argparse.Namespace, say: Callable[[str], None] = _say) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    report: dict[str, Any] = {
        "machine": machine_info(args.pg_url if "postgres" in dbs else None),
        "settings": {
            "sizes": sizes,
            "dbs": dbs,
            "per_school": args.per_school,
            "concurrency": args.concurrency,
            "latency_ms": args.latency_ms,
            "rate_limit_per_s": args.rate_limit,
            "loopback_world": {"schools": args.loop_schools, "teachers": args.loop_teachers},
            "max_seconds": args.max_seconds,
        },
        "engine": [],
        "rerun": [],
        "workers": [],
        "naive_inprocess": [],
        "loopback": None,
        "rate_limit": None,
        "profile": None,
        "targets": TARGETS,
    }

    def save() -> None:  # after every measurement: a stopped run keeps what it measured
        if getattr(args, "json_path", None):
            Path(args.json_path).write_text(json.dumps(report, indent=2), encoding="utf-8")

    databases = Databases(args.pg_url)
    common = ["--per-school", str(args.per_school), "--concurrency", str(args.concurrency)]
    try:
        for db in dbs:
            for n in sizes:
                url = ""
                first: dict[str, Any] = {}
                for overlap in _modes(args):
                    row, urls = _engine_rows(args, databases, db, n, overlap, common, say)
                    report["engine"].append(row)
                    save()
                    say("    " + engine_line(row))
                    if not overlap:
                        first, url = row, urls[0]
                if not url:  # overlap alone was asked for: (c) and (d) on its store
                    first, url = row, urls[0]
                row = first
                if (
                    args.tracemalloc
                    and "seconds" in first
                    and db == "sqlite"
                    and n <= args.tracemalloc_max_n
                ):
                    say(f"    tracemalloc run, {db}, N={n:,} ...")
                    mem = run_case(
                        "bench.engine_case",
                        [
                            "--mode",
                            "first",
                            "--db-url",
                            databases.new(db),
                            "--n",
                            str(n),
                            "--tracemalloc",
                            *common,
                        ],
                        args.max_seconds,
                    )
                    row["tracemalloc_peak_mb"] = mem.get("tracemalloc_peak_mb")
                    row["tracemalloc_run_max_rss_mb"] = mem.get("max_rss_mb")
                    save()
                if db == "postgres" and args.workers > 1:
                    say(f"(a) engine, {db}, N={n:,}, {args.workers} worker processes ...")
                    shared = databases.new(db)
                    argv = ["--mode", "first", "--db-url", shared, "--n", str(n), *common]
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(max_workers=args.workers) as pool:
                        runs = list(
                            pool.map(
                                run_case,
                                ["bench.engine_case"] * args.workers,
                                [argv] * args.workers,
                                [args.max_seconds] * args.workers,
                            )
                        )
                    wall = time.perf_counter() - t0
                    done = [r for r in runs if "seconds" in r]
                    report["workers"].append(
                        {
                            "db": db,
                            "n": n,
                            "workers": args.workers,
                            "runs": runs,
                            "wall_seconds": wall,
                            "seconds": max((r["seconds"] for r in done), default=None),
                            "records_per_s": (
                                n / max(r["seconds"] for r in done)
                                if len(done) == len(runs)
                                else None
                            ),
                            # Each record once: the sum over the workers is what one sends.
                            "requests_sent": sum(r.get("requests_sent", 0) for r in done),
                            "source_requests": sum(r.get("source_requests", 0) for r in done),
                        }
                    )
                    save()
                    say("    " + workers_line(report["workers"][-1]))
                if "seconds" not in first:
                    continue
                # (c) right away, on the same store (another release between the two runs
                # could find the store's schema behind).
                say(f"(c) rerun, {db}, N={n:,} ...")
                rerun = run_case(
                    "bench.engine_case",
                    ["--mode", "rerun", "--db-url", url, "--n", str(n), *common],
                    args.max_seconds,
                )
                report["rerun"].append({"db": db, "n": n, **rerun})
                save()
                if db == dbs[0]:
                    say(f"(d) naive baseline in-process, N={n:,}, {args.repeat} times ...")
                    naive = median_run(
                        [
                            run_case(
                                "bench.engine_case",
                                ["--mode", "naive", "--db-url", url, "--n", str(n)],
                                args.max_seconds,
                            )
                            for _ in range(args.repeat)
                        ],
                        n,
                    )
                    report["naive_inprocess"].append({"n": n, **naive})
                    save()
        if not args.no_loopback:
            say(
                f"(b) loopback: L={args.latency_ms:g} ms, C={args.concurrency}, "
                f"R={args.rate_limit:g}/s ..."
            )
            loop_db = dbs[0]
            argv = [
                "--schools",
                str(args.loop_schools),
                "--teachers",
                str(args.loop_teachers),
                "--latency-ms",
                str(args.latency_ms),
                "--rate-limit",
                str(args.rate_limit),
                "--concurrency",
                str(args.concurrency),
                "--db-url",
                databases.new(loop_db),
                "--db-url-limited",
                databases.new(loop_db),
                "--naive",
                "--naive-max",
                str(args.naive_max),
            ]
            report["loopback"] = {
                "db": loop_db,
                **run_case("bench.loopback_case", argv, args.max_seconds * 3),
            }
            save()
        if not args.no_loopback and args.rate_limit > 0 and "postgres" in dbs:
            say(f"(b) under R={args.rate_limit:g}/s, 1, 2 and 4 workers on PostgreSQL ...")
            argv = ["--db-urls", ",".join(databases.new("postgres") for _ in range(3))]
            argv += ["--rate-limit", str(args.rate_limit), "--latency-ms", str(args.latency_ms)]
            argv += ["--concurrency", str(args.concurrency), "--schools", str(args.loop_schools)]
            argv += ["--teachers", str(args.loop_teachers)]
            report["rate_limit"] = run_case("bench.ratelimit_case", argv, args.max_seconds * 3)
            save()
        if not args.no_profile:
            n = args.profile_n or min(sizes)
            say(f"profile: engine, sqlite, N={n:,}, under cProfile ...")
            prof = run_case(
                "bench.engine_case",
                [
                    "--mode",
                    "profile",
                    "--db-url",
                    databases.new("sqlite"),
                    "--n",
                    str(n),
                    "--per-school",
                    str(args.per_school),
                    "--concurrency",
                    "1",
                    "--top",
                    "15",
                ],
                args.max_seconds * 4,
            )
            report["profile"] = {"n": n, "db": "sqlite", "concurrency": 1, **prof}
            save()
    finally:
        databases.close()
    report["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["figures"] = figures(report)
    return report
