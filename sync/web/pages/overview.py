"""The period at a glance: what needs doing and by whom ("Perlu tindakan", ``_problems``),
counts per status, progress per school over the period up to its deadline, the days left to
the deadline (as PMM listed it; never made up) and, past it, what still goes out; the last
reconcile's drift and the schools."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session
from starlette.responses import Response

from mappings.model import Period
from state.lifecycle import Lifecycle, PeriodStatus
from state.models import DeliveryKind, RecordStatus
from sync.operations.reconcile import last_reconcile
from sync.operations.school_actions import date_words
from sync.web import _queries as q
from sync.web._chart import progress_chart
from sync.web._periods import PeriodChoice, chosen_period, period_choices
from sync.web._problems import problems
from sync.web._words import WIB
from sync.web.console import Console, Page
from sync.web.guard import View

__all__ = ["PAGES"]


def _after_deadline(
    console: Console, choice: PeriodChoice, status: PeriodStatus, data: q.Overview, today: dt.date
) -> str | None:
    """Past the deadline: what still goes out, and on what terms (None before it)."""
    if choice.deadline is None or today <= choice.deadline:
        return None
    queued = sum(n for (_k, s), n in data.totals.items() if s == "pending")
    later = sum(n for (_k, s), n in data.totals.items() if s in ("waiting", "held"))
    if not status.sends_automatically:
        return (
            f"Batas penilaian sudah lewat dan periode ini sudah ditutup: tidak ada lagi yang "
            f"dikirim otomatis. {queued + later} data yang belum terkirim hanya dapat dikirim "
            "lewat permintaan yang disetujui operator kedua (halaman Periode)."
        )
    grace = console.settings.daemon.previous_period_grace_days
    until = choice.deadline + dt.timedelta(days=grace)
    if choice.code in console.settings.sync.periods:
        terms = "karena konfigurasi menyebutnya"
    elif choice.running:
        terms = "selama PMM menandainya berjalan"
    elif today <= until:
        terms = f"sampai {date_words(until)} (masa tenggang {grace} hari)"
    else:
        return (
            "Batas penilaian sudah lewat dan layanan otomatis tidak lagi menyinkronkan periode "
            f"ini: {queued + later} data yang belum terkirim tidak dikirim kecuali operator "
            "menjalankan sinkronisasi untuk periode ini."
        )
    return (
        f"Batas penilaian sudah lewat, tetapi periode ini masih disinkronkan otomatis {terms}: "
        f"{queued} data antre kirim dikirim pada sinkronisasi berikutnya, dan {later} data yang "
        "ditahan atau menunggu dikirim begitu siap."
    )


def overview(console: Console, view: View) -> Response:
    choices = period_choices(console.store)
    choice = chosen_period(view, choices)
    context: dict[str, Any] = {"choices": choices, "choice": choice, "nav": "overview"}
    if choice is None or not choice.has_data:
        return console.render("overview.html", context, view=view)
    period = choice.code
    data = q.overview(console.store, period)
    with Session(console.store.engine) as session:
        history = q.delivery_history(session, period)
    names = {row.npsn: row.name for row in data.schools}
    totals = {row.npsn: row.total for row in data.schools}
    now = console.clock()
    today = now.astimezone(WIB).date()
    parsed = Period.parse(period)
    span = (parsed.start, choice.deadline or parsed.end)
    status = Lifecycle(console.store.engine).status(period)
    unfinished = [row for row in data.schools if row.delivered < row.total or row.attention]
    context.update(
        period=period,
        period_status=status,
        data=data,
        chart=progress_chart(history, totals, names, span=span, now=now),
        deadline=date_words(choice.deadline) if choice.deadline else None,
        days_left=(choice.deadline - today).days if choice.deadline else None,
        after_deadline=_after_deadline(console, choice, status, data, today),
        problems=problems(console.store, period),
        drift=last_reconcile(console.store, period),
        unfinished=unfinished,
        statuses=[s.value for s in RecordStatus],
        kinds=[k.value for k in DeliveryKind],
    )
    return console.render("overview.html", context, view=view)


PAGES = (Page("/", overview),)
