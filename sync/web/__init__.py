"""The web console for operators and auditors: server-rendered pages, roles, sessions, CSRF.

May import: ``operations``, ``pipeline`` (the period listing), ``state``, ``mappings`` and the
root helpers; never ``cli`` or ``service``.
"""

from __future__ import annotations

from sync.web.app import create_web_app
from sync.web.server import RunningConsole, serve, start_in_thread

__all__ = ["RunningConsole", "create_web_app", "serve", "start_in_thread"]
