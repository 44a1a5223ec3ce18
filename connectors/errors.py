"""The project's own errors, grouped by what the caller does next.

Translated once, where they enter (inside ``connectors/``); nothing above catches httpx
exceptions::

    SyncError
     ├── RetriableError        try the same request again later (429, 5xx, timeout, dropped)
     │    ├── TargetPaused     the whole target is in maintenance (503 + Retry-After)
     │    └── Unreachable      no connection could be made, or no answer in time: an outage
     ├── FatalError           stop the run: auth, config, a contract the other side broke
     │    └── AuthError        credentials refused (401 on the token endpoint, 403)
     └── RecordRejected       this record (or request) is wrong: quarantine / dead-letter it,
          │                   the batch goes on
          ├── Conflict         409: the target already holds something (carries the answer)
          └── PreconditionFailed  412: the SKP version moved on (carries the current versi)

Every error carries ``status`` and ``answer`` (the parsed JSON body, if any) so the state
store and the ledger can keep what the other side said. Messages never contain secrets.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "Conflict",
    "FatalError",
    "PreconditionFailed",
    "RecordRejected",
    "RetriableError",
    "SyncError",
    "TargetPaused",
    "Unreachable",
]


class SyncError(Exception):
    """Base of every error the connectors raise."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        answer: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.answer = answer or {}
        self.retry_after_s = retry_after_s

    @property
    def code(self) -> str | None:
        """The target's ``kode`` (or the source's ``error``), when the answer has one."""
        value = self.answer.get("kode") or self.answer.get("error")
        return str(value) if value is not None else None


class RetriableError(SyncError):
    """The same request may succeed later (429, 5xx, timeouts, dropped connections)."""


class TargetPaused(RetriableError):
    """The target announced maintenance (503 with Retry-After): pause, don't burn attempts."""


class Unreachable(RetriableError):
    """No connection could be made (refused, no route, no such host), or the request timed
    out: the other side may be down. Counted by the delivery's circuit breaker; never a
    reason for a record to fail."""


class FatalError(SyncError):
    """Nothing in this run can succeed until a person acts (auth, config, broken contract)."""


class AuthError(FatalError):
    """Credentials were refused, or the client may not write there."""


class RecordRejected(SyncError):
    """This request is wrong for this record; retrying it unchanged will not help."""


class Conflict(RecordRejected):
    """409: the target already holds something for this record (see ``code``)."""


class PreconditionFailed(RecordRejected):
    """412: the SKP's ``versi`` moved on; ``answer['versi']`` is the current one."""
