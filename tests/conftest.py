"""Shared fixtures: a fresh state store URL on SQLite and on PostgreSQL; the test tiers.

PostgreSQL comes from ``EKINERJA_SYNC_TEST_PG_URL`` (default: the local server, database
``test``); each test gets a database of its own, dropped afterwards. Where no server answers
the PostgreSQL cases are skipped, unless ``EKINERJA_SYNC_TEST_REQUIRE_PG=1`` (CI), where they
fail.

Every test is marked with its tier by where it lives: ``tests/e2e/`` -> ``e2e`` (processes and
servers on loopback), ``tests/service/`` -> ``service`` (the engine in-process). So
``pytest -m e2e`` runs the slow tier alone and ``pytest -m "not e2e"`` the fast ones.
"""

from __future__ import annotations

import os
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


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    if not pg_available:
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    import psycopg

    name = f"ekinerja_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty state store: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
