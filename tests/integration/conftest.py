from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from state.db import create_schema, make_engine


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    """A fresh state store's engine, its schema created (SQLite and PostgreSQL)."""
    engine = make_engine(state_url)
    create_schema(engine)
    yield engine
    engine.dispose()
