"""The semester at a glance: counts per status, progress per school over time, the days left
to the period's deadline, the last reconcile's drift and the schools still unfinished."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session
from starlette.responses import Response

from state.lifecycle import Lifecycle
from state.models import DeliveryKind, RecordStatus
from sync.operations.reconcile import last_reconcile
from sync.pipeline.periods import stored_period
from sync.web import _queries as q
from sync.web._chart import progress_chart
from sync.web._words import WIB, wib_date
from sync.web.console import Console, Page
from sync.web.guard import View, period_or_latest

__all__ = ["PAGES"]


def overview(console: Console, view: View) -> Response:
    known = q.periods(console.store.engine)
    period = period_or_latest(view, known)
    context: dict[str, Any] = {"periods": known, "period": period, "nav": "overview"}
    if period is None:
        return console.render("overview.html", context, view=view)
    data = q.overview(console.store, period)
    with Session(console.store.engine) as session:
        history = q.delivery_history(session, period)
    names = {row.npsn: row.name for row in data.schools}
    totals = {row.npsn: row.total for row in data.schools}
    now = console.clock()
    chart = progress_chart(history, totals, names, now=now)
    listed = stored_period(console.store, period)
    days_left = (listed.deadline - now.astimezone(WIB).date()).days
    unfinished = [row for row in data.schools if row.delivered < row.total or row.attention]
    context.update(
        period_status=Lifecycle(console.store.engine).status(period),
        data=data,
        chart=chart,
        kind=listed.period.kind.value,
        deadline=wib_date(listed.deadline),
        days_left=days_left,
        drift=last_reconcile(console.store, period),
        unfinished=unfinished,
        statuses=[s.value for s in RecordStatus],
        kinds=[k.value for k in DeliveryKind],
    )
    return console.render("overview.html", context, view=view)


PAGES = (Page("/", overview),)
