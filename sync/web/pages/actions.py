"""What an operator may do to failed records: replay them (after fixing their cause) or
discard them with a reason (``sync.operations.actions``; each written to the ledger as
``operator:<name>``, one entry per record), one by one or in bulk by cause (issue 27).

A bulk action goes in two steps: ``/actions/bulk`` shows the chosen records (a group of the
overview, or the failures list's filter) and how many, and asks to confirm; the POST chooses
them again and refuses when the count changed since. A refused form comes back with the
message beside its field and what was typed kept (never a reason that looks like a secret).
Auditors get 403 from the gate; a refusal changes nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.responses import Response

from connectors.errors import SyncError
from state.lifecycle import Lifecycle
from state.models import SyncRecord
from state.users import Role
from sync.operations import actions as operator_actions
from sync.operations.actions import ActionRefused, UnknownRecord
from sync.secrets_guard import secret_problem
from sync.web import _queries as q
from sync.web._labels import cause_label
from sync.web._words import explain, status_label
from sync.web.console import Console, Page
from sync.web.guard import NIP, NPSN, PERIOD, Problem, View, bad

__all__ = ["PAGES", "refusal"]

MAX_REPLAY = 50  # records replayed by one request of the record's own button
MAX_BULK = 500  # records one bulk action takes
_SHOWN = 200

# ``secret_problem``'s words, in Indonesian.
_SECRET_WORDS = {
    "a password, key or token given as name=value": "kata sandi, kunci atau token",
    "an Authorization header": "tanda otorisasi Bearer/Basic",
    "a JSON Web Token (eyJ...)": "token JWT eyJ...",
    "a private key": "kunci privat",
    "an API key": "kunci API",
    "a password in an address": "kata sandi di dalam alamat",
    "a long random-looking string (a key or a token)": "deretan huruf dan angka acak yang "
    "panjang, seperti kunci atau token",
}
# Refusals about the reason the operator typed: shown beside the field.
_WHY_CODES = ("why_missing", "why_too_long", "refused_by_ledger")


def refusal(exc: ActionRefused) -> tuple[int, str]:
    """The HTTP status and the Indonesian words of a refused action."""
    if isinstance(exc, UnknownRecord):
        return 404, f"Tidak ada data {exc.record_id}."
    words = {
        "bad_id": "ID data tidak sah (bentuknya <periode>/<NIP>/<skp|assessment>).",
        "nothing_chosen": "Tidak ada data yang dipilih.",
        "not_failed": (
            f"{exc.record_id} berstatus {status_label(exc.status or '')}, bukan gagal: "
            "hanya data yang gagal yang dapat diulangi atau dihentikan."
        ),
        "why_missing": "Tuliskan alasan penghentiannya.",
        "why_too_long": (
            f"Alasan terlalu panjang (paling banyak {operator_actions.MAX_WHY} karakter)."
        ),
        "refused_by_ledger": (
            "Alasan itu tampak berisi rahasia (token atau kata sandi) dan tidak boleh "
            "ditulis ke ledger: tulis alasannya tanpa kata sandi, token atau kunci."
        ),
        "period_closed": (
            "Periodenya sudah ditutup: mengulangi atau menghentikan data di sana perlu dua "
            "operator. Ajukan permintaannya di halaman Periode; operator lain menyetujuinya."
        ),
        "period_sealed": (
            "Periodenya sudah disegel: tidak ada perubahan sampai dua operator membukanya "
            "kembali (halaman Periode)."
        ),
    }
    status = 400 if exc.code in ("bad_id", "nothing_chosen", *_WHY_CODES) else 409
    return status, words.get(exc.code, "Tindakan ini ditolak.") + " Tidak ada yang diubah."


def _refused(exc: ActionRefused) -> Problem:
    status, message = refusal(exc)
    title = "Data tidak ditemukan" if status == 404 else "Tidak dapat dilakukan"
    return Problem(status, title, message)


def _secret_words(why: str) -> str | None:
    secret = secret_problem(why)
    if secret is None:
        return None
    return (
        f"Alasan itu tampak berisi rahasia ({_SECRET_WORDS.get(secret, secret)}). Ledger tidak "
        "dapat dihapus, jadi rahasia tidak boleh ditulis ke sana: tulis alasannya tanpa kata "
        "sandi, token atau kunci. Tidak ada yang diubah."
    )


def replay(console: Console, view: View) -> Response:
    assert view.form is not None
    ids = [v for v in view.form.getlist("id") if isinstance(v, str)]
    if len(ids) > MAX_REPLAY:
        raise bad("id", f"paling banyak {MAX_REPLAY} data sekaligus")
    try:
        outcomes = operator_actions.replay(
            console.settings, console.store, ids, user_name=view.user.name, build=console.build
        )
    except ActionRefused as exc:
        raise _refused(exc) from None
    except SyncError:
        raise Problem(
            502,
            "PMM atau e-Kinerja tidak dapat dihubungi",
            "Pengulangan tidak selesai: PMM atau e-Kinerja tidak menjawab. Coba lagi nanti.",
        ) from None
    return console.render(
        "replay_result.html", {"outcomes": outcomes, "nav": "failures", "back": None}, view=view
    )


def _teacher_form(console: Console, view: View, record_id: str, message: str, why: str) -> Response:
    """The teacher page again, the refused reason beside its field (and kept, unless it
    looked like a secret)."""
    parts = record_id.split("/")
    nip = parts[1] if len(parts) == 3 and NIP.fullmatch(parts[1]) else None
    period = parts[0] if len(parts) == 3 and PERIOD.fullmatch(parts[0]) else None
    found = q.teacher(console.store, nip, period) if nip else None
    if found is None:
        raise Problem(400, "Tidak dapat dilakukan", message)
    return console.render(
        "teacher.html",
        {
            "t": found,
            "period": period,
            "nav": "overview",
            "max_why": operator_actions.MAX_WHY,
            "discard_error": {"id": record_id, "message": message, "why": why},
        },
        view=view,
        status=400,
    )


def discard(console: Console, view: View) -> Response:
    record_id = view.field("id", max_len=60)
    why = view.field("why", max_len=2000)
    secret = _secret_words(why)
    if secret is not None:
        return _teacher_form(console, view, record_id, secret, "")
    try:
        record = operator_actions.discard(
            console.store, record_id, user_name=view.user.name, why=why, clock=console.clock
        )
    except ActionRefused as exc:
        if exc.code in _WHY_CODES:
            kept = "" if exc.code == "refused_by_ledger" else why
            return _teacher_form(console, view, record_id, refusal(exc)[1], kept)
        raise _refused(exc) from None
    return console.render(
        "discard_result.html", {"records": [record], "nav": "failures", "back": None}, view=view
    )


# -- in bulk, by cause ---------------------------------------------------------------------------


def _bulk_filter(get: Any) -> dict[str, str]:
    """The chosen records' filter: period (required), and optionally a school, a reason
    (as the failures list's filter) or an exact code (a group of the overview)."""
    period = get("period", PERIOD, 6)
    if period is None:
        raise bad("period", "wajib diisi")
    found = {
        "period": period,
        "npsn": get("npsn", NPSN, 16),
        "reason": get("reason", None, 100),
        "code": get("code", None, 64),
    }
    return {k: v for k, v in found.items() if v}


def _query_filter(view: View) -> dict[str, str]:
    return _bulk_filter(lambda name, pattern, n: view.param(name, pattern, max_len=n))


def _form_filter(view: View) -> dict[str, str]:
    def get(name: str, pattern: Any, n: int) -> str | None:
        value = view.field(name, max_len=n).strip() or None
        if value is not None and pattern is not None and not pattern.fullmatch(value):
            raise bad(name, "bentuknya tidak dikenal")
        return value

    return _bulk_filter(get)


def _chosen(console: Console, f: dict[str, str]) -> list[SyncRecord]:
    return operator_actions.choose_failed(
        console.store,
        period=f["period"],
        npsns=[f["npsn"]] if "npsn" in f else [],
        reason=f.get("reason"),
        code=f.get("code"),
    )


def _back(f: dict[str, str]) -> dict[str, str]:
    """Where the operator came from, the filter kept: the failures list and the overview."""
    return {
        "failures": "/failures?" + urlencode({**f, "status": "failed"}),
        "overview": "/?" + urlencode({"period": f["period"]}) + "#perlu-tindakan",
    }


def _bulk_page(
    console: Console,
    view: View,
    f: dict[str, str],
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    why: str = "",
    notice: str | None = None,
) -> Response:
    rows = _chosen(console, f)
    codes = sorted({r.reason_code or "" for r in rows})
    with Session(console.store.engine) as session:
        names = q.teacher_names(session, sorted({r.nip for r in rows[:_SHOWN]}))
        schools = q.school_names(session, f["period"], sorted({r.npsn for r in rows}))
    period_status = Lifecycle(console.store.engine).status(f["period"])
    return console.render(
        "bulk.html",
        {
            "f": f,
            "rows": rows[:_SHOWN],
            "count": len(rows),
            "codes": codes,
            "one_reason": len(codes) == 1,
            "title": cause_label(f.get("code") or (codes[0] if len(codes) == 1 else None))
            if (f.get("code") or len(codes) == 1)
            else "Data gagal yang tersaring",
            "step": explain(codes[0]) if len(codes) == 1 else None,
            "names": names,
            "schools": schools,
            "period_status": period_status,
            "too_many": len(rows) > MAX_BULK,
            "max_bulk": MAX_BULK,
            "max_why": operator_actions.MAX_WHY,
            "errors": errors or {},
            "why": why,
            "notice": notice,
            "back": _back(f),
            "nav": "failures",
        },
        view=view,
        status=status,
    )


def bulk(console: Console, view: View) -> Response:
    return _bulk_page(console, view, _query_filter(view))


def _confirmed(console: Console, view: View, f: dict[str, str]) -> list[SyncRecord] | Response:
    """The chosen records, when they are as many as the operator saw; else the page again."""
    rows = _chosen(console, f)
    expect = view.field("expect", max_len=9)
    if not expect.isdigit() or int(expect) != len(rows):
        return _bulk_page(
            console,
            view,
            f,
            status=409,
            notice=(
                f"Jumlahnya berubah sejak pratinjau (sekarang {len(rows)} data): periksa lagi, "
                "lalu konfirmasi. Tidak ada yang diubah."
            ),
        )
    if not rows or len(rows) > MAX_BULK:
        return _bulk_page(
            console,
            view,
            f,
            status=400,
            notice=(
                "Tidak ada data gagal yang dipilih."
                if not rows
                else f"Paling banyak {MAX_BULK} data sekaligus: persempit saringannya."
            ),
        )
    return rows


def bulk_replay(console: Console, view: View) -> Response:
    f = _form_filter(view)
    rows = _confirmed(console, view, f)
    if isinstance(rows, Response):
        return rows
    ids = [operator_actions.failure_id(r) for r in rows]
    try:
        outcomes = operator_actions.replay(
            console.settings, console.store, ids, user_name=view.user.name, build=console.build
        )
    except ActionRefused as exc:
        status, message = refusal(exc)
        return _bulk_page(console, view, f, status=status, notice=message)
    except SyncError:
        return _bulk_page(
            console,
            view,
            f,
            status=502,
            notice=(
                "PMM atau e-Kinerja tidak menjawab: pengulangan tidak selesai. Yang sudah "
                "terkirim tercatat; coba lagi nanti."
            ),
        )
    return console.render(
        "replay_result.html",
        {"outcomes": outcomes, "nav": "failures", "back": _back(f)},
        view=view,
    )


def bulk_discard(console: Console, view: View) -> Response:
    f = _form_filter(view)
    why = view.field("why", max_len=2000)
    secret = _secret_words(why)
    if secret is not None:
        return _bulk_page(console, view, f, status=400, errors={"why": secret})
    rows = _confirmed(console, view, f)
    if isinstance(rows, Response):
        return rows
    if len({r.reason_code for r in rows}) != 1:
        return _bulk_page(
            console,
            view,
            f,
            status=400,
            notice="Abaikan hanya untuk data dengan satu sebab yang sama: pilih satu kelompok.",
        )
    ids = [operator_actions.failure_id(r) for r in rows]
    try:
        records = operator_actions.discard_many(
            console.store, ids, user_name=view.user.name, why=why, clock=console.clock
        )
    except ActionRefused as exc:
        status, message = refusal(exc)
        if exc.code in _WHY_CODES:
            kept = "" if exc.code == "refused_by_ledger" else why
            return _bulk_page(console, view, f, status=status, errors={"why": message}, why=kept)
        return _bulk_page(console, view, f, status=status, notice=message, why=why)
    return console.render(
        "discard_result.html",
        {"records": records, "why": why.strip(), "nav": "failures", "back": _back(f)},
        view=view,
    )


PAGES = (
    Page("/actions/replay", replay, role=Role.OPERATOR, post=True),
    Page("/actions/discard", discard, role=Role.OPERATOR, post=True),
    Page("/actions/bulk", bulk, role=Role.OPERATOR),
    Page("/actions/bulk/replay", bulk_replay, role=Role.OPERATOR, post=True),
    Page("/actions/bulk/discard", bulk_discard, role=Role.OPERATOR, post=True),
)
