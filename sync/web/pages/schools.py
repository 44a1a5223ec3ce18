"""A school's teachers and their status, and a teacher's whole history (the versions PMM sent,
each request as sent, e-Kinerja's answers, the ledger entries)."""

from __future__ import annotations

from starlette.responses import Response

from sync.operations import actions as operator_actions
from sync.web import _queries as q
from sync.web._periods import chosen_period, period_choices
from sync.web.console import Console, Page
from sync.web.guard import NIP, NPSN, PERIOD, Problem, View

__all__ = ["PAGES"]


def school(console: Console, view: View) -> Response:
    npsn = view.request.path_params["npsn"]
    if not NPSN.fullmatch(npsn):
        raise Problem(404, "Sekolah tidak ditemukan", "NPSN itu tidak dikenal.")
    choices = period_choices(console.store)
    choice = chosen_period(view, choices)
    if choice is None:
        raise Problem(404, "Sekolah tidak ditemukan", f"Tidak ada data untuk NPSN {npsn}.")
    period = choice.code
    name, teachers, quarantined, names = q.school_teachers(console.store, period, npsn)
    if not teachers and not quarantined:
        raise Problem(
            404,
            "Sekolah tidak ditemukan",
            f"Tidak ada data untuk NPSN {npsn} pada periode {period}.",
        )
    return console.render(
        "school.html",
        {
            "npsn": npsn,
            "name": name,
            "period": period,
            "choices": choices,
            "choice": choice,
            "teachers": teachers,
            "quarantined": quarantined,
            "names": names,
            "nav": "overview",
        },
        view=view,
    )


def teacher(console: Console, view: View) -> Response:
    nip = view.request.path_params["nip"]
    if not NIP.fullmatch(nip):
        raise Problem(404, "Pegawai tidak ditemukan", "NIP itu tidak dikenal.")
    period = view.param("period", PERIOD, max_len=6)
    found = q.teacher(console.store, nip, period)
    if found is None:
        raise Problem(
            404,
            "Pegawai tidak ditemukan",
            f"Tidak ada data untuk NIP {nip}" + (f" pada periode {period}." if period else "."),
        )
    return console.render(
        "teacher.html",
        {"t": found, "period": period, "nav": "overview", "max_why": operator_actions.MAX_WHY},
        view=view,
    )


PAGES = (
    Page("/schools/{npsn}", school),
    Page("/teachers/{nip}", teacher),
)
