"""One transaction of a batch: what every part of the state store writes through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlmodel import Session

__all__ = ["unit_of_work"]


@contextmanager
def unit_of_work(engine: Engine, *, commit: bool = True) -> Iterator[Session]:
    """A session whose changes commit together at the end (or roll back on error, or always
    when ``commit`` is False: that is how a dry run writes nothing)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
