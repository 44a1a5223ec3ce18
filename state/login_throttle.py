"""The web console's login throttle: login attempts per key (a user name, a client address,
or a device cookie), counted before the password is checked (``count_login_attempt``), and
until when the next one must wait. ``sync.web.auth.LoginLimiter`` says which keys and limits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Column, Engine, delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state.types import UTCDateTime

__all__ = [
    "LoginThrottle",
    "ThrottleState",
    "clear_login_throttle",
    "count_login_attempt",
    "give_back_login_attempt",
    "login_throttles",
    "undo_login_attempt",
]


class LoginThrottle(SQLModel, table=True):
    """Login attempts counted for one key (``user:<name>``, ``addr:<address>`` or
    ``device:<id>``)."""

    __tablename__ = "console_login_throttle"

    key: str = Field(primary_key=True, max_length=128)
    attempts: int = 0
    last_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    blocked_until: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


@dataclass(frozen=True)
class ThrottleState:
    """What ``users list`` shows of a key's throttle."""

    key: str
    attempts: int
    last_attempt_at: dt.datetime
    blocked_until: dt.datetime | None


def _insert_missing(session: Session, keys: Sequence[str], now: dt.datetime) -> None:
    """Insert a zero row per key unless there is one (one statement, conflicts ignored)."""
    rows = [{"key": k, "attempts": 0, "last_attempt_at": now} for k in keys]
    dialect = session.connection().dialect.name
    table = SQLModel.metadata.tables["console_login_throttle"]
    if dialect == "postgresql":
        session.connection().execute(pg_insert(table).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        session.connection().execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - the project supports these two
        session.connection().execute(sa_insert(table).prefix_with("OR IGNORE"), rows)


def count_login_attempt(
    engine: Engine,
    limits: Sequence[tuple[str, int]],
    now: dt.datetime,
    *,
    window_s: float,
    base_delay_s: float,
    max_delay_s: float,
) -> float:
    """Count one login attempt against every ``(key, limit)``, atomically, before the password
    is checked; or refuse it. Returns 0.0 when the attempt was counted (go on and check the
    password), else the seconds to wait (nothing was counted).

    A key's count is forgotten ``window_s`` after its last attempt or, when it was made to
    wait, after its wait ends: never during a wait, so a wait at the cap does not wipe the
    count and hand out a fresh set of guesses (issue 22). Reaching the limit blocks the key
    for ``base_delay_s``, doubled for every further counted attempt, at most ``max_delay_s``:
    a backoff, never a lock for good. Refused attempts are not counted, so they do not
    lengthen the wait.

    Atomic across threads and processes: the rows are written (a write lock on SQLite, row
    locks on PostgreSQL) before they are read, so two attempts cannot both read the count
    from before the other.
    """
    keys = sorted({key for key, _ in limits})
    limit_of = dict(limits)
    with Session(engine, expire_on_commit=False) as session:
        rows: list[LoginThrottle] = []
        for _ in range(5):
            _insert_missing(session, keys, now)
            # Locked in one order (no deadlock between two attempts); a row that a sweep
            # deleted between the insert and the lock is inserted again.
            rows = list(
                session.exec(
                    select(LoginThrottle)
                    .where(col(LoginThrottle.key).in_(keys))
                    .order_by(col(LoginThrottle.key))
                    .with_for_update()
                )
            )
            if len(rows) == len(keys):
                break
        else:  # pragma: no cover - five sweeps in a row
            raise RuntimeError("login throttle rows vanished five times")
        wait = 0.0
        for row in rows:
            if row.blocked_until is not None and row.blocked_until > now:
                wait = max(wait, (row.blocked_until - now).total_seconds())
        if wait > 0:
            session.rollback()
            return wait
        for row in rows:
            if (now - _kept_from(row)).total_seconds() > window_s:
                row.attempts = 0
                row.blocked_until = None
            row.attempts += 1
            row.last_attempt_at = now
            over = row.attempts - limit_of[row.key]
            if over >= 0:
                delay = min(max_delay_s, base_delay_s * 2 ** min(over, 30))
                row.blocked_until = now + dt.timedelta(seconds=delay)
            session.add(row)
        session.commit()
    _sweep(engine, now, window_s)
    return 0.0


def _kept_from(row: LoginThrottle) -> dt.datetime:
    """When a key's count starts to age: its last attempt, or the end of its wait."""
    if row.blocked_until is not None and row.blocked_until > row.last_attempt_at:
        return row.blocked_until
    return row.last_attempt_at


def _sweep(engine: Engine, now: dt.datetime, window_s: float) -> None:
    """Forget the keys whose count is forgotten (``_kept_from`` older than a window): a
    flood of made-up names stays small. Rows another transaction holds are skipped, so the
    sweep never waits."""
    before = now - dt.timedelta(seconds=window_s)
    stale = (
        sa_select(col(LoginThrottle.key))
        .where(
            col(LoginThrottle.last_attempt_at) < before,
            col(LoginThrottle.blocked_until).is_(None)
            | (col(LoginThrottle.blocked_until) < before),
        )
        .limit(1000)
        .with_for_update(skip_locked=True)
    )
    with Session(engine) as session:
        session.connection().execute(
            delete(LoginThrottle).where(col(LoginThrottle.key).in_(stale.scalar_subquery()))
        )
        session.commit()


def undo_login_attempt(
    engine: Engine, user_key: str, client_key: str | None, client_limit: int
) -> None:
    """A counted attempt succeeded. The name's count is forgotten (whoever logged in knows the
    password); the address's attempt no longer counts, and the block it may have set ends,
    while failures of others from that address still count until their window passes."""
    with Session(engine) as session:
        session.connection().execute(
            delete(LoginThrottle).where(col(LoginThrottle.key) == user_key)
        )
        row = None
        if client_key is not None:
            row = session.exec(
                select(LoginThrottle).where(LoginThrottle.key == client_key).with_for_update()
            ).first()
        if row is not None:
            row.attempts = max(0, row.attempts - 1)
            if row.attempts < client_limit:
                row.blocked_until = None
            session.add(row)
        session.commit()


def give_back_login_attempt(engine: Engine, limits: Sequence[tuple[str, int]]) -> None:
    """A counted attempt whose password was never checked (the console was too busy to check
    it) counts no more against any ``(key, limit)``; a wait it started ends when the count is
    back under the limit."""
    limit_of = dict(limits)
    with Session(engine) as session:
        rows = session.exec(
            select(LoginThrottle)
            .where(col(LoginThrottle.key).in_(sorted(limit_of)))
            .order_by(col(LoginThrottle.key))
            .with_for_update()
        )
        for row in rows:
            row.attempts = max(0, row.attempts - 1)
            if row.attempts < limit_of[row.key]:
                row.blocked_until = None
            session.add(row)
        session.commit()


def clear_login_throttle(engine: Engine, keys: Sequence[str]) -> None:
    with Session(engine) as session:
        session.connection().execute(
            delete(LoginThrottle).where(col(LoginThrottle.key).in_(list(keys)))
        )
        session.commit()


def login_throttles(engine: Engine, keys: Sequence[str]) -> dict[str, ThrottleState]:
    with Session(engine) as session:
        rows = session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(list(keys))))
        return {
            row.key: ThrottleState(row.key, row.attempts, row.last_attempt_at, row.blocked_until)
            for row in rows
        }
