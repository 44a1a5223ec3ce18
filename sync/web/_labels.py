"""Indonesian names for everything the console shows that the core keeps as a code: a cause
(a reason or quarantine code), a ledger event (its action, outcome and actor), a request's
state in the outbox, a change request's state, and a period ("Semester 2 2024 (Jul–Des)").

The codes stay in English in the store and the ledger (the core speaks English); a page shows
the label, and the code only inside a folded "detail teknis". A code this release does not
know gets a plain Indonesian fallback, never the code itself.
"""

from __future__ import annotations

from mappings.model import Period, PeriodKind

__all__ = [
    "ACTOR_LABELS",
    "CAUSE_LABELS",
    "LEDGER_ACTIONS",
    "LEDGER_OUTCOMES",
    "OUTBOX_STATES",
    "REQUEST_STATES",
    "actor_label",
    "cause_label",
    "ledger_action",
    "ledger_outcome",
    "outbox_state",
    "period_label",
    "request_state",
]

# A cause, in a few words (a group's title on the overview, a filter's name).
CAUSE_LABELS: dict[str, str] = {
    # e-Kinerja's answers
    "NIP_TIDAK_DITEMUKAN": "NIP tidak dikenal BKN",
    "UNOR_TIDAK_AKTIF": "Unit kerja sekolah tidak aktif di BKN",
    "PERIODE_TIDAK_ADA": "Periode belum dibuka di e-Kinerja",
    "VALIDASI": "Isian ditolak e-Kinerja",
    "PREDIKAT_TIDAK_SESUAI": "Predikat tidak sesuai rating (ditolak e-Kinerja)",
    "PENILAI_BELUM_ADA_SKP": "Penilai belum punya SKP di e-Kinerja",
    "SKP_TERKUNCI": "SKP sudah dikunci di e-Kinerja",
    "PENILAIAN_SUDAH_ADA": "Penilaian sudah ada di e-Kinerja",
    "IDEMPOTENCY_KEY_REUSED": "Kunci permintaan terpakai dengan isi lain",
    "SKP_SUDAH_ADA": "SKP sudah ada di e-Kinerja",
    "retries_exhausted": "e-Kinerja terus menjawab galat",
    "retries_exhausted_server_error": "e-Kinerja terus menjawab galat server",
    "retries_exhausted_timeout": "e-Kinerja terus kehabisan waktu",
    "retries_exhausted_rate_limited": "Batas laju e-Kinerja terus tercapai",
    "retries_exhausted_busy": "e-Kinerja terus sibuk atau dalam pemeliharaan",
    "rate_limited": "Menunggu giliran (batas laju e-Kinerja)",
    "target_busy": "e-Kinerja sedang sibuk",
    "DISCARDED": "Dihentikan operator",
    # bad data read from PMM
    "invalid_nip": "NIP tidak sah di Dapodik",
    "invalid_nuptk": "NUPTK tidak sah",
    "birth_date_in_future": "Tanggal lahir dalam NIP di masa depan",
    "tmt_cpns_under_age": "TMT CPNS dalam NIP sebelum usia 18",
    "tmt_cpns_before_18": "TMT CPNS dalam NIP sebelum usia 18",
    "tmt_cpns_after_period": "TMT CPNS dalam NIP sesudah periode",
    "invalid_npsn": "NPSN tidak sah",
    "invalid_assessor_nip": "Penilai tidak sah",
    "no_assessor": "Belum ada penilai",
    "self_assessment": "Pegawai menilai dirinya sendiri",
    "unknown_indicator": "Indikator tidak ada di katalog",
    "indicator_role_mismatch": "Indikator tidak sesuai peran",
    "indicator_count": "Jumlah indikator tidak sesuai",
    "duplicate_indicator": "Indikator dipilih dua kali",
    "finalised_before_period": "Penilaian final sebelum periode dimulai",
    "predicate_mismatch": "Predikat tidak sesuai rating",
    "final_incomplete": "Penilaian final belum lengkap",
    "malformed": "Data PMM tidak sesuai kontrak",
    "unknown_schema_version": "Versi skema PMM belum dikenal",
    "mapping_failed": "Pemetaan tidak dapat memetakan data",
    # waiting on a person, or on another record
    "plan_not_approved": "Perencanaan belum disetujui penilai",
    "assessment_not_started": "Penilaian belum diisi",
    "assessment_draft": "Penilaian masih draf",
    "waiting_for_skp": "Penilaian menunggu SKP-nya terkirim",
    "held": "Ditahan: SKP penilai belum ada di e-Kinerja",
    "locked": "Berubah setelah SKP dikunci",
    "cancelled_after_delivery": "Dibatalkan di PMM setelah terkirim",
    "failed": "Ditolak e-Kinerja",
    "quarantined": "Data PMM bermasalah",
}

LEDGER_ACTIONS: dict[str, str] = {
    "create_skp": "buat SKP",
    "update_skp": "perbarui SKP",
    "create_assessment": "kirim penilaian",
    "replay": "ulangi",
    "discard": "hentikan",
    "reset": "baca ulang dari awal",
    "reconcile": "rekonsiliasi",
    "notify_school": "beri tahu sekolah",
    "user_add": "tambah pengguna",
    "user_disable": "nonaktifkan pengguna",
    "user_enable": "aktifkan pengguna",
    "user_role": "ubah peran pengguna",
    "user_passwd": "ubah kata sandi pengguna",
    "period_close": "tutup periode",
    "period_reopen": "buka kembali periode",
    "period_seal": "segel periode",
    "change_request": "ajukan perubahan",
    "change_approve": "setujui perubahan",
    "change_done": "perubahan dijalankan",
    "mapping": "ganti versi pemetaan",
}

LEDGER_OUTCOMES: dict[str, str] = {
    "delivered": "terkirim",
    "sent_new": "terkirim (baru)",
    "sent_updated": "terkirim (pembaruan)",
    "retry": "dicoba lagi",
    "paused": "dijeda",
    "held": "ditahan",
    "rejected": "ditolak",
    "locked": "terkunci",
    "failed": "gagal",
    "done": "selesai",
    "error": "galat",
    "pending": "menunggu persetujuan",
    "approved": "disetujui",
    "sent": "terkirim",
    "uncertain": "belum pasti",
    "superseded": "digantikan",
    "waiting": "menunggu",
}

OUTBOX_STATES: dict[str, str] = {
    "pending": "antre kirim",
    "done": "selesai",
    "dead": "gagal (berhenti)",
    "superseded": "digantikan yang lebih baru",
}

REQUEST_STATES: dict[str, str] = {
    "pending": "menunggu persetujuan",
    "approved": "disetujui",
    "done": "selesai",
    "failed": "gagal",
    "rejected": "ditolak",
}

ACTOR_LABELS: dict[str, str] = {
    "cli": "baris perintah",
    "daemon": "layanan otomatis",
    "system": "sistem",
    "sync": "sinkronisasi",
}

_SHORT_MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


def cause_label(code: str | None) -> str:
    """A cause in a few Indonesian words; a code this release does not know: "sebab lain"."""
    return CAUSE_LABELS.get(code or "", "Sebab lain (lihat detail teknis)")


def ledger_action(action: str | None) -> str:
    return LEDGER_ACTIONS.get(action or "", "tindakan lain")


def ledger_outcome(outcome: str | None) -> str:
    return LEDGER_OUTCOMES.get(outcome or "", "hasil lain")


def outbox_state(state: str | None) -> str:
    return OUTBOX_STATES.get(state or "", "lainnya")


def request_state(state: str | None) -> str:
    return REQUEST_STATES.get(state or "", "lainnya")


def actor_label(actor: str | None) -> str:
    """``operator:ana`` -> ``operator ana``; the engine's own actors in Indonesian."""
    text = actor or ""
    for prefix in ("operator:", "user:", "auditor:"):
        if text.startswith(prefix):
            return f"{prefix[:-1]} {text[len(prefix) :]}"
    return ACTOR_LABELS.get(text, text)


def period_label(code: str) -> str:
    """``2024-2`` -> ``Semester 2 2024 (Jul–Des)``; ``2025`` -> ``Tahun 2025 (Jan–Des)``; a
    code this release cannot read stays as it is."""
    try:
        period = Period.parse(code)
    except ValueError:
        return code
    months = f"{_SHORT_MONTHS[period.start.month - 1]}–{_SHORT_MONTHS[period.end.month - 1]}"
    if period.kind is PeriodKind.ANNUAL:
        return f"Tahun {period.year} ({months})"
    return f"Semester {period.semester} {period.year} ({months})"
