"""The benchmark (``python -m bench.run``) runs and reports its four figures: a smoke test at
tiny sizes on SQLite, not a timed test (no figure is held to its target here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import main, render


@pytest.mark.timeout(120)
def test_quick_benchmark_reports_the_four_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = main(
        [
            "--quick",
            "--db", "sqlite",
            "--sizes", "100,200",
            "--profile-n", "100",
            "--latency-ms", "10",
            "--rate-limit", "40",
            "--loop-schools", "3",
            "--loop-teachers", "6",
            "--naive-max", "30",
            "--max-seconds", "60",
            "--json", str(tmp_path / "bench.json"),
        ]
    )  # fmt: skip
    figures = report["figures"]
    machine = report["machine"]
    assert machine["cores"]
    assert machine["python"]
    assert machine["sqlite"]

    # (a) records/s and peak memory per N, both measured
    rows = {r["n"]: r for r in figures["a"]["rows"]}
    assert set(rows) == {100, 200}, figures["a"]
    for n, row in rows.items():
        assert row["pulled"] == n
        assert row["records_per_s"] > 0
        assert 20 < row["max_rss_mb"] < 2000
        assert row["requests_sent"] > n  # an SKP for almost everyone, most penilaian too
        assert row["target_counts"]["skp_create"] <= n
        # the SQL by statement: one outbox row per request, bound in few executions
        statements = {st["statement"]: st for st in row["statements"]}
        assert statements["INSERT INTO outbox"]["rows"] == row["requests_sent"]
        assert statements["INSERT INTO outbox"]["executions"] < row["requests_sent"]

    # (b) achieved rate against C/L, and against R with the rate limit set
    b = figures["b"]
    assert b["limit_per_s"] == pytest.approx(16 / 0.010)
    assert 0 < b["requests_per_s"] <= b["limit_per_s"]
    assert b["rate_limit_per_s"] == 40
    assert b["rate_limited_requests_per_s"] > 0
    # the rig's ceiling: a bare client of C threads over the same sandbox and latency
    assert 0 < b["bare_requests_per_s"] <= b["limit_per_s"]
    assert report["loopback"]["bare_threads"]["server_ms"] >= 10  # L = 10 ms in the sandbox

    # (c) a rerun with no source change sends nothing
    reruns = {r["n"]: r for r in figures["c"]["rows"]}
    assert set(reruns) == {100, 200}
    assert all(r["requests_sent"] == 0 and r["seconds"] > 0 for r in reruns.values())
    assert figures["c"]["met"] is not False  # sent nothing (its time is not judged here)
    # one walk of the whole period: the source requests do not grow with the schools
    assert reruns[100]["source_requests"] == reruns[200]["source_requests"]

    # (d) the naive baseline pushed the same requests, in-process and over loopback
    by_n = {e["n"]: e for e in figures["d"]["inprocess"]}
    assert by_n[200]["requests"] == rows[200]["requests_sent"]
    assert by_n[200]["ratio_engine_to_naive"] > 0
    # the delivery phase alone is shorter than the run, so its rate is higher
    assert by_n[200]["engine_delivery_requests_per_s"] > by_n[200]["engine_requests_per_s"]
    # the ceiling: both loops sent every request to the free target (request_path checks
    # the count) and took some time
    free = by_n[200]["free_target"]
    assert free["naive_seconds"] > 0
    assert free["request_path_seconds"] > 0
    assert free["request_path_records_per_s"] == pytest.approx(200 / free["request_path_seconds"])
    assert figures["d"]["loopback"]["naive_requests"] == 30
    assert figures["d"]["loopback"]["ratio_engine_to_naive"] > 0

    # the profile is grouped by stage, and everything is printed
    groups = report["profile"]["profile"]["groups"]
    assert set(groups) == {"pull", "validate", "map", "plan", "state (SQL)", "deliver"}
    assert len(report["profile"]["profile"]["top"]) == 15
    printed = capsys.readouterr().out
    assert printed.strip() == render(report).strip()
    for label in ("(a)", "(b)", "(c)", "(d)", "profile"):
        assert label in printed
    assert (tmp_path / "bench.json").exists()
