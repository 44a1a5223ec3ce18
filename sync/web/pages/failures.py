"""The failures (failed, locked or held records) and the quarantine, filtered by period,
school and reason; the reason is explained in plain words by the templates."""

from __future__ import annotations

import re

from sqlmodel import Session
from starlette.responses import Response

from state.models import RecordStatus
from sync.web import _queries as q
from sync.web.console import Console, Page
from sync.web.guard import NPSN, PERIOD, View

__all__ = ["PAGES"]

_SHOWN = 500  # rows on a page; the count says how many there are


def failures(console: Console, view: View) -> Response:
    known = q.periods(console.store.engine)
    period = view.param("period", PERIOD, max_len=6)
    npsn = view.param("npsn", NPSN, max_len=16)
    reason = view.param("reason", max_len=100)
    status = view.param("status", re.compile(r"failed|locked|held"), max_len=10)
    statuses = (RecordStatus(status),) if status else (RecordStatus.FAILED, RecordStatus.LOCKED)
    rows = console.store.reports.failures(
        period=period, npsns=[npsn] if npsn else [], reason=reason, statuses=statuses
    )
    shown = rows[:_SHOWN]
    with Session(console.store.engine) as session:
        names = q.teacher_names(session, sorted({r.nip for r in shown}))
        schools = q.school_names(session, None, sorted({r.npsn for r in shown}))
    return console.render(
        "failures.html",
        {
            "rows": shown,
            "count": len(rows),
            "names": names,
            "schools": schools,
            "periods": known,
            "f": {"period": period, "npsn": npsn, "reason": reason, "status": status},
            "nav": "failures",
        },
        view=view,
    )


def quarantine(console: Console, view: View) -> Response:
    known = q.periods(console.store.engine)
    period = view.param("period", PERIOD, max_len=6)
    npsn = view.param("npsn", NPSN, max_len=16)
    reason = view.param("reason", max_len=100)
    rows = console.store.reports.quarantine(
        period=period, npsns=[npsn] if npsn else [], reason=reason
    )
    shown = rows[:_SHOWN]
    with Session(console.store.engine) as session:
        names = q.teacher_names(session, sorted({r.nip for r in shown if r.nip}))
        schools = q.school_names(session, None, sorted({r.npsn for r in shown if r.npsn}))
    return console.render(
        "quarantine.html",
        {
            "rows": shown,
            "count": len(rows),
            "names": names,
            "schools": schools,
            "periods": known,
            "f": {"period": period, "npsn": npsn, "reason": reason},
            "nav": "quarantine",
        },
        view=view,
    )


PAGES = (
    Page("/failures", failures),
    Page("/quarantine", quarantine),
)
