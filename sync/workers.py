"""Workers on one state store: a process's name in claims and leases, and whether the owner
of a claim is a process on this host that no longer runs (its claims are taken over at once).

At the root of ``sync``: the pull (``pipeline``, the leases on reading a school) and delivery
(the claims on outbox entries) both name a worker, and neither imports the other for it.
"""

from __future__ import annotations

import os
import socket
import uuid

__all__ = ["orphaned", "worker_id"]


def worker_id() -> str:
    """This process's name in claims and leases: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


def orphaned(owner: str) -> bool:
    """True when a claim's owner was a process on this host that no longer runs (killed):
    its claims are taken over at once instead of when their lease runs out."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
