"""What an operator may do to a failed record: replay it (after fixing its cause) or discard
it with a reason (``sync.operations.actions``; each written to the ledger as
``operator:<name>``). Auditors get 403 from the gate; a refusal changes nothing."""

from __future__ import annotations

from starlette.responses import Response

from connectors.errors import SyncError
from state.users import Role
from sync.operations import actions as operator_actions
from sync.operations.actions import ActionRefused, UnknownRecord
from sync.secrets_guard import secret_problem
from sync.web._words import status_label
from sync.web.console import Console, Page
from sync.web.guard import Problem, View, bad

__all__ = ["PAGES"]

MAX_REPLAY = 50  # records replayed by one request

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


def _refused(exc: ActionRefused) -> Problem:
    if isinstance(exc, UnknownRecord):
        return Problem(404, "Data tidak ditemukan", f"Tidak ada data {exc.record_id}.")
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
            "ditulis ke ledger."
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
    status = (
        400
        if exc.code
        in ("bad_id", "nothing_chosen", "why_missing", "why_too_long", "refused_by_ledger")
        else 409
    )
    return Problem(
        status,
        "Tidak dapat dilakukan",
        words.get(exc.code, exc.message) + " Tidak ada yang diubah.",
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
    except SyncError as exc:
        raise Problem(
            502,
            "PMM atau e-Kinerja tidak dapat dihubungi",
            f"Pengulangan tidak selesai: {exc}. Coba lagi nanti.",
        ) from None
    return console.render(
        "replay_result.html", {"outcomes": outcomes, "nav": "failures"}, view=view
    )


def discard(console: Console, view: View) -> Response:
    record_id = view.field("id", max_len=60)
    why = view.field("why", max_len=2000)
    secret = secret_problem(why)
    if secret is not None:
        raise Problem(
            400,
            "Alasan tidak dapat disimpan",
            f"Alasan itu tampak berisi rahasia ({_SECRET_WORDS.get(secret, secret)}). "
            "Ledger tidak dapat dihapus, jadi rahasia tidak boleh ditulis ke sana: tulis "
            "alasannya tanpa kata sandi, token atau kunci. Tidak ada yang diubah.",
        )
    try:
        record = operator_actions.discard(
            console.store, record_id, user_name=view.user.name, why=why, clock=console.clock
        )
    except ActionRefused as exc:
        raise _refused(exc) from None
    return console.render("discard_result.html", {"record": record, "nav": "failures"}, view=view)


PAGES = (
    Page("/actions/replay", replay, role=Role.OPERATOR, post=True),
    Page("/actions/discard", discard, role=Role.OPERATOR, post=True),
)
