"""The failures (failed, locked or held records) and the quarantine, filtered by period,
school and cause (an exact code, ``code``, or words of the reason, ``reason``); each cause is
named and explained in Indonesian by the templates, the raw reason folded away. A filter
with a period leads to the bulk actions (``/actions/bulk``) with the same filter."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.responses import Response

from state.models import RecordStatus
from sync.web import _queries as q
from sync.web._periods import chosen_period, period_choices
from sync.web.console import Console, Page
from sync.web.guard import NPSN, View

__all__ = ["PAGES"]

_SHOWN = 500  # rows on a page; the count says how many there are
_CODE = re.compile(r"[A-Za-z0-9_]{1,64}")


def _causes(codes: list[str | None]) -> list[str]:
    return sorted({c for c in codes if c})


def failures(console: Console, view: View) -> Response:
    choices = period_choices(console.store)
    choice = chosen_period(view, choices, required=False)
    period = choice.code if choice else None
    npsn = view.param("npsn", NPSN, max_len=16)
    reason = view.param("reason", max_len=100)
    code = view.param("code", _CODE, max_len=64)
    status = view.param("status", re.compile(r"failed|locked|held"), max_len=10)
    statuses = (RecordStatus(status),) if status else (RecordStatus.FAILED, RecordStatus.LOCKED)
    every = console.store.reports.failures(
        period=period, npsns=[npsn] if npsn else [], reason=reason, statuses=statuses
    )
    rows = [r for r in every if code is None or r.reason_code == code]
    shown = rows[:_SHOWN]
    with Session(console.store.engine) as session:
        names = q.teacher_names(session, sorted({r.nip for r in shown}))
        schools = q.school_names(session, None, sorted({r.npsn for r in shown}))
    f = {"period": period, "npsn": npsn, "reason": reason, "code": code, "status": status}
    failed = sum(1 for r in rows if r.status is RecordStatus.FAILED)
    bulk = None
    if period and failed and status in (None, "failed"):
        bulk = "/actions/bulk?" + urlencode({k: v for k, v in f.items() if v and k != "status"})
    return console.render(
        "failures.html",
        {
            "rows": shown,
            "count": len(rows),
            "failed": failed,
            "bulk": bulk,
            "names": names,
            "schools": schools,
            "choices": choices,
            "choice": choice,
            "causes": _causes([r.reason_code for r in every] + [code]),
            "f": f,
            "nav": "failures",
        },
        view=view,
    )


def quarantine(console: Console, view: View) -> Response:
    choices = period_choices(console.store)
    choice = chosen_period(view, choices, required=False)
    period = choice.code if choice else None
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
            "choices": choices,
            "choice": choice,
            "f": {"period": period, "npsn": npsn, "reason": reason},
            "nav": "quarantine",
        },
        view=view,
    )


PAGES = (
    Page("/failures", failures),
    Page("/quarantine", quarantine),
)
