"""The benchmark's report: the four figures, each against its target (``TARGETS``, issue 14)
and whether it is met (``figures``), and the summary a person reads (``render``).
"""

from __future__ import annotations

from typing import Any

from bench.ratelimit_case import lines as ratelimit_lines

__all__ = ["TARGETS", "engine_line", "figures", "render", "workers_line"]

TARGETS = {  # issue 14
    "a_records_per_s": 5000,
    "a_records_per_s_postgres": 3000,
    "a_max_rss_mb": 200,
    "b_share_of_limit": 0.95,
    "c_rerun_seconds": 5,
}


def workers_line(row: dict[str, Any]) -> str:
    if row.get("records_per_s") is None:
        return "not finished: " + "; ".join(engine_line(r) for r in row["runs"])
    each = ", ".join(
        f"{r['pulled']:,} pulled / {r['requests_sent']:,} sent in {r['seconds']:.1f} s"
        for r in row["runs"]
    )
    return (
        f"{row['records_per_s']:,.0f} records/s with {row['workers']} processes "
        f"({row['seconds']:.1f} s; {each}); {row['requests_sent']:,} requests in all"
    )


def _statement_lines(engine: list[dict[str, Any]]) -> list[str]:
    """The SQL of the first finished run: the statements that took longest in the driver."""
    row = next((r for r in engine if r.get("statements")), None)
    if row is None:
        return []
    lines = [
        f"  SQL of the {row['db']} run at N={row['n']:,}, by statement (seconds in the driver, "
        "on whichever thread; the threads overlap):"
    ]
    for st in row["statements"][:8]:
        lines.append(
            f"    {st['seconds']:6.2f} s {st['executions']:>6,} executions "
            f"{st['rows']:>8,} rows bound  {st['statement']}"
        )
    return lines


def engine_line(row: dict[str, Any]) -> str:
    if "timed_out" in row:
        done = row.get("progress") or {}
        return (
            f"not finished in {row['timed_out']:.0f} s (stopped): had pulled "
            f"{done.get('pull', 0):,} of {row['n']:,} records and delivered "
            f"{done.get('deliver', 0):,} requests after {done.get('seconds', 0):.0f} s"
        )
    if "error" in row:
        return f"error: {row['error']}"
    heap = row.get("tracemalloc_peak_mb")
    return (
        f"{row['records_per_s']:,.0f} records/s ({row['seconds']:.1f} s: pull+plan "
        f"{row['pull_seconds']:.1f} s, deliver {row['deliver_seconds']:.1f} s), "
        f"{row['requests_sent']:,} requests, max RSS {row['max_rss_mb']:.0f} MB"
        + (f", heap peak {heap:.0f} MB" if heap is not None else "")
    )


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The four figures, each with its target and whether it is met."""
    out: dict[str, Any] = {}
    engine = [r for r in report["engine"] if "seconds" in r]
    sqlite_rows = [r for r in engine if r["db"] == "sqlite" and not r.get("overlap")]
    largest = max((r["n"] for r in report["engine"]), default=None)
    a: dict[str, Any] = {"rows": engine}
    if sqlite_rows:
        big = max(sqlite_rows, key=lambda r: r["n"])
        a["sqlite_records_per_s_at_largest"] = big["records_per_s"]
        a["sqlite_max_rss_mb_at_largest"] = big["max_rss_mb"]
        a["largest_n_measured"] = big["n"]
        a["met"] = (
            big["n"] == largest
            and big["records_per_s"] >= TARGETS["a_records_per_s"]
            and big["max_rss_mb"] < TARGETS["a_max_rss_mb"]
        )
    a["unfinished"] = [
        {
            "db": r["db"],
            "n": r["n"],
            **(
                {"timed_out": r["timed_out"], "progress": r.get("progress")}
                if "timed_out" in r
                else {"error": r.get("error")}
            ),
        }
        for r in report["engine"]
        if "seconds" not in r
    ]
    out["a"] = a
    loop = report.get("loopback") or {}
    if "unlimited" in loop:
        b: dict[str, Any] = {
            "requests_per_s": loop["unlimited"]["requests_per_s"],
            "limit_per_s": loop["unlimited"]["limit_per_s"],
            "share": loop["unlimited"]["share_of_limit"],
        }
        if "rate_limited" in loop:
            b["rate_limited_requests_per_s"] = loop["rate_limited"]["requests_per_s"]
            b["rate_limit_per_s"] = loop["rate_limited"]["limit_per_s"]
            b["rate_limited_share"] = loop["rate_limited"]["share_of_limit"]
        if "bare_threads" in loop:  # the rig's ceiling: C threads of a bare client
            bare = loop["bare_threads"]
            b["bare_requests_per_s"] = bare["requests_per_s"]
            b["bare_share"] = bare["requests_per_s"] / b["limit_per_s"]
            b["engine_to_bare"] = b["requests_per_s"] / bare["requests_per_s"]
        b["met"] = b["share"] >= TARGETS["b_share_of_limit"]
        out["b"] = b
    reruns = [r for r in report["rerun"] if "seconds" in r]
    if reruns:
        out["c"] = {
            "rows": [
                {
                    "db": r["db"],
                    "n": r["n"],
                    "seconds": r["seconds"],
                    "requests_sent": r["requests_sent"],
                    "source_requests": r.get("source_requests"),
                }
                for r in reruns
            ],
            # Judged at the largest N asked for (the target is about 100,000); a rerun at a
            # smaller N only has to send nothing.
            "met": (
                all(
                    r["seconds"] < TARGETS["c_rerun_seconds"] and r["requests_sent"] == 0
                    for r in reruns
                    if r["n"] == largest
                )
                if any(r["n"] == largest for r in reruns)
                else None
            )
            if all(r["requests_sent"] == 0 for r in reruns)
            else False,
        }
    d: dict[str, Any] = {"inprocess": []}
    for naive in report["naive_inprocess"]:
        if "seconds" not in naive:
            continue
        engine_row = next(
            (
                r
                for r in sqlite_rows or engine
                if r["n"] == naive["n"] and r["db"] == (sqlite_rows or engine)[0]["db"]
            ),
            None,
        )
        entry = {
            "n": naive["n"],
            "requests": naive["requests"],
            "naive_seconds": naive["seconds"],
            "naive_requests_per_s": naive["requests_per_s"],
        }
        if "free_target" in naive:  # the ceiling: what a request costs the client alone
            entry["free_target"] = naive["free_target"]
        if engine_row is not None:
            entry["engine_seconds"] = engine_row["seconds"]
            entry["engine_requests_per_s"] = engine_row["requests_sent"] / engine_row["seconds"]
            entry["ratio_engine_to_naive"] = (
                entry["engine_requests_per_s"] / naive["requests_per_s"]
            )
            if engine_row.get("deliver_seconds"):  # the delivery phase alone
                delivery = engine_row["requests_sent"] / engine_row["deliver_seconds"]
                entry["engine_delivery_requests_per_s"] = delivery
                entry["ratio_delivery_to_naive"] = delivery / naive["requests_per_s"]
        # Every engine row at this N (each store, one process or with overlap), against the
        # loop: the whole run, and the delivery phase alone (issue 28).
        entry["engines"] = [
            {
                "db": r["db"],
                "overlap": bool(r.get("overlap")),
                "seconds": r["seconds"],
                "runs_seconds": r.get("runs_seconds"),
                "deliver_seconds": r.get("deliver_seconds"),
                "ratio_run_to_naive": r["requests_sent"] / r["seconds"] / naive["requests_per_s"],
                "ratio_delivery_to_naive": (
                    r["requests_sent"] / r["deliver_seconds"] / naive["requests_per_s"]
                    if r.get("deliver_seconds")
                    else None
                ),
            }
            for r in engine
            if r["n"] == naive["n"]
        ]
        d["inprocess"].append(entry)
    if "naive" in loop and "unlimited" in loop:
        d["loopback"] = {
            "naive_requests_per_s": loop["naive"]["requests_per_s"],
            "engine_requests_per_s": loop["unlimited"]["requests_per_s"],
            "ratio_engine_to_naive": loop["unlimited"]["requests_per_s"]
            / loop["naive"]["requests_per_s"]
            if loop["naive"]["requests_per_s"]
            else None,
            "naive_requests": loop["naive"]["requests"],
        }
    out["d"] = d
    return out


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("MET" if flag else "MISSED")


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    f = report["figures"]
    lines = [
        "ekinerja-sync benchmark",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}",
        f"python {m['python']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql'] or '-'}; "
        f"code {m['code']}; {m['date']}; load avg {m['load_avg_at_start']} -> "
        f"{m.get('load_avg_at_end')}",
        "",
        "(a) engine, in-process mocks (pull+validate+map+plan+state+outbox+deliver), "
        f"C={report['settings']['concurrency']}, target {TARGETS['a_records_per_s']:,} rec/s "
        f"and RSS < {TARGETS['a_max_rss_mb']} MB at 100,000 (SQLite)",
        f"  {'db':11}{'N':>7}{'rec/s':>9}{'seconds':>9}{'pull+plan':>10}{'deliver':>9}"
        f"{'requests':>10}{'RSS MB':>8}{'heap MB':>8}",
    ]
    for r in report["engine"]:
        if "seconds" in r:
            heap = r.get("tracemalloc_peak_mb")
            db = r["db"] + ("+ovl" if r.get("overlap") else "")
            lines.append(
                f"  {db:11}{r['n']:>7,}{r['records_per_s']:>9,.0f}{r['seconds']:>9.1f}"
                f"{r['pull_seconds']:>10.1f}{r['deliver_seconds']:>9.1f}{r['requests_sent']:>10,}"
                f"{r['max_rss_mb']:>8.0f}{(f'{heap:.0f}' if heap is not None else '-'):>8}"
            )
        else:
            lines.append(f"  {r['db']:9}{r['n']:>9,}  {engine_line(r)}")
    for r in report.get("workers", []):
        lines.append(f"  {r['db']:9}{r['n']:>9,}  {workers_line(r)}")
    lines.append(f"  -> {_ok(f['a'].get('met'))}")
    lines += _statement_lines(report["engine"])
    lines.append("")
    s = report["settings"]
    if "b" in f:
        b = f["b"]
        lines.append(
            f"(b) loopback against the sandbox, L={s['latency_ms']:g} ms, C={s['concurrency']}: "
            f"{b['requests_per_s']:,.0f} req/s of C/L = {b['limit_per_s']:,.0f} "
            f"({b['share']:.0%}; target {TARGETS['b_share_of_limit']:.0%}) -> {_ok(b['met'])}"
        )
        if "rate_limited_requests_per_s" in b:
            lines.append(
                f"    with the target's rate limit R={b['rate_limit_per_s']:g}/s: "
                f"{b['rate_limited_requests_per_s']:,.1f} req/s "
                f"({b['rate_limited_share']:.0%} of R)"
            )
        loop = report["loopback"]
        unlimited = loop["unlimited"]
        lines.append(
            f"    world {loop.get('records_in_world')} records; delivery phase "
            f"{unlimited['deliver_seconds']:.1f} s for "
            f"{unlimited['requests']} requests"
        )
        if unlimited.get("answer_ms"):
            lines.append(
                f"    an answer took {unlimited['answer_ms']:.1f} ms on average (L = "
                f"{s['latency_ms']:g} ms): C / that = "
                f"{unlimited['limit_at_answer_time_per_s']:,.0f} req/s, of which "
                f"{b['requests_per_s'] / unlimited['limit_at_answer_time_per_s']:.0%} reached; "
                f"the threads were in a request {unlimited['busy_share']:.0%} of the phase"
            )
            lines.append(
                f"    of an answer's {unlimited['answer_ms']:.1f} ms, the sandbox took "
                f"{unlimited['server_ms']:.1f} ms (from the request's arrival in its app to "
                "the answer, L included); the rest is the loopback and the client"
            )
        if "bare_requests_per_s" in b:
            bare = loop["bare_threads"]
            lines.append(
                f"    the rig's ceiling: {s['concurrency']} threads of a bare httpx client "
                f"(listing requests, no state) {b['bare_requests_per_s']:,.0f} req/s "
                f"({b['bare_share']:.0%} of C/L; an answer {bare['answer_ms']:.1f} ms, the "
                f"sandbox {bare['server_ms']:.1f} ms); the engine reached "
                f"{b['engine_to_bare']:.0%} of it"
            )
    else:
        lines.append(f"(b) loopback: {report.get('loopback')}")
    lines += ratelimit_lines(report.get("rate_limit"))
    lines.append("")
    if "c" in f:
        for r in f["c"]["rows"]:
            lines.append(
                f"(c) rerun, no source change, {r['db']}, N={r['n']:,}: {r['seconds']:.2f} s, "
                f"{r['requests_sent']} requests sent, {r.get('source_requests', '?')} "
                "source requests "
                f"(target < {TARGETS['c_rerun_seconds']} s and 0 "
                f"at {max(s['sizes']):,})"
            )
        lines.append(
            f"    -> {_ok(f['c']['met'])}"
            + ("" if f["c"]["met"] is not None else f" (no rerun at N={max(s['sizes']):,})")
        )
    else:
        lines.append("(c) rerun: not measured (no first run finished)")
    for r in report["rerun"]:
        if "seconds" not in r:
            lines.append(f"(c) rerun, {r['db']}, N={r['n']:,}: {engine_line(r)}")
    lines.append("")
    d = f["d"]
    for e in d["inprocess"]:
        ratio = e.get("ratio_engine_to_naive")
        lines.append(
            f"(d) naive sequential httpx+tenacity loop, in-process mock, N={e['n']:,}: "
            f"{e['naive_requests_per_s']:,.0f} req/s ({e['requests']:,} requests in "
            f"{e['naive_seconds']:.1f} s); engine {e.get('engine_requests_per_s', 0):,.0f} req/s"
            + (f" -> engine/naive = {ratio:.2f}x" if ratio else "")
        )
        if "ratio_delivery_to_naive" in e:
            lines.append(
                f"    the engine's delivery phase alone: {e['engine_delivery_requests_per_s']:,.0f}"
                f" req/s -> {e['ratio_delivery_to_naive']:.2f}x"
            )
        for x in e.get("engines", []):
            delivery = x["ratio_delivery_to_naive"]
            lines.append(
                f"    {x['db']}, {'overlap' if x['overlap'] else 'one process'}: whole run "
                f"{x['ratio_run_to_naive']:.2f}x the loop"
                + (f", delivery phase {delivery:.2f}x" if delivery else "")
                + (
                    " (median of " + ", ".join(f"{t:.1f}" for t in x["runs_seconds"]) + " s)"
                    if x.get("runs_seconds")
                    else ""
                )
            )
        if (free := e.get("free_target")) is not None:
            # A record's budget for all but its requests at (a)'s target, on this machine.
            per_record_us = 1e6 * free["request_path_seconds"] / e["n"]
            budget_us = 1e6 / TARGETS["a_records_per_s"] - per_record_us
            lines += [
                "    ceiling, the same requests to a target that costs nothing: the naive loop "
                f"{free['naive_requests_per_s']:,.0f} req/s = "
                f"{free['naive_records_per_s']:,.0f} rec/s;",
                "    the engine's request path alone (EkinerjaClient + RetryPolicy, no state) "
                f"{free['request_path_requests_per_s']:,.0f} req/s = "
                f"{free['request_path_records_per_s']:,.0f} rec/s: {per_record_us:,.0f} µs a "
                f"record, leaving {budget_us:,.0f} µs for all the rest at "
                f"{TARGETS['a_records_per_s']:,} rec/s",
            ]
    if "loopback" in d:
        lb = d["loopback"]
        lines.append(
            f"(d) naive loop over loopback, L={s['latency_ms']:g} ms: "
            f"{lb['naive_requests_per_s']:,.1f} req/s ({lb['naive_requests']} requests); engine "
            f"{lb['engine_requests_per_s']:,.0f} req/s -> engine/naive = "
            f"{lb['ratio_engine_to_naive']:.1f}x"
        )
    prof = report.get("profile")
    if prof and "profile" in prof:
        p = prof["profile"]
        lines += [
            "",
            f"profile: engine, SQLite, N={prof['n']:,}, C=1, under cProfile "
            f"(run {p['run_seconds']:.1f} s with profiling overhead)",
        ]
        total = p["run_seconds"] or 1
        for name, g in p["groups"].items():
            lines.append(
                f"  {name:12}{g['seconds']:8.1f} s {g['seconds'] / total:5.0%}  {g['note']}"
            )
        lines.append("  top 15 functions by cumulative time:")
        lines.append(f"  {'cum s':>7}{'self s':>8}{'calls':>9}  {'group':12} function")
        for r in p["top"]:
            lines.append(
                f"  {r['cumtime']:7.2f}{r['tottime']:8.2f}{r['calls']:>9}  "
                f"{r['group']:12} {r['function']}"
            )
    elif prof:
        lines += ["", f"profile: {prof}"]
    return "\n".join(lines)
