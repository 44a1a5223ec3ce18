"""The machine a benchmark runs on, written beside its figures: CPU, cores, memory, OS,
Python, SQLite and PostgreSQL versions, the load at the start, the code's commit and the date.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["ROOT", "machine_info"]

ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_total_gb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) / 2**20
    return None


def _pg_version(pg_url: str) -> str | None:
    try:
        import psycopg

        dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else None
    except Exception:
        return None


def _git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 (our own arguments)
        ["git", *args],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _code() -> str:
    """The commit measured, and whether the work tree differed from it."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return head + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "?"


def machine_info(pg_url: str | None) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(_mem_total_gb() or 0, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _pg_version(pg_url) if pg_url else None,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "code": _code(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
