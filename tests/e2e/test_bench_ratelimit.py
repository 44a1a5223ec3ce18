"""The rate-limit figure of the benchmark (``bench.ratelimit_case``) runs and reports: two
worker processes on one PostgreSQL against the loopback sandbox holding R per sliding
second. A smoke test at a tiny size, not a timed test; what it reports is checked for sense
(everything stored, nothing refused, no second over R)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ratelimit_case import lines, main


@pytest.mark.timeout(120)
def test_two_workers_under_the_rate_limit(pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "rate.json"
    main(
        [
            "--db-urls", pg_url,
            "--workers", "2",
            "--schools", "3",
            "--teachers", "5",
            "--rate-limit", "20",
            "--latency-ms", "5",
            "--concurrency", "4",
            "--json-out", str(out),
        ]
    )  # fmt: skip
    result = json.loads(out.read_text(encoding="utf-8"))
    (row,) = result["rows"]
    assert row["workers"] == 2
    assert all(code in (0, 1) for code in row["exit_codes"])  # 1: the world's bad records
    assert row["stored"] == row["accepted"] > 0
    assert row["refused_429"] == 0
    assert row["worst_window"] <= 20
    assert row["dead"] == 0
    assert 1 <= row["tokens"] <= 2
    shown = "\n".join(lines(result))
    assert "R=20/s" in shown
    assert shown.splitlines()[-1].split()[0] == "2"
