"""The periods page: each period's state (open, closed, sealed), the change requests of
closed periods (an operator asks, a second operator approves: ``sync.operations.changes``),
and the downloads an auditor takes away: a period's seal and one teacher's proof, the same
files as ``periods seal`` and ``ledger prove`` write (issue 26).

Every logged-in user reads the page and downloads; asking and approving are an operator's
(POST, with the session's CSRF token, like every form of the console). A refusal changes
nothing and says why in Indonesian.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from connectors.errors import SyncError
from state.change_requests import ChangeAction, ChangeRequests, RequestState
from state.lifecycle import Lifecycle, LifecycleRefused, PeriodState
from state.proof import ProofError, build_proof, proof_to_json
from state.seal import to_json
from state.users import Role
from sync.operations.actions import MAX_WHY, ActionRefused, UnknownRecord
from sync.operations.changes import Changes
from sync.operations.period_states import period_rows
from sync.web._words import WIB
from sync.web.console import Console, Page
from sync.web.guard import NIP, PERIOD, Problem, View, bad

__all__ = ["PAGES"]

_ID = re.compile(r"[0-9]{1,9}")
STATE_LABELS = {"open": "terbuka", "closed": "ditutup", "sealed": "disegel"}
ACTION_LABELS = {
    "replay": "ulangi",
    "discard": "hentikan",
    "reset": "baca ulang dari awal",
    "mapping": "ganti versi pemetaan",
    "reopen": "buka kembali periode",
}
# What each action names, for the request form.
TARGET_HINTS = {
    "replay": "ID data gagal, dipisah spasi (2025-1/<NIP>/skp)",
    "discard": "satu ID data gagal",
    "reset": "NPSN, dipisah spasi (kosong: semua sekolah)",
    "mapping": "versi pemetaan (mis. 2026.2)",
    "reopen": "kosongkan",
}


def _changes(console: Console) -> Changes:
    return Changes(console.settings, console.store, build=console.build, clock=console.clock)


def periods(console: Console, view: View) -> Response:
    return _page(console, view)


def _page(
    console: Console,
    view: View,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    lifecycle = Lifecycle(console.store.engine, clock=console.clock)
    requests = ChangeRequests(lifecycle)
    rows = period_rows(console.store, lifecycle)
    made = view.param("made", _ID, max_len=9)
    return console.render(
        "periods.html",
        {
            "rows": rows,
            "pending": requests.requests(),
            "recent": requests.requests(
                states=(RequestState.APPROVED, RequestState.DONE, RequestState.FAILED)
            )[-20:][::-1],
            "made": int(made) if made else None,
            "state_labels": STATE_LABELS,
            "action_labels": ACTION_LABELS,
            "target_hints": TARGET_HINTS,
            "closed": [r.period for r in rows if r.status.state is not PeriodState.OPEN],
            "sealed": [r.period for r in rows if r.status.seal is not None],
            "max_why": MAX_WHY,
            "form": form or {},
            "errors": errors or {},
            "nav": "periods",
        },
        view=view,
        status=status,
    )


def _refused(exc: ActionRefused | LifecycleRefused) -> Problem:
    if isinstance(exc, UnknownRecord):
        return Problem(404, "Data tidak ditemukan", f"Tidak ada data {exc.record_id}.")
    words = {
        "own_request": "Ini permintaan Anda sendiri: operator lain yang harus menyetujuinya.",
        "not_pending": "Permintaan itu sudah tidak menunggu persetujuan.",
        "unknown_request": "Permintaan itu tidak ada.",
        "sealed": (
            "Periode itu sudah disegel: tidak ada perubahan sampai dua operator membukanya "
            "kembali (ajukan permintaan «buka kembali periode»)."
        ),
        "open": "Periode itu masih terbuka: tidak perlu permintaan, lakukan langsung.",
        "why_missing": "Tuliskan alasannya.",
        "why_too_long": f"Alasan terlalu panjang (paling banyak {MAX_WHY} karakter).",
        "refused_by_ledger": (
            "Alasan itu tampak berisi rahasia (token atau kata sandi) dan tidak boleh ditulis "
            "ke ledger."
        ),
        "nothing_chosen": "Sebutkan data, sekolah atau periode yang dimaksud.",
        "not_failed": f"{getattr(exc, 'record_id', '')} bukan data yang gagal.",
        "bad_id": "ID data tidak sah (bentuknya <periode>/<NIP>/<skp|assessment>).",
    }
    status = 409 if exc.code in ("own_request", "not_pending", "sealed", "open") else 400
    return Problem(
        status,
        "Tidak dapat dilakukan",
        words.get(exc.code, "Permintaan ini ditolak.") + " Tidak ada yang diubah.",
    )


def request_change(console: Console, view: View) -> Response:
    form = {
        name: view.field(name, max_len=4000 if name == "target" else 2000)
        for name in ("action", "period", "target", "why")
    }
    try:
        action = ChangeAction(form["action"])
    except ValueError:
        return _page(console, view, status=400, form=form, errors={"action": "Pilih tindakan."})
    period = form["period"].strip() or None
    if period is not None and not PERIOD.fullmatch(period):
        return _page(console, view, status=400, form=form, errors={"period": "Pilih periode."})
    try:
        request = _changes(console).request(
            action,
            by=view.user.name,
            why=form["why"],
            period=period,
            targets=form["target"].split(),
        )
    except (ActionRefused, LifecycleRefused) as exc:
        problem = _refused(exc)
        field = (
            "why"
            if exc.code in ("why_missing", "why_too_long", "refused_by_ledger")
            else (
                "target"
                if exc.code in ("nothing_chosen", "not_failed", "bad_id", "unknown")
                else "form"
            )
        )
        if exc.code == "refused_by_ledger":
            form["why"] = ""  # never echo what looks like a secret
        return _page(
            console, view, status=problem.status, form=form, errors={field: problem.message}
        )
    return RedirectResponse(f"/periods?{urlencode({'made': request.id})}#requests", 303)


def approve(console: Console, view: View) -> Response:
    text = view.field("id", max_len=9)
    if not _ID.fullmatch(text):
        raise bad("id", "bukan nomor permintaan")
    try:
        outcome = _changes(console).approve(int(text), by=view.user.name)
    except LifecycleRefused as exc:
        raise _refused(exc) from None
    except SyncError as exc:  # pragma: no cover - an approval records a failed change instead
        raise Problem(502, "PMM atau e-Kinerja tidak dapat dihubungi", str(exc)) from None
    return console.render(
        "approve_result.html",
        {"outcome": outcome, "action_labels": ACTION_LABELS, "nav": "periods"},
        view=view,
    )


def _sealed_period(view: View) -> str:
    period = view.param("period", PERIOD, max_len=6)
    if period is None:
        raise bad("period", "wajib diisi")
    return period


def _attachment(text: str, name: str) -> Response:
    return Response(
        text.encode("utf-8"),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def seal_download(console: Console, view: View) -> Response:
    period = _sealed_period(view)
    seal = Lifecycle(console.store.engine).status(period).seal
    if seal is None:
        raise Problem(404, "Belum ada segel", f"Periode {period} belum pernah disegel.")
    stamp = seal.sealed_at.replace("-", "").replace(":", "")[:15]
    return _attachment(to_json(seal) + "\n", f"seal-{period}-{stamp}Z.json")


def proof_download(console: Console, view: View) -> Response:
    period = _sealed_period(view)
    nip = view.param("nip", NIP, max_len=18)
    if nip is None:
        raise bad("nip", "wajib diisi")
    seal, leaves, rows = Lifecycle(console.store.engine).proof_material(period, nip)
    if seal is None:
        raise Problem(404, "Belum ada segel", f"Periode {period} belum pernah disegel.")
    try:
        proof = build_proof(seal, leaves, rows, nip=nip)
    except ProofError:
        raise Problem(
            404,
            "Tidak ada entri",
            f"Tidak ada entri ledger NIP {nip} dalam segel periode {period} "
            f"(disegel {seal.sealed_at}), atau ledger tidak cocok lagi dengan segelnya: "
            "jalankan verifikasi ledger.",
        ) from None
    stamp = console.clock().astimezone(WIB).strftime("%Y%m%d-%H%M%S")
    return _attachment(proof_to_json(proof), f"proof-{period}-{nip}-{stamp}.json")


PAGES = (
    Page("/periods", periods),
    Page("/periods/seal", seal_download),
    Page("/periods/proof", proof_download),
    Page("/requests", request_change, role=Role.OPERATOR, post=True),
    Page("/requests/approve", approve, role=Role.OPERATOR, post=True),
)
