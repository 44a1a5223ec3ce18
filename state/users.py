"""People who use the web console: one ``User`` each, and the changes made to them.

- ``User``: one console user: a unique name, a role (``auditor`` reads, exports and verifies;
  ``operator`` may also replay and discard), a slow salted password hash (made by
  ``sync.web.auth``, never by this module), and whether the account is disabled.
- A user's logged-in sessions are ``state.console_sessions``; ``session_user`` here says which
  enabled user a live session stands for. Disabling, a new password or a new role end the
  user's sessions in the same transaction as the change.
- The login throttle (``state.login_throttle``) is cleared for a name given a new password.

Every change to a user (added, disabled, enabled, new role, new password) is written to the
audit ledger in the same transaction, by name and role only: no password material.
Nothing here hashes or checks passwords: this module stores what it is given.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from enum import StrEnum

from sqlalchemy import Column, Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state import ledger
from state.console_sessions import ConsoleSession, delete_user_sessions, is_expired
from state.login_throttle import clear_login_throttle
from state.types import UTCDateTime

__all__ = [
    "NAME_PATTERN",
    "Role",
    "User",
    "UserError",
    "add_user",
    "end_sessions",
    "get_user",
    "list_users",
    "session_user",
    "set_disabled",
    "set_password",
    "set_role",
    "user_count",
]

# Lowercase letters, digits and . _ - ; it is written into the ledger as "operator:<name>".
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

Clock = Callable[[], dt.datetime]


class Role(StrEnum):
    AUDITOR = "auditor"
    OPERATOR = "operator"


class UserError(ValueError):
    """A user cannot be added or changed; the message says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class User(SQLModel, table=True):
    __tablename__ = "console_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: Role = Field(max_length=16)
    password_hash: str = Field(max_length=255, repr=False)
    created_at: dt.datetime = Field(
        default_factory=_now, sa_column=Column(UTCDateTime(), nullable=False)
    )
    disabled: bool = False


# -- users -------------------------------------------------------------------------------------


def get_user(engine: Engine, name: str) -> User | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(User).where(User.name == name)).first()


def list_users(engine: Engine) -> list[User]:
    with Session(engine) as session:
        return list(session.exec(select(User).order_by(col(User.name))))


def _audit(session: Session, actor: str, action: str, detail: str, at: dt.datetime) -> None:
    ledger.append(
        session,
        ledger.LedgerEvent(actor=actor, action=action, outcome="done", detail=detail),
        at=at,
    )


def add_user(
    engine: Engine,
    name: str,
    role: Role,
    password_hash: str,
    *,
    actor: str = "cli",
    clock: Clock = _now,
) -> User:
    """Add a user (and a ``user_add`` ledger entry); ``UserError`` if the name is not allowed
    or is taken."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"{name!r} is not a user name: 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    user = User(name=name, role=role, password_hash=password_hash)
    with Session(engine, expire_on_commit=False) as session:
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            raise UserError(f"user {name!r} exists already") from None
        _audit(session, actor, "user_add", f"added user {name} with role {role.value}", clock())
        session.commit()
    return user


def _change(
    engine: Engine,
    name: str,
    change: Callable[[User], str | None],
    *,
    action: str,
    actor: str,
    clock: Clock,
) -> User:
    """Apply ``change`` to the user (it returns the ledger's words, or None: nothing to do),
    end the user's sessions, and write the ledger entry, in one transaction."""
    with Session(engine, expire_on_commit=False) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise UserError(f"no user {name!r}")
        detail = change(user)
        if detail is None:
            return user
        session.add(user)
        session.flush()
        delete_user_sessions(session, user.id)
        _audit(session, actor, action, detail, clock())
        session.commit()
        return user


def set_disabled(
    engine: Engine,
    name: str,
    disabled: bool = True,
    *,
    actor: str = "cli",
    clock: Clock = _now,
) -> User:
    """Disable (or enable again) a user; their sessions end at once. ``UserError`` if there
    is none of that name."""

    def change(user: User) -> str | None:
        if user.disabled == disabled:
            return None
        user.disabled = disabled
        return f"{'disabled' if disabled else 'enabled'} user {name}"

    action = "user_disable" if disabled else "user_enable"
    return _change(engine, name, change, action=action, actor=actor, clock=clock)


def set_role(
    engine: Engine, name: str, role: Role, *, actor: str = "cli", clock: Clock = _now
) -> User:
    """Give a user another role; their sessions end at once."""

    def change(user: User) -> str | None:
        if user.role is role:
            return None
        was, user.role = user.role, role
        return f"role of user {name} changed from {was.value} to {role.value}"

    return _change(engine, name, change, action="user_role", actor=actor, clock=clock)


def set_password(
    engine: Engine, name: str, password_hash: str, *, actor: str = "cli", clock: Clock = _now
) -> User:
    """Give a user a new password hash; their sessions end at once and the login throttle of
    their name is cleared. The ledger says that the password changed, nothing more."""

    def change(user: User) -> str | None:
        user.password_hash = password_hash
        return f"password of user {name} changed"

    user = _change(engine, name, change, action="user_passwd", actor=actor, clock=clock)
    clear_login_throttle(engine, [f"user:{name}"])
    return user


def user_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(User)).one())


# -- the user of a session ----------------------------------------------------------------------


def session_user(
    engine: Engine,
    id_hash: str,
    now: dt.datetime,
    *,
    max_age_s: float,
    idle_s: float,
    touch_after_s: float = 60.0,
) -> User | None:
    """The enabled user whose live session has this id hash, or None. A session past its
    absolute or idle timeout (or from the future) is deleted. ``last_seen_at`` is written at
    most every ``touch_after_s`` seconds (not on every request)."""
    with Session(engine, expire_on_commit=False) as session:
        found = session.exec(
            select(ConsoleSession, User)
            .join(User, col(User.id) == col(ConsoleSession.user_id))
            .where(ConsoleSession.id_hash == id_hash)
        ).first()
        if found is None:
            return None
        row, user = found
        if user.disabled or is_expired(row, now, max_age_s=max_age_s, idle_s=idle_s):
            session.delete(row)
            session.commit()
            return None
        if (now - row.last_seen_at).total_seconds() > touch_after_s:
            row.last_seen_at = now
            session.add(row)
            session.commit()
        return user


def end_sessions(engine: Engine, name: str) -> int:
    """End every session of the user ``name``; how many there were."""
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        count = delete_user_sessions(session, user.id if user else None)
        session.commit()
        return count
