"""Statements the hot paths run thousands of times, as the driver takes them.

Delivery claims a page of outbox entries, reads the page and what its entries need, and the
ingest looks up the stored source records of each page: a few statements per page, but with
SQLAlchemy each one was built again (a Core or ORM statement compiled, an IN list of up to
500 bound values expanded, each value and each row converted through the column types in a
generic loop, an ORM ``Session`` made per call). Here the SQL text of a statement is written
once per dialect; a list of ids is one parameter (``json_each(?)`` on SQLite, ``= ANY(%s)``
on PostgreSQL); each value goes through the processor of its column's type once, the one
SQLAlchemy itself applies (``dialect_impl(dialect).bind_processor``; UTC timestamps and enum
names come out byte for byte as the ORM writes them: ``tests/integration/test_prepared.py``,
on both databases), and the statement goes to the driver with ``exec_driver_sql`` (the
engine's cursor events still see it).

SQL is written with ``:name`` parameters and ``{in:column:name}`` for "column is one of the
list ``name``"; ``prepare`` turns them into the driver's style.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine
from sqlmodel import Session

__all__ = ["IdList", "Prepared", "connection_of", "prepare"]

_Convert = Callable[[Any], Any]
_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
_IN = re.compile(r"\{in:([\w.]+):([a-z_][a-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class IdList:
    """The type of a list parameter (``{in:column:name}``): ``int`` or ``text`` items."""

    item: str = "text"


@dataclass(frozen=True, slots=True)
class Prepared:
    """One statement for one dialect: its text, and how each parameter and each column of
    its rows is converted (built once; ``run`` converts each value once)."""

    sql: str
    binds: tuple[tuple[str, _Convert | None], ...]
    results: tuple[_Convert | None, ...]

    def run(self, connection: Connection, **values: Any) -> list[tuple[Any, ...]]:
        """Execute with these values; the rows it returns (if any), converted."""
        params = {
            name: (convert(values[name]) if convert is not None else values[name])
            for name, convert in self.binds
        }
        result = connection.exec_driver_sql(self.sql, params)
        if not result.returns_rows:
            return []
        rows = result.fetchall()
        results = self.results
        if not any(results):
            return [tuple(row) for row in rows]
        return [
            tuple(
                convert(value) if convert is not None else value
                for convert, value in zip(results, row, strict=True)
            )
            for row in rows
        ]


def prepare(
    dialect: Dialect,
    sql: str,
    params: Mapping[str, TypeEngine[Any] | IdList],
    results: Sequence[TypeEngine[Any]] = (),
) -> Prepared:
    """``sql`` for ``dialect``: each parameter converted as its type (a column's) says, each
    column of a row as ``results`` say (in order; empty: as the driver returns them)."""
    postgres = dialect.name == "postgresql"

    def member(match: re.Match[str]) -> str:
        column, name = match[1], match[2]
        item = params[name]
        assert isinstance(item, IdList), "{in:column:name} names a list parameter"
        # The statement's own names only, never a value (values are parameters).
        if postgres:
            array = "BIGINT[]" if item.item == "int" else "TEXT[]"
            return f"{column} = ANY(CAST(:{name} AS {array}))"
        return f"{column} IN (SELECT value FROM json_each(:{name}))"  # noqa: S608

    text = _IN.sub(member, " ".join(sql.split()))
    if postgres:
        text = _PARAM.sub(r"%(\1)s", text.replace("%", "%%"))
    binds: list[tuple[str, _Convert | None]] = []
    for name, kind in params.items():
        if isinstance(kind, IdList):
            binds.append((name, list if postgres else _json_list))
        else:
            binds.append((name, kind.dialect_impl(dialect).bind_processor(dialect)))
    converts = tuple(kind.dialect_impl(dialect).result_processor(dialect, None) for kind in results)
    return Prepared(text, tuple(binds), converts)


def _json_list(values: Iterable[Any]) -> str:
    return json.dumps(list(values), ensure_ascii=False, separators=(",", ":"))


def connection_of(session: Session | Connection) -> Connection:
    """The connection a statement runs on: a session's (the caller's transaction) or one."""
    return session.connection() if isinstance(session, Session) else session
