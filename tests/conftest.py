"""Shared fixtures: a fresh state store URL on SQLite and on PostgreSQL; the test tiers.

PostgreSQL comes from ``EKINERJA_SYNC_TEST_PG_URL`` (default: the local server, database
``test``); each test gets a database of its own, dropped afterwards. The databases are made
ahead and dropped behind on a thread of their own (about 0.2 s a test otherwise spent waiting,
a third of the fast tiers' time). Where no server answers
the PostgreSQL cases are skipped, unless ``EKINERJA_SYNC_TEST_REQUIRE_PG=1`` (CI), where they
fail.

Every test is marked with its tier by where it lives: ``tests/e2e/`` -> ``e2e`` (processes and
servers on loopback), ``tests/service/`` -> ``service`` (the engine in-process). So
``pytest -m e2e`` runs the slow tier alone and ``pytest -m "not e2e"`` the fast ones.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

PG_URL = os.environ.get(
    "EKINERJA_SYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)


# Directory under tests/ -> the marker of its tier (declared in pyproject.toml).
_TIERS = {"e2e": pytest.mark.e2e, "service": pytest.mark.service}
_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = item.path.resolve().relative_to(_TESTS).parts[0]
        except (ValueError, IndexError):
            continue
        if tier in _TIERS:
            item.add_marker(_TIERS[tier])


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A test that configures logging (the CLI does) leaves no configuration behind."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(_pg_admin_dsn(), connect_timeout=3):
            return True
    except Exception as exc:
        if os.environ.get("EKINERJA_SYNC_TEST_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL required but not reachable at {PG_URL}: {exc}")
        return False


class _Databases:
    """Empty PostgreSQL databases made ahead, used ones dropped behind, on one thread: a test
    waits neither for its database to be made nor for the last one to go."""

    AHEAD = 2

    def __init__(self) -> None:
        self._ready: queue.Queue[str | Exception] = queue.Queue()
        self._jobs: queue.Queue[tuple[str, str]] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="test-databases", daemon=True)
        self._thread.start()
        for _ in range(self.AHEAD):
            self._jobs.put(("create", ""))

    def _work(self) -> None:
        import psycopg

        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            while True:
                job, name = self._jobs.get()
                if job == "stop":
                    return
                try:
                    if job == "create":
                        name = f"ekinerja_test_{uuid.uuid4().hex[:12]}"
                        conn.execute(f'CREATE DATABASE "{name}"')
                        self._ready.put(name)
                    else:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                except Exception as exc:  # handed to the test that waits for a database
                    if job == "create":
                        self._ready.put(exc)

    def take(self) -> str:
        self._jobs.put(("create", ""))  # one more made while this one is used
        made = self._ready.get(timeout=120)
        if isinstance(made, Exception):
            raise made
        return made

    def give_back(self, name: str) -> None:
        self._jobs.put(("drop", name))

    def close(self) -> None:
        self._jobs.put(("stop", ""))
        self._thread.join(timeout=120)
        import psycopg

        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            while not self._ready.empty():
                made = self._ready.get()
                if isinstance(made, str):
                    conn.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _pg_databases(pg_available: bool) -> Iterator[_Databases]:
    if not pg_available:
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    databases = _Databases()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def pg_url(pg_available: bool, request: pytest.FixtureRequest) -> Iterator[str]:
    if not pg_available:
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    databases: _Databases = request.getfixturevalue("_pg_databases")
    name = databases.take()
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        databases.give_back(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty state store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
