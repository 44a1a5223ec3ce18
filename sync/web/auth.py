"""Who is asking: passwords, sessions, CSRF tokens and the login rate limit.

- Passwords are hashed with Argon2id (``argon2-cffi``: salted, slow, memory-hard); an
  unknown user name costs the same time as a wrong password, so names cannot be probed.
- A session is a cookie signed with ``itsdangerous`` (HMAC): the user's name, when they
  logged in, and the session's CSRF token. It expires ``max_age_s`` after login (checked
  against the injected clock, not the browser's). The user is read from the state store on
  every request, so a disabled user is out at once.
- Every state-changing request carries the session's CSRF token in a form field
  (synchronizer token pattern); the login form too (a session without a user holds it).
- Failed logins are counted per user name and per client address in a sliding window; past
  the limit, logins are refused without checking the password until the window has moved.
  The counts live in the process (a restart forgets them; several consoles count apart).
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeSerializer

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "Clock",
    "LoginLimiter",
    "Passwords",
    "SessionCodec",
    "SessionData",
    "csrf_matches",
    "password_problem",
]

Clock = Callable[[], dt.datetime]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


def password_problem(password: str) -> str | None:
    """Why a new password cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password has at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    return None


class Passwords:
    """Argon2id hashes (the library's defaults unless a hasher is given, e.g. a cheap one
    in tests)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when ``password`` matches. ``password_hash`` None (no such user) costs the
        same as a wrong password."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return False
        if password_hash is None:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_hex(16))
            password_hash, password = self._dummy, password + "\x00not-it"
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class SessionData:
    """What the session cookie holds. ``user`` is None before login (the login form's CSRF
    token lives there); ``issued_at`` is the login time (UTC epoch seconds)."""

    csrf: str
    user: str | None = None
    issued_at: float = 0.0

    @classmethod
    def anonymous(cls) -> SessionData:
        return cls(csrf=secrets.token_urlsafe(32))

    @classmethod
    def logged_in(cls, user: str, now: dt.datetime) -> SessionData:
        # A fresh CSRF token at login: a token seen before login is worth nothing after it.
        return cls(csrf=secrets.token_urlsafe(32), user=user, issued_at=now.timestamp())


class SessionCodec:
    """Signs and reads session cookies; says whether a session has expired."""

    def __init__(self, secret_key: str, *, max_age_s: int, clock: Clock) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="ekinerja-sync.web.session")
        self.max_age_s = max_age_s
        self.clock = clock

    def dumps(self, session: SessionData) -> str:
        return str(
            self._serializer.dumps({"c": session.csrf, "u": session.user, "t": session.issued_at})
        )

    def loads(self, cookie: str | None) -> SessionData | None:
        """The session in a cookie, or None when it is missing, forged or malformed."""
        if not cookie or len(cookie) > 4096:
            return None
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        csrf, user, issued = data.get("c"), data.get("u"), data.get("t")
        if not isinstance(csrf, str) or not csrf:
            return None
        if user is not None and not isinstance(user, str):
            return None
        if not isinstance(issued, int | float) or isinstance(issued, bool):
            return None
        return SessionData(csrf=csrf, user=user, issued_at=float(issued))

    def expired(self, session: SessionData) -> bool:
        if session.user is None:
            return False
        age = self.clock().timestamp() - session.issued_at
        return age < -60 or age > self.max_age_s  # a session from the future is not trusted


def csrf_matches(session: SessionData | None, submitted: str | None) -> bool:
    """The form's token is the session's (compared in constant time)."""
    if session is None or not submitted or len(submitted) > 200:
        return False
    return hmac.compare_digest(session.csrf.encode(), submitted.encode())


class LoginLimiter:
    """Counts failed logins per user name and per client in a sliding window.

    ``max_per_user`` failures for one name, or ``max_per_client`` from one address, within
    ``window_s`` block further attempts (for that name / from that address) until the oldest
    failure leaves the window. At most ``max_keys`` names and addresses are tracked (the
    oldest are forgotten first), so a flood of made-up names cannot fill the memory.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        max_per_user: int = 5,
        max_per_client: int = 20,
        window_s: float = 300.0,
        max_keys: int = 10_000,
    ) -> None:
        self.clock = clock
        self.max_per_user = max_per_user
        self.max_per_client = max_per_client
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, user: str, client: str) -> float:
        """Seconds until a login for ``user`` from ``client`` may be tried; 0: now."""
        now = self.clock().timestamp()
        wait = 0.0
        for key, limit in ((f"u:{user}", self.max_per_user), (f"c:{client}", self.max_per_client)):
            times = self._recent(key, now)
            if len(times) >= limit:
                wait = max(wait, times[len(times) - limit] + self.window_s - now)
        return wait

    def failed(self, user: str, client: str) -> None:
        now = self.clock().timestamp()
        for key in (f"u:{user}", f"c:{client}"):
            times = self._failures.setdefault(
                key, deque(maxlen=max(self.max_per_user, self.max_per_client))
            )
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        self._failures.pop(f"u:{user}", None)
