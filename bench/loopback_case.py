"""Figures (b) and (d, over loopback): the engine against the sandbox servers over real HTTP,
with a fixed latency L added to every target request and C delivery threads.

The sandbox (``running_sandbox``, uvicorn on 127.0.0.1) runs in a process of its own
(``python -m bench.loopback_case --serve``), so the engine does not share its interpreter
lock with the servers. The engine's process measures the delivery phase (from the end of the
pull to the last delivery) and divides the requests the target counted in that phase by its
length; the limit is C/L, or R when the target enforces a rate limit R (then the client is
set to R as well, ``target.rate_limit_per_s``).

The naive baseline pushes the same requests (read back from the engine's ledger, in the order
the engine delivered them) one after the other with httpx + tenacity to a fresh sandbox with
the same latency. Before it, on that sandbox, the rig's own ceiling (``bare_threads``): C
threads with nothing but an ``httpx.Client``, each sending listing requests that cost the
sandbox next to nothing: what any client of C threads gets from this sandbox at this latency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

from bench.engine_case import (
    TOKEN_FORM,
    Phases,
    delivered_requests,
    ledger_rows,
    naive_push,
    quiet_logs,
)
from bench.result import write_result

PERIOD = "2025-1"


# -- the sandbox process ------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> None:
    from connectors.sandbox import Faults, generate_world, running_sandbox

    world = generate_world(
        schools=args.schools,
        teachers_per_school=args.teachers,
        seed=args.seed,
        periods=[PERIOD],
        schema_version=2,
    )
    faults = Faults(latency_s=args.latency_ms / 1000, rate_limit_per_s=args.rate_limit)
    with running_sandbox(world, faults=faults, schema_version=2) as box:
        sys.stdout.write(
            json.dumps(
                {"pmm": box.pmm_url, "ekinerja": box.ekinerja_url, "records": len(world.records())}
            )
            + "\n"
        )
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes our stdin


@contextmanager
def sandbox_process(
    *, schools: int, teachers: int, seed: int, latency_ms: float, rate_limit: float
) -> Iterator[dict[str, Any]]:
    """A sandbox in a child process; yields its URLs; stopped when the block ends."""
    proc = subprocess.Popen(  # noqa: S603 (this module, our own arguments)
        [
            sys.executable,
            "-m",
            "bench.loopback_case",
            "--serve",
            "--schools",
            str(schools),
            "--teachers",
            str(teachers),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--rate-limit",
            str(rate_limit),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        yield json.loads(line)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sandbox_stats(url: str) -> dict[str, Any]:
    """The target sandbox's counts (``/_sandbox/stats``): answers, their time, the rate window."""
    return httpx.get(url + "/_sandbox/stats", timeout=10).json()  # type: ignore[no-any-return]


# -- the measurement ----------------------------------------------------------------------


def _engine(args: argparse.Namespace, urls: dict[str, Any], rate_limit: float) -> dict[str, Any]:
    from sync.bootstrap import build_app
    from sync.settings import load_settings

    settings = load_settings(
        None,
        overrides={
            "state": {"url": args.db_url},
            "source": {"base_url": urls["pmm"], "page_size": 500},
            "target": {
                "base_url": urls["ekinerja"],
                "rate_limit_per_s": rate_limit,
                "concurrency": args.concurrency,
                "timeout_s": 30,
            },
            "retry": {"initial_backoff_s": 0.05, "max_backoff_s": 2, "max_attempts": 8},
            # (b) times the delivery phase after the pull: one process (no overlap helper).
            "sync": {"overlap": False},
        },
    )
    phases = Phases()
    with build_app(settings) as app:
        before = sandbox_stats(urls["ekinerja"])
        t0 = time.perf_counter()
        summary = app.engine.run(PERIOD, progress=phases)
        seconds = time.perf_counter() - t0
        after = sandbox_stats(urls["ekinerja"])
    marks = phases.marks
    pull_end = marks.get("pull_last", t0)
    deliver_s = marks.get("deliver_last", pull_end) - pull_end
    requests = after["requests"] - before["requests"]
    created = (after["skp_created"] + after["penilaian_created"] + after["skp_updated"]) - (
        before["skp_created"] + before["penilaian_created"] + before["skp_updated"]
    )
    latency_s = args.latency_ms / 1000
    limit = args.concurrency / latency_s if latency_s > 0 else float("inf")
    if rate_limit > 0:
        limit = min(limit, rate_limit)
    achieved = requests / deliver_s if deliver_s > 0 else 0.0
    answers, answer_s = _answer_times(args.db_url)
    served = after["answer_s"] - before["answer_s"]
    return {
        "records": summary.pulled,
        "seconds": seconds,
        "pull_seconds": pull_end - t0,
        "deliver_seconds": deliver_s,
        "requests": requests,
        "stored": created,
        "rate_limited_429": after["faults"].get("rate_limited", 0)
        - before["faults"].get("rate_limited", 0),
        "requests_per_s": achieved,
        "stored_per_s": created / deliver_s if deliver_s > 0 else 0.0,
        "limit_per_s": limit,
        "share_of_limit": achieved / limit if limit else 0.0,
        # What C/L leaves out: an answer takes longer than L (the sandbox's own work, the
        # loopback, reading the answer), and the threads are not always all sending. The
        # limit at the answer time the engine saw is C / that time; the threads' busy share
        # is the time they spent in requests over C times the phase.
        "answer_ms": 1000 * answer_s / answers if answers else None,
        "limit_at_answer_time_per_s": args.concurrency * answers / answer_s if answer_s else None,
        "busy_share": answer_s / (args.concurrency * deliver_s) if deliver_s > 0 else None,
        # Of an answer's time, what the sandbox took from the request's arrival in its app to
        # the answer (L included); the rest is the loopback and the client.
        "server_ms": 1000 * served / requests if requests else None,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "rate_limit_per_s": rate_limit,
    }


def _answer_times(db_url: str) -> tuple[int, float]:
    """(attempts, seconds spent in them) from the ledger: each attempt's ``duration_ms`` is the
    time from building its request to its answer parsed."""
    ((count, total),) = ledger_rows(
        db_url,
        "SELECT count(duration_ms), coalesce(sum(duration_ms), 0) FROM ledger_entry "
        "WHERE duration_ms IS NOT NULL",
    )
    return int(count), float(total) / 1000


def bare_threads(url: str, concurrency: int, per_thread: int) -> dict[str, Any]:
    """The rig's ceiling: ``concurrency`` threads, each sending ``per_thread`` listing
    requests (``GET /api/v1/skp`` of the period, empty on a fresh sandbox: next to no work
    for it, L all the same) one after the other through one shared ``httpx.Client``, with no
    state, no retries, no ledger."""
    token = httpx.post(url + "/oauth/token", data=TOKEN_FORM, timeout=30).json()["access_token"]
    query = {"tahun": 2025, "jenis": "semester", "semester": 1}
    before = sandbox_stats(url)
    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=concurrency),
        timeout=30,
    ) as client:

        def one_thread(_: int) -> float:
            waited = 0.0
            for _request in range(per_thread):
                t0 = time.perf_counter()
                client.get("/api/v1/skp", params=query).raise_for_status()
                waited += time.perf_counter() - t0
            return waited

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            waited = sum(pool.map(one_thread, range(concurrency)))
        seconds = time.perf_counter() - t0
    served = sandbox_stats(url)["answer_s"] - before["answer_s"]
    requests = concurrency * per_thread
    return {
        "requests": requests,
        "seconds": seconds,
        "requests_per_s": requests / seconds,
        "answer_ms": 1000 * waited / requests,
        "server_ms": 1000 * served / requests,
    }


def _run(args: argparse.Namespace) -> dict[str, Any]:
    quiet_logs()
    world = {"schools": args.schools, "teachers": args.teachers, "seed": args.seed}
    out: dict[str, Any] = {}
    with sandbox_process(**world, latency_ms=args.latency_ms, rate_limit=0) as urls:
        out["records_in_world"] = urls["records"]
        out["unlimited"] = _engine(args, urls, 0)
    if args.naive:
        requests = delivered_requests(args.db_url)
        if args.naive_max:
            requests = requests[: args.naive_max]
        with (
            sandbox_process(**world, latency_ms=args.latency_ms, rate_limit=0) as urls,
            httpx.Client(base_url=urls["ekinerja"], timeout=30) as client,
        ):
            # As many requests as the engine's delivery sent, spread over the threads.
            per_thread = max(5, out["unlimited"]["requests"] // args.concurrency)
            out["bare_threads"] = bare_threads(urls["ekinerja"], args.concurrency, per_thread)
            sent, seconds = naive_push(client, requests)
            stats = sandbox_stats(urls["ekinerja"])
        out["naive"] = {
            "requests": sent,
            "seconds": seconds,
            "requests_per_s": sent / seconds if seconds else 0.0,
            "stored": stats["skp_created"] + stats["penilaian_created"] + stats["skp_updated"],
            "rejected": stats["rejected"],
            "latency_ms": args.latency_ms,
        }
    if args.rate_limit > 0:
        args.db_url = args.db_url_limited
        with sandbox_process(
            **world, latency_ms=args.latency_ms, rate_limit=args.rate_limit
        ) as urls:
            out["rate_limited"] = _engine(args, urls, args.rate_limit)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schools", type=int, default=50)
    parser.add_argument("--teachers", type=int, default=29)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--rate-limit", type=float, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db-url")
    parser.add_argument("--db-url-limited")
    parser.add_argument("--naive", action="store_true")
    parser.add_argument("--naive-max", type=int, default=0, help="0: every request")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args)
        return
    result = _run(args)
    write_result(result, args.json_out)


if __name__ == "__main__":
    main()
