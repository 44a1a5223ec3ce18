"""One daemon per SQLite state store: a lock file held for the daemon's lifetime.

SQLite takes one writer at a time, and two daemons on one file would fight over it; several
daemons need PostgreSQL, where the outbox claims and the school leases share the work.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

__all__ = ["StateLock", "StoreLocked"]


class StoreLocked(Exception):
    """Another daemon holds the state store's lock; the message says what to do."""


class StateLock:
    """One daemon per SQLite state store: ``flock`` on ``<database>.daemon.lock``, held while
    the daemon runs (the kernel drops it when the process ends, however it ends)."""

    def __init__(self, path: Path, database: Path) -> None:
        self.path = path
        self.database = database
        self._file: IO[str] | None = None

    @classmethod
    def for_url(cls, url: str) -> StateLock | None:
        """The lock of a SQLite file URL; None for other databases (and in-memory SQLite)."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        database = Path(parsed.database).resolve()
        return cls(database.with_name(database.name + ".daemon.lock"), database)

    def acquire(self) -> None:
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise StoreLocked(
                f"another ekinerja-sync daemon (pid {holder}) is running on the state store "
                f"{self.database} (it holds {self.path}). With SQLite only one daemon can "
                "run: stop the other one first, or use PostgreSQL to run several."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
