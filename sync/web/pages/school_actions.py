"""A school's action list, printable on A4 (``/schools/{npsn}/actions``): what waits on
someone at the school, grouped by who acts, the days left to ``batas_penilaian``, and when the
school was last told and what changed since. The same list a school is sent (``sync.notify``)."""

from __future__ import annotations

from starlette.responses import Response

from sync.notify.told import told
from sync.operations.deadline import today_in_jakarta
from sync.operations.school_actions import WIB, action_report, date_words, days_left_words
from sync.web import _queries as q
from sync.web._periods import chosen_period, period_choices
from sync.web.console import Console, Page
from sync.web.guard import NPSN, Problem, View
from sync.who_acts import ACTOR_LABELS

__all__ = ["PAGES"]


def school_actions(console: Console, view: View) -> Response:
    npsn = view.request.path_params["npsn"]
    if not NPSN.fullmatch(npsn):
        raise Problem(404, "Sekolah tidak ditemukan", "NPSN itu tidak dikenal.")
    choices = period_choices(console.store)
    choice = chosen_period(view, choices)
    if choice is None or not choice.has_data:
        raise Problem(404, "Periode tidak ditemukan", "Belum ada data untuk periode itu.")
    period = choice.code
    now = console.clock()
    report = action_report(console.store, period, today_in_jakarta(now), [npsn])
    school = report.school(npsn)
    name, teachers, quarantined, _names = q.school_teachers(console.store, period, npsn)
    if not teachers and not quarantined and school.empty:
        raise Problem(
            404,
            "Sekolah tidak ditemukan",
            f"Tidak ada data untuk NPSN {npsn} pada periode {period}.",
        )
    last = told(console.store, report, [npsn])
    return console.render(
        "school_actions.html",
        {
            "npsn": npsn,
            "name": school.school_name or name,
            "period": period,
            "choices": choices,
            "choice": choice,
            "school": school,
            "groups": [(ACTOR_LABELS[actor], items) for actor, items in school.groups()],
            "dinas": [item for item in report.dinas if item.npsn == npsn],
            # The listing's batas_penilaian only: never one made up for an unlisted period.
            "deadline": date_words(report.deadline) if choice.deadline else None,
            "days_left": days_left_words(report.days_left),
            "late": choice.deadline is not None and report.days_left < 0,
            "told": last[0] if last else None,
            "printed": now.astimezone(WIB).strftime("%d-%m-%Y %H:%M"),
            "since": lambda item: date_words(item.since.astimezone(WIB).date()),
            "nav": "overview",
        },
        view=view,
    )


PAGES = (Page("/schools/{npsn}/actions", school_actions),)
