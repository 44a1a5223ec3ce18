"""The benchmark of ekinerja-sync (issue #7): how fast a semester syncs, how cost grows, and
against what limit. ``.venv/bin/python -m bench.run`` (see docs/performance.md).

Prints four figures and the machine they were measured on:

a. engine: N source records through pull, validate, map, plan, state, outbox and delivery,
   with both APIs answered in-process (``httpx.MockTransport``): records/s, peak memory
   (max RSS of a fresh process; Python heap peak by tracemalloc, in a separate run), per
   state store (SQLite file, PostgreSQL database) and per N;
b. end to end over loopback against the sandbox with latency L per target request and C
   delivery threads: achieved requests/s in the delivery phase against C/L, and against the
   target's rate limit R when one is set; under R also with 1, 2 and 4 worker processes on
   one PostgreSQL (``bench.ratelimit_case``: accepted requests/s, 429s, the worst second);
c. a rerun of the largest N with no source change: seconds and requests sent (must be 0);
d. a naive baseline (a sequential httpx + tenacity loop pushing the same requests), in the
   settings of (a) and (b), and the ratio; in-process also the ceiling: the same loop, and
   the engine's request path alone, against a target that costs nothing.

Every measurement runs in a fresh subprocess; each gets a fresh database (SQLite in a
temporary directory; PostgreSQL ``bench_<random>``, dropped afterwards). A measurement that
takes longer than ``--max-seconds`` is stopped and reported as not finished.

This module reads the options; ``bench.cases`` runs the measurements, ``bench.machine`` says
what they ran on, ``bench.report`` judges the figures against their targets and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.cases import run_benchmark
from bench.report import render

__all__ = ["main", "parse_args", "render", "run_benchmark"]

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="The ekinerja-sync benchmark (issue #7)."
    )
    parser.add_argument("--sizes", help="record counts for (a), comma-separated [10000,100000]")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("EKINERJA_SYNC_BENCH_PG_URL", PG_DEFAULT)
    )
    parser.add_argument("--latency-ms", type=float, help="(b): added latency per request [50]")
    parser.add_argument("--concurrency", type=int, default=16, help="delivery threads C [16]")
    parser.add_argument("--rate-limit", type=float, help="(b): the target's rate limit R [100]")
    parser.add_argument("--per-school", type=int, default=40, help="(a): records per school [40]")
    parser.add_argument("--loop-schools", type=int, help="(b): schools in the sandbox [50]")
    parser.add_argument("--loop-teachers", type=int, help="(b): guru per school [29]")
    parser.add_argument(
        "--naive-max", type=int, help="(d) over loopback: at most this many requests (0: all)"
    )
    parser.add_argument(
        "--max-seconds", type=float, help="stop a measurement after this long [1800]"
    )
    parser.add_argument("--profile-n", type=int, help="records for the profile [the smallest size]")
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    parser.add_argument(
        "--tracemalloc-max-n",
        type=int,
        default=10_000,
        help="the heap peak (a second, ~3x slower run, SQLite) up to this N [10000]",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="(a) on PostgreSQL: also N worker processes [2]"
    )
    parser.add_argument(
        "--overlap",
        choices=("off", "on", "both"),
        default="both",
        help="(a): deliver from a second process during the pull: off, on or both [both]",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="(a) and (d) in-process: runs each, median [3]"
    )
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-loopback", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, short latency: < 1 min")
    parser.add_argument("--json", dest="json_path", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "sizes": "500,1000" if quick else "10000,100000",
        "latency_ms": 20.0 if quick else 50.0,
        "rate_limit": 50.0 if quick else 100.0,
        "loop_schools": 10 if quick else 50,
        "loop_teachers": 9 if quick else 29,
        "naive_max": 200 if quick else 0,
        "max_seconds": 300.0 if quick else 1800.0,
    }
    if quick and "--repeat" not in (sys.argv[1:] if argv is None else argv):
        args.repeat = 1
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if quick and "--db" not in (sys.argv[1:] if argv is None else argv):
        args.db = "sqlite"
    if quick and "--no-tracemalloc" not in (sys.argv[1:] if argv is None else argv):
        args.tracemalloc = False  # the heap figure needs a second, slower run
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report = run_benchmark(args)
    print(render(report), flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
