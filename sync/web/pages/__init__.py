"""The console's pages, one module per page group; each lists its addresses in ``PAGES``
(``sync.web.console.Page``: the address, the handler, the role, GET or POST).

A new page is a new module here (its handlers take the ``Console`` and the ``View``, and
raise ``sync.web.guard.Problem`` for an error page) and one line in ``GROUPS``.
"""

from __future__ import annotations

from sync.web.console import Page
from sync.web.pages import actions, failures, ledger, overview, periods, school_actions, schools

__all__ = ["GROUPS"]

GROUPS: tuple[tuple[Page, ...], ...] = (
    overview.PAGES,
    schools.PAGES,
    failures.PAGES,
    ledger.PAGES,
    actions.PAGES,
    school_actions.PAGES,
    periods.PAGES,
)
