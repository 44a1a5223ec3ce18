"""People who use the web console, and the console's signing key.

- ``User``: one console user: a unique name, a role (``auditor`` reads, exports and verifies;
  ``operator`` may also replay and discard), a slow salted password hash (made by
  ``sync.web.auth``, never by this module), and whether the account is disabled.
- ``ConsoleSecret``: named secrets the console keeps in the state store when the settings
  give none (the key that signs session cookies), so that every console process on the same
  store accepts the same sessions.

Nothing here hashes or checks passwords: this module stores what it is given.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from enum import StrEnum

from sqlalchemy import Column, Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state.types import UTCDateTime

__all__ = [
    "NAME_PATTERN",
    "ConsoleSecret",
    "Role",
    "User",
    "UserError",
    "add_user",
    "console_secret",
    "get_user",
    "list_users",
    "set_disabled",
    "user_count",
]

# Lowercase letters, digits and . _ - ; it is written into the ledger as "operator:<name>".
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


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


class ConsoleSecret(SQLModel, table=True):
    __tablename__ = "console_secret"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    created_at: dt.datetime = Field(
        default_factory=_now, sa_column=Column(UTCDateTime(), nullable=False)
    )


def get_user(engine: Engine, name: str) -> User | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(User).where(User.name == name)).first()


def list_users(engine: Engine) -> list[User]:
    with Session(engine) as session:
        return list(session.exec(select(User).order_by(col(User.name))))


def add_user(engine: Engine, name: str, role: Role, password_hash: str) -> User:
    """Add a user; ``UserError`` if the name is not allowed or is taken."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(
            f"{name!r} is not a user name: 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    user = User(name=name, role=role, password_hash=password_hash)
    with Session(engine, expire_on_commit=False) as session:
        session.add(user)
        try:
            session.commit()
        except IntegrityError:
            raise UserError(f"user {name!r} exists already") from None
    return user


def set_disabled(engine: Engine, name: str, disabled: bool = True) -> User:
    """Disable (or enable again) a user; ``UserError`` if there is none of that name."""
    with Session(engine, expire_on_commit=False) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        if user is None:
            raise UserError(f"no user {name!r}")
        user.disabled = disabled
        session.add(user)
        session.commit()
        return user


def user_count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(User)).one())


def console_secret(engine: Engine, name: str = "session_key") -> str:
    """The secret called ``name``, made (32 random bytes, hex) and kept on first use.

    Two processes starting at once may both try to make it: the primary key lets one win and
    the other reads the winner's.
    """
    with Session(engine) as session:
        row = session.get(ConsoleSecret, name)
        if row is not None:
            return row.value
        session.add(ConsoleSecret(name=name, value=secrets.token_hex(32)))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
    with Session(engine) as session:
        row = session.get(ConsoleSecret, name)
        assert row is not None
        return row.value
