"""Who is asking: passwords, sessions, CSRF tokens and the login throttle.

- Passwords are hashed with Argon2id (``argon2-cffi``: salted, slow, memory-hard); an
  unknown user name costs the same time as a wrong password, so names cannot be probed.
  Each check takes the hash's memory (64 MiB with the defaults), so at most
  ``CHECKS_AT_ONCE`` run at once (``CheckSlots``): a burst of 60 logins, 40 checked at once
  by the thread pool, took the console from 107 MB to 2.6 GB (issue 22). A few more wait
  their turn briefly; past that a login is refused as busy (429), and its attempt is given
  back to the throttle (its password was never checked).
- Sessions are kept on the server (``state.console_sessions.ConsoleSession``). The cookie
  holds a random session id (``s.<32 random bytes>``); the store holds only HMAC-SHA256(key,
  id), with the console's key (``sync.web.keys``), which is never in the store: a copy of the
  database gives neither a cookie nor the means to make one, and a row written into it by hand
  is worth nothing without the key. A session ends at logout, when the user is disabled, gets
  a new password or another role (their rows are deleted), after ``session_idle_s`` without a
  request and ``session_max_age_s`` after login, whichever comes first; a login starts a new
  id (no session fixation).
- Before login the cookie holds a random nonce (``a.<...>``), only for the login form's CSRF
  token; nothing is stored for it.
- Every state-changing request carries a CSRF token in a form field (synchronizer token
  pattern): HMAC(key, the cookie's value), so it is not stored anywhere either and changes
  with every session.
- Login attempts are counted per user name and per client address in the state store,
  atomically and *before* the password is checked (``state.login_throttle.count_login_attempt``):
  parallel attempts cannot all slip under the limit, and several consoles on one store share
  the counts. Past the limit the key backs off (a delay that doubles, capped), never a lock
  for good. A browser that has logged in as a user before holds a *device cookie* for that
  name (``<name>.<nonce>.<HMAC>``, after OWASP's "device cookies"): its attempts for that
  name count against that device alone, so a stranger's guesses can make the name wait for
  everyone else, never for the user at their own browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from state import console_sessions, login_throttle, users
from state.users import User
from sync.web.keys import ConsoleKey

__all__ = [
    "CHECKS_AT_ONCE",
    "COOKIE",
    "DEVICE_COOKIE",
    "DEVICE_COOKIE_MAX_AGE_S",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Busy",
    "CheckSlots",
    "Clock",
    "Cookie",
    "Devices",
    "LoginLimiter",
    "LoginPolicy",
    "Passwords",
    "Sessions",
    "password_problem",
]

Clock = Callable[[], dt.datetime]

COOKIE = "ekinerja_console"  # the session cookie (``Cookie``)
DEVICE_COOKIE = "ekinerja_device"  # a device cookie (``Devices``)
DEVICE_COOKIE_MAX_AGE_S = 180 * 24 * 3600

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
_MAX_COOKIE = 200


def password_problem(password: str, name: str) -> str | None:
    """Why ``password`` cannot be the new password of the user ``name``, or None: at least
    12 characters, and not holding the name in any case (the first guess of anyone who
    knows the name). The CLI asks this wherever a password is set; the console sets none."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password has at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    if name and name.casefold() in password.casefold():
        return f"a password may not contain the user name ({name})"
    return None


# Password checks at once: each holds the hash's memory (64 MiB by default) and already runs
# on several cores (the hash's parallelism, 4 lanes), so two keep a small server busy.
CHECKS_AT_ONCE = 2
# Logins that wait for a check, and how long each waits, before it is refused as busy: a
# wait holds a thread of the console's pool (40), so most of the pool stays for the pages.
CHECK_QUEUE = 16
CHECK_WAIT_S = 10.0
BUSY_RETRY_AFTER_S = 5


class Busy(Exception):
    """No password check could start in time: the console is checking others."""


class CheckSlots:
    """At most ``size`` password checks at once; at most ``queue`` more wait for one, each
    at most ``wait_s``; the rest get ``Busy`` at once. Thread-based (the checks run in
    worker threads), so it holds across event loops too."""

    def __init__(
        self, size: int = CHECKS_AT_ONCE, *, queue: int = CHECK_QUEUE, wait_s: float = CHECK_WAIT_S
    ) -> None:
        self.size = size
        self.queue = queue
        self.wait_s = wait_s
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A slot for one check, held for the ``with`` block; ``Busy`` when none is had."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.queue:
                    raise Busy
                self._waiting += 1
            try:
                got = self._slots.acquire(timeout=self.wait_s)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise Busy
        try:
            yield
        finally:
            self._slots.release()


class Passwords:
    """Argon2id hashes (the library's defaults unless a hasher is given, e.g. a cheap one
    in tests). ``verify`` runs in one of ``slots`` (``CheckSlots``): a few at once."""

    def __init__(self, hasher: PasswordHasher | None = None, *, slots: CheckSlots | None = None):
        self.hasher = hasher or PasswordHasher()
        self.slots = slots or CheckSlots()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. ``password_hash`` None (no such user) costs the
        same as a wrong password. ``Busy`` when no slot is had in time (``CheckSlots``)."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        with self.slots.hold():
            if password_hash is None:
                if self._dummy is None:
                    self._dummy = self.hasher.hash(secrets.token_hex(16))
                password_hash, password = self._dummy, password + "\x00not-it"
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False


@dataclass(frozen=True)
class Cookie:
    """A session cookie's value, parsed: ``s.<id>`` (logged in) or ``a.<nonce>`` (before
    login)."""

    value: str

    @property
    def session_id(self) -> str | None:
        return self.value[2:] if self.value.startswith("s.") else None

    @classmethod
    def parse(cls, raw: str | None) -> Cookie | None:
        if not raw or len(raw) > _MAX_COOKIE or raw[:2] not in ("s.", "a.") or len(raw) < 20:
            return None
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in raw[2:]):
            return None
        return cls(raw)

    @classmethod
    def anonymous(cls) -> Cookie:
        return cls("a." + secrets.token_urlsafe(32))


class Sessions:
    """Server-side sessions over the state store, keyed by the console's key."""

    def __init__(
        self, engine: Engine, key: ConsoleKey, *, clock: Clock, max_age_s: int, idle_s: int
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.max_age_s = max_age_s
        self.idle_s = min(idle_s, max_age_s)
        self._id_key = key.derive("session-id")
        self._csrf_key = key.derive("csrf")

    def id_hash(self, session_id: str) -> str:
        return hmac.new(self._id_key, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf(self, cookie: Cookie) -> str:
        """The CSRF token of the session (or of the login form) held by ``cookie``."""
        digest = hmac.new(self._csrf_key, cookie.value.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf_matches(self, cookie: Cookie | None, submitted: str | None) -> bool:
        """The form's token is the cookie's (compared in constant time)."""
        if cookie is None or not submitted or len(submitted) > 200:
            return False
        return hmac.compare_digest(self.csrf(cookie).encode(), submitted.encode())

    def start(self, user: User) -> Cookie:
        """A new session of ``user``: a fresh random id, stored as its keyed hash."""
        now = self.clock()
        console_sessions.sweep_sessions(
            self.engine, now, max_age_s=self.max_age_s, idle_s=self.idle_s
        )
        session_id = secrets.token_urlsafe(32)
        assert user.id is not None  # a user read from the store
        console_sessions.create_session(self.engine, self.id_hash(session_id), user.id, now)
        return Cookie("s." + session_id)

    def user(self, cookie: Cookie | None) -> User | None:
        """The user of a live session, or None (no session, ended, expired, disabled)."""
        session_id = cookie.session_id if cookie else None
        if session_id is None:
            return None
        return users.session_user(
            self.engine,
            self.id_hash(session_id),
            self.clock(),
            max_age_s=self.max_age_s,
            idle_s=self.idle_s,
        )

    def end(self, cookie: Cookie | None) -> None:
        session_id = cookie.session_id if cookie else None
        if session_id is not None:
            console_sessions.delete_session(self.engine, self.id_hash(session_id))


class Devices:
    """Device cookies: proof that this browser logged in as a name before."""

    def __init__(self, key: ConsoleKey) -> None:
        self._key = key.derive("device")

    def _mac(self, name: str, nonce: str) -> str:
        digest = hmac.new(self._key, f"{name}.{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, name: str) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{name}.{nonce}.{self._mac(name, nonce)}"

    def holder(self, raw: str | None, name: str) -> str | None:
        """The device's id when ``raw`` is a genuine device cookie for ``name``, else None."""
        if not raw or len(raw) > 300 or raw.count(".") < 2:
            return None
        rest, _, mac = raw.rpartition(".")
        cookie_name, _, nonce = rest.rpartition(".")
        if cookie_name != name or not nonce:
            return None
        if not hmac.compare_digest(self._mac(name, nonce).encode(), mac.encode()):
            return None
        return hashlib.sha256(nonce.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LoginPolicy:
    """How many login attempts a user name and a client address get, and the backoff past
    the limit. A count is forgotten ``window_s`` after the last attempt or, when the key had
    to wait, after the wait ends (``state.login_throttle.count_login_attempt``)."""

    max_per_user: int = 5
    max_per_client: int = 20
    window_s: float = 900.0
    base_delay_s: float = 60.0
    max_delay_s: float = 900.0


class LoginLimiter:
    """Counts login attempts in the state store (``state.login_throttle.count_login_attempt``)."""

    def __init__(self, engine: Engine, *, clock: Clock, policy: LoginPolicy | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.policy = policy or LoginPolicy()

    @staticmethod
    def keys(user: str, client: str) -> tuple[str, str]:
        return f"user:{user[:64]}", f"addr:{client[:64]}"

    def _limits(self, user: str, client: str, device: str | None) -> list[tuple[str, int]]:
        user_key, client_key = self.keys(user, client)
        policy = self.policy
        if device is not None:
            return [(f"device:{device}", policy.max_per_user)]
        return [(user_key, policy.max_per_user), (client_key, policy.max_per_client)]

    def attempt(self, user: str, client: str, device: str | None = None) -> float:
        """Count an attempt (0.0: go on and check the password) or refuse it (seconds to
        wait; nothing counted). ``device``: the id of a genuine device cookie for ``user``
        (``Devices.holder``): then the attempt counts against that device only."""
        policy = self.policy
        return login_throttle.count_login_attempt(
            self.engine,
            self._limits(user, client, device),
            self.clock(),
            window_s=policy.window_s,
            base_delay_s=policy.base_delay_s,
            max_delay_s=policy.max_delay_s,
        )

    def give_back(self, user: str, client: str, device: str | None = None) -> None:
        """A counted attempt whose password was never checked (``Busy``) counts no more."""
        login_throttle.give_back_login_attempt(self.engine, self._limits(user, client, device))

    def succeeded(self, user: str, client: str, device: str | None = None) -> None:
        if device is not None:
            login_throttle.undo_login_attempt(self.engine, f"device:{device}", None, 0)
            return
        login_throttle.undo_login_attempt(
            self.engine, *self.keys(user, client), self.policy.max_per_client
        )
