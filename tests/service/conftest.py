"""Fixtures of the service tier: an event loop for the in-process sandboxes, a SQLite store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from connectors.sandbox import SandboxWorld
from tests.service.harness import InProcessSandbox


@pytest.fixture(scope="session")
def portal() -> Iterator[BlockingPortal]:
    """One event loop (in a thread) serving every in-process sandbox of the session."""
    with start_blocking_portal() as running:
        yield running


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite state store (most service tests need no PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def sandbox(portal: BlockingPortal) -> Callable[..., InProcessSandbox]:
    """``sandbox(world, faults=..., schema_version=...)``: both sandbox apps in-process."""

    def make(world: SandboxWorld, **options: Any) -> InProcessSandbox:
        return InProcessSandbox(world, portal, **options)

    return make
