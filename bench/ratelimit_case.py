"""Figure (b) under the target's rate limit R, with 1, 2 and 4 worker processes (issue 22).

The loopback case (b): the sandbox in a process of its own (``bench.loopback_case``), latency
L on every target request, answering 429 past R requests per client in any sliding second
(token requests take room too). Against it, for each worker count W, W processes on one
fresh PostgreSQL database sync the same period at once (as ``daemon --workers W`` does: they
share the work by the outbox claims, and ``target.rate_limit_per_s = R`` by the database's
send schedule). The sandbox counts what arrived (``/_sandbox/stats``, ``rate_window``):

- accepted requests/s: the requests it let through (token requests too) over the time from
  the first arrival to the last, and in the typical (median) whole second;
- the share answered 429 (of the API requests);
- the worst one-second window: the most arrivals in any one second, refused ones included;
- the send slots the workers gave up because they were too late for them (a busy machine:
  sent late, a request would crowd the next slots' ones).

``python -m bench.ratelimit_case --db-urls URL,URL,URL [--workers 1,2,4]`` prints JSON; the
URLs are empty PostgreSQL databases, one per worker count (``bench.run`` makes and drops them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.engine_case import ledger_rows, quiet_logs
from bench.loopback_case import PERIOD, sandbox_process, sandbox_stats
from bench.result import write_result

ROOT = Path(__file__).resolve().parent.parent


def _settings(db_url: str, urls: dict[str, Any], rate_limit: float, concurrency: int) -> Any:
    from sync.settings import load_settings

    return load_settings(
        None,
        overrides={
            "state": {"url": db_url},
            "source": {"base_url": urls["pmm"], "page_size": 500},
            "target": {
                "base_url": urls["ekinerja"],
                "rate_limit_per_s": rate_limit,
                "concurrency": concurrency,
                "timeout_s": 30,
            },
            # N worker processes are N senders: none starts a delivery helper besides.
            "sync": {"overlap": False},
        },
    )


def _work(args: argparse.Namespace) -> None:
    """One worker process: sync the period, as a daemon's worker would."""
    from sync.bootstrap import build_app

    quiet_logs()
    urls = {"pmm": args.pmm, "ekinerja": args.ekinerja}
    with build_app(_settings(args.db_url, urls, args.rate_limit, args.concurrency)) as app:
        app.engine.run(PERIOD)
        limiter = app.rate_limiter
    # What the parent reads: the send slots taken, and those given up late (a busy machine).
    sys.stdout.write(json.dumps({"slots": limiter.slots, "unused": limiter.slots_unused}) + "\n")


def _workers(
    count: int, db_url: str, urls: dict[str, Any], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """``count`` worker processes at once on ``db_url``; each one's exit code and slots."""
    from sync.bootstrap import build_store

    # The schema first, so the workers race on the work, not on creating tables.
    build_store(_settings(db_url, urls, args.rate_limit, args.concurrency)).engine.dispose()
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    argv = [
        sys.executable, "-m", "bench.ratelimit_case", "--work", "--db-url", db_url,
        "--pmm", urls["pmm"], "--ekinerja", urls["ekinerja"],
        "--rate-limit", str(args.rate_limit), "--concurrency", str(args.concurrency),
    ]  # fmt: skip
    procs = [
        subprocess.Popen(  # noqa: S603 (our module, our arguments)
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    done = []
    for proc in procs:
        out, _ = proc.communicate()
        said = out.strip().splitlines()
        done.append({"exit_code": proc.returncode, **(json.loads(said[-1]) if said else {})})
    return done


def measure(args: argparse.Namespace) -> dict[str, Any]:
    world = {"schools": args.schools, "teachers": args.teachers, "seed": args.seed}
    rows = []
    for count, db_url in zip(args.workers, args.db_urls, strict=True):
        with sandbox_process(
            **world, latency_ms=args.latency_ms, rate_limit=args.rate_limit
        ) as urls:
            t0 = time.perf_counter()
            workers = _workers(count, db_url, urls, args)
            wall = time.perf_counter() - t0
            stats = sandbox_stats(urls["ekinerja"])
        window = stats["rate_window"]
        let_through = window["accepted"] + window["tokens"]
        api = window["accepted"] + window["refused"]
        sustained = window["per_second"][1:-1]
        ((dead,),) = ledger_rows(
            db_url, "SELECT count(*) FROM sync_record WHERE upper(CAST(status AS TEXT)) = 'FAILED'"
        )
        rows.append(
            {
                "workers": count,
                "exit_codes": [w["exit_code"] for w in workers],
                "slots": sum(w.get("slots", 0) for w in workers),
                "slots_unused": sum(w.get("unused", 0) for w in workers),
                "wall_seconds": wall,
                "records_in_world": urls["records"],
                "stored": stats["skp_created"] + stats["penilaian_created"] + stats["skp_updated"],
                "accepted": window["accepted"],
                "tokens": window["tokens"],
                "refused_429": window["refused"],
                "share_429": window["refused"] / api if api else 0.0,
                "accepted_per_s": let_through / window["span_s"] if window["span_s"] else 0.0,
                "median_second": statistics.median(sustained) if sustained else None,
                "worst_window": window["worst_window"],
                "span_s": window["span_s"],
                "dead": int(dead),
            }
        )
    return {
        "rate_limit_per_s": args.rate_limit,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "rows": rows,
    }


def lines(result: dict[str, Any] | None) -> list[str]:
    """The figure's lines in ``bench.run``'s summary."""
    if not result:
        return []
    if "rows" not in result:
        return [f"(b) under the rate limit, 1/2/4 workers: {result}"]
    r = result["rate_limit_per_s"]
    out = [
        f"(b) under the target's rate limit R={r:g}/s (a sliding second, token requests "
        f"counted), W worker processes on one PostgreSQL, C={result['concurrency']} each, "
        f"L={result['latency_ms']:g} ms:",
        f"  {'W':>3}{'accepted/s':>12}{'of R':>7}{'median s':>10}{'429s':>7}{'worst 1 s':>11}"
        f"{'requests':>10}{'dead':>6}{'slots unused':>14}",
    ]
    for row in result["rows"]:
        median = row["median_second"]
        out.append(
            f"  {row['workers']:>3}{row['accepted_per_s']:>12.1f}{row['accepted_per_s'] / r:>7.0%}"
            f"{(f'{median:g}' if median is not None else '-'):>10}{row['share_429']:>7.1%}"
            f"{row['worst_window']:>11}{row['accepted'] + row['tokens']:>10,}{row['dead']:>6}"
            f"{row['slots_unused'] / max(1, row['slots']):>14.1%}"
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--pmm", help=argparse.SUPPRESS)
    parser.add_argument("--ekinerja", help=argparse.SUPPRESS)
    parser.add_argument("--db-urls", help="empty PostgreSQL databases, one per worker count")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--schools", type=int, default=10)
    parser.add_argument("--teachers", type=int, default=9)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--rate-limit", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.work:
        _work(args)
        return
    args.workers = [int(w) for w in args.workers.split(",")]
    args.db_urls = args.db_urls.split(",")
    write_result(measure(args), args.json_out)


if __name__ == "__main__":
    main()
