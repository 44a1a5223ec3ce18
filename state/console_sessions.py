"""The web console's logged-in sessions (``ConsoleSession``), one row a session.

The row holds a keyed hash of the session id (``sync.web.auth`` makes it with the console's
key, which is never in this store), never the id itself, so a copy of the database cannot be
turned into a working cookie. A session is live until its absolute or idle timeout
(``is_expired``); ending sessions is deleting their rows. Which user a session stands for
(``state.users.session_user``) and the account changes that end a user's sessions
(``state.users``: disabling, a new password or a new role, in the same transaction as the
change) are the users module's: a session knows its user only by id.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Engine, ForeignKey, Integer, delete
from sqlmodel import Field, Session, SQLModel, col

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state.types import UTCDateTime

__all__ = [
    "ConsoleSession",
    "create_session",
    "delete_session",
    "delete_user_sessions",
    "is_expired",
    "sweep_sessions",
]


class ConsoleSession(SQLModel, table=True):
    """A logged-in session: ``id_hash`` is HMAC-SHA256(console key, session id), in hex."""

    __tablename__ = "console_session"

    id_hash: str = Field(primary_key=True, min_length=64, max_length=64)
    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("console_user.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


def create_session(engine: Engine, id_hash: str, user_id: int, now: dt.datetime) -> None:
    """Store a new session of the user ``user_id`` (its id's keyed hash only)."""
    with Session(engine) as session:
        session.add(
            ConsoleSession(id_hash=id_hash, user_id=user_id, created_at=now, last_seen_at=now)
        )
        session.commit()


def is_expired(row: ConsoleSession, now: dt.datetime, *, max_age_s: float, idle_s: float) -> bool:
    """Past its absolute or idle timeout, or from the future (a clock set back by more than a
    minute)."""
    age = (now - row.created_at).total_seconds()
    idle = (now - row.last_seen_at).total_seconds()
    return age > max_age_s or idle > idle_s or age < -60


def delete_session(engine: Engine, id_hash: str) -> None:
    with Session(engine) as session:
        session.connection().execute(
            delete(ConsoleSession).where(col(ConsoleSession.id_hash) == id_hash)
        )
        session.commit()


def delete_user_sessions(session: Session, user_id: int | None) -> int:
    """Delete every session of the user ``user_id`` in the caller's transaction; how many."""
    if user_id is None:
        return 0
    result = session.connection().execute(
        delete(ConsoleSession).where(col(ConsoleSession.user_id) == user_id)
    )
    return int(result.rowcount or 0)


def sweep_sessions(engine: Engine, now: dt.datetime, *, max_age_s: float, idle_s: float) -> None:
    """Delete the sessions past their absolute or idle timeout."""
    with Session(engine) as session:
        session.connection().execute(
            delete(ConsoleSession).where(
                (col(ConsoleSession.created_at) < now - dt.timedelta(seconds=max_age_s))
                | (col(ConsoleSession.last_seen_at) < now - dt.timedelta(seconds=idle_s))
            )
        )
        session.commit()
