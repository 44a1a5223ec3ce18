"""People who use the web console, their sessions, and the login throttle.

- ``User``: one console user: a unique name, a role (``auditor`` reads, exports and verifies;
  ``operator`` may also replay and discard), a slow salted password hash (made by
  ``sync.web.auth``, never by this module), and whether the account is disabled.
- ``ConsoleSession``: one logged-in session. The row holds a keyed hash of the session id
  (``sync.web.auth`` makes it with the console's key, which is never in this store), never
  the id itself, so a copy of the database cannot be turned into a working cookie. Ending a
  user's sessions is deleting their rows: disabling, a new password or a new role do it in
  the same transaction as the change.
- ``LoginThrottle``: login attempts per user name and per client address (counted before the
  password is checked, see ``count_login_attempt``), and until when the next one must wait.

Every change to a user (added, disabled, enabled, new role, new password) is written to the
audit ledger in the same transaction, by name and role only: no password material.
Nothing here hashes or checks passwords: this module stores what it is given.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Column, Engine, ForeignKey, Integer, delete, func
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

import state.models  # noqa: F401  (sets the metadata's naming convention before the tables)
from state import ledger
from state.types import UTCDateTime

__all__ = [
    "NAME_PATTERN",
    "ConsoleSession",
    "LoginThrottle",
    "Role",
    "ThrottleState",
    "User",
    "UserError",
    "add_user",
    "clear_login_throttle",
    "count_login_attempt",
    "create_session",
    "delete_session",
    "end_sessions",
    "get_user",
    "list_users",
    "login_throttles",
    "session_user",
    "set_disabled",
    "set_password",
    "set_role",
    "sweep_sessions",
    "undo_login_attempt",
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


class LoginThrottle(SQLModel, table=True):
    """Login attempts counted for one key (``user:<name>`` or ``addr:<address>``)."""

    __tablename__ = "console_login_throttle"

    key: str = Field(primary_key=True, max_length=128)
    attempts: int = 0
    last_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    blocked_until: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


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


def _end_sessions(session: Session, user_id: int | None) -> int:
    if user_id is None:
        return 0
    result = session.connection().execute(
        delete(ConsoleSession).where(col(ConsoleSession.user_id) == user_id)
    )
    return int(result.rowcount or 0)


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
        _end_sessions(session, user.id)
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


# -- sessions ----------------------------------------------------------------------------------


def create_session(engine: Engine, id_hash: str, user: User, now: dt.datetime) -> None:
    """Store a new session of ``user`` (its id's keyed hash only); expired ones are swept."""
    assert user.id is not None
    with Session(engine) as session:
        session.add(
            ConsoleSession(id_hash=id_hash, user_id=user.id, created_at=now, last_seen_at=now)
        )
        session.commit()


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
        age = (now - row.created_at).total_seconds()
        idle = (now - row.last_seen_at).total_seconds()
        if age > max_age_s or idle > idle_s or age < -60 or user.disabled:
            session.delete(row)
            session.commit()
            return None
        if idle > touch_after_s:
            row.last_seen_at = now
            session.add(row)
            session.commit()
        return user


def delete_session(engine: Engine, id_hash: str) -> None:
    with Session(engine) as session:
        session.connection().execute(
            delete(ConsoleSession).where(col(ConsoleSession.id_hash) == id_hash)
        )
        session.commit()


def end_sessions(engine: Engine, name: str) -> int:
    """End every session of the user ``name``; how many there were."""
    with Session(engine) as session:
        user = session.exec(select(User).where(User.name == name)).first()
        count = _end_sessions(session, user.id if user else None)
        session.commit()
        return count


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


# -- the login throttle ------------------------------------------------------------------------


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
