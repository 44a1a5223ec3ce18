"""HTTP clients for the source (PMM) and the target (e-Kinerja), and the errors they raise.

Also ``thread_server``: a uvicorn server in a thread, for the sandbox and the console alike
(the sandbox may import nothing of ``sync``).
"""

from __future__ import annotations

from connectors.ekinerja import EkinerjaClient, TargetAnswer
from connectors.errors import (
    AuthError,
    Conflict,
    FatalError,
    PreconditionFailed,
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
)
from connectors.pmm import PmmClient

__all__ = [
    "AuthError",
    "Conflict",
    "EkinerjaClient",
    "FatalError",
    "PmmClient",
    "PreconditionFailed",
    "RecordRejected",
    "RetriableError",
    "SyncError",
    "TargetAnswer",
    "TargetPaused",
]
