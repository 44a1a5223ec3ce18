"""The web console for operators and auditors: server-rendered pages, roles, sessions, CSRF.

Where things are: ``app`` assembles the application (``create_web_app``) and ``server``
serves it; ``guard`` is what every request passes (limits, the page wrapper with its role and
CSRF checks, error pages); ``login`` logs in and out, over ``auth`` (passwords, sessions,
device cookies, the login throttle) and ``keys`` (the console's key); ``console`` is what
the pages share; ``pages`` holds one module per page group (a new page: a new module there
and one line in ``pages.GROUPS``).

May import: ``operations``, ``pipeline`` (the period listing), ``state``, ``mappings``,
``connectors.errors`` (a replay that cannot reach PMM or e-Kinerja),
``connectors.thread_server`` (the console in a thread, as the sandbox runs) and the root helpers
(``bootstrap`` builds a replay's engine); never ``cli`` or ``service``.
"""

from __future__ import annotations

from sync.web.app import create_web_app
from sync.web.server import RunningConsole, serve, start_in_thread

__all__ = ["RunningConsole", "create_web_app", "serve", "start_in_thread"]
