"""The console's words: Indonesian labels for statuses and plain-words explanations of
failure and quarantine codes (the code stays in English; what a person reads is Indonesian)."""

from __future__ import annotations

import datetime as dt

__all__ = [
    "KIND_LABELS",
    "STATUS_LABELS",
    "explain",
    "explain_or_none",
    "kind_label",
    "status_label",
    "wib",
]

WIB = dt.timezone(dt.timedelta(hours=7), "WIB")

STATUS_LABELS: dict[str, str] = {
    "waiting": "menunggu",
    "pending": "antre kirim",
    "held": "ditahan",
    "delivered": "terkirim",
    "failed": "gagal",
    "locked": "terkunci",
    "cancelled": "dibatalkan",
    "cancelled_after_delivery": "dibatalkan setelah terkirim",
    "quarantined": "dikarantina",
}

KIND_LABELS: dict[str, str] = {"skp": "SKP", "assessment": "penilaian"}

_REPLAY = "lalu ulangi dari konsol ini"
_BY_HAND = "mengulangi tidak akan membantu"

_EXPLAINED: dict[str, str] = {
    # e-Kinerja's answers
    "NIP_TIDAK_DITEMUKAN": (
        "BKN tidak mengenal NIP ini. Cocokkan NIP di Dapodik / Verval PTK dengan data BKN "
        f"(SIASN), perbaiki yang salah, {_REPLAY}."
    ),
    "UNOR_TIDAK_AKTIF": (
        "Unit kerja sekolah tidak aktif atau belum dipetakan di BKN. Minta BKD / BKPSDM "
        f"mengaktifkan atau memetakan NPSN-nya di SIASN, {_REPLAY}."
    ),
    "PERIODE_TIDAK_ADA": f"Periode belum dibuka di e-Kinerja. Tunggu BKN membukanya, {_REPLAY}.",
    "VALIDASI": (
        "e-Kinerja menolak salah satu isian (disebut dalam jawabannya). Perbaiki di PMM / "
        f"Dapodik; bila PMM sudah benar, laporkan ke TI dinas, {_REPLAY}."
    ),
    "PREDIKAT_TIDAK_SESUAI": (
        "Predikat tidak sesuai dengan kedua rating (PermenPANRB 6/2022). Penilai memperbaiki "
        f"penilaian di PMM, {_REPLAY}."
    ),
    "PENILAI_BELUM_ADA_SKP": (
        "Penilai (kepala sekolah) belum punya SKP di e-Kinerja. Data ini ditahan dan dikirim "
        "lagi otomatis setiap kali sinkronisasi berjalan; periksa mengapa SKP penilai belum ada."
    ),
    "SKP_TERKUNCI": (
        "SKP sudah dikunci di e-Kinerja (penilaiannya final) dan tidak bisa diubah lagi. Bila "
        f"perubahan itu penting, koreksi langsung di e-Kinerja ({_BY_HAND})."
    ),
    "PENILAIAN_SUDAH_ADA": (
        "e-Kinerja sudah memegang penilaian untuk SKP ini. Bila isinya berbeda, koreksi "
        f"langsung di e-Kinerja ({_BY_HAND})."
    ),
    "IDEMPOTENCY_KEY_REUSED": (
        "e-Kinerja melihat kunci permintaan ini dengan isi lain (gangguan yang tidak "
        "seharusnya terjadi). Simpan rinciannya untuk TI dinas sebelum mengulangi."
    ),
    "SKP_SUDAH_ADA": (
        "e-Kinerja sudah memegang SKP untuk NIP dan periode ini yang tidak dapat diperbarui. "
        f"Bandingkan dengan yang ada di e-Kinerja, {_REPLAY}."
    ),
    "retries_exhausted": (
        "e-Kinerja berulang kali menjawab dengan galat (galat server, waktu habis, atau "
        "'nanti') sampai percobaan ulang habis. Baca jawabannya di halaman guru; setelah "
        f"e-Kinerja menjawab normal, {_REPLAY}."
    ),
    "retries_exhausted_server_error": (
        "e-Kinerja berulang kali menjawab galat server (5xx): gangguan di pihak e-Kinerja. "
        f"Periksa statusnya atau tanyakan ke pengelolanya (BKN); setelah normal, {_REPLAY}."
    ),
    "retries_exhausted_timeout": (
        "e-Kinerja (atau gateway di depannya) berulang kali kehabisan waktu (408 / 504): "
        "sedang kelebihan beban atau jaringannya lambat. Pastikan e-Kinerja menjawab tepat "
        f"waktu, {_REPLAY}."
    ),
    "retries_exhausted_rate_limited": (
        "Batas laju e-Kinerja (429) menjawab terakhir, setelah galat server di antara "
        "percobaannya. Bila 429 sering muncul, minta TI dinas menurunkan batas laju "
        f"pengiriman (berlaku untuk seluruh instalasi) atau jumlah proses kirim, {_REPLAY}."
    ),
    "retries_exhausted_busy": (
        "e-Kinerja sedang sibuk atau dalam pemeliharaan (503) pada percobaan terakhir, "
        f"setelah galat server. Tunggu pemeliharaannya selesai, {_REPLAY}."
    ),
    "rate_limited": (
        "Belum terkirim: batas laju e-Kinerja (429) meminta menunggu. Tidak perlu tindakan: "
        "dikirim lagi otomatis pada sinkronisasi berikutnya. Bila terjadi setiap kali, "
        "minta TI dinas menurunkan batas laju pengiriman atau jumlah proses kirim."
    ),
    "target_busy": (
        "Belum terkirim: e-Kinerja sedang sibuk atau dalam pemeliharaan (503). Tidak perlu "
        "tindakan: dikirim lagi otomatis pada sinkronisasi berikutnya."
    ),
    "DISCARDED": "Dihentikan oleh operator: tidak dikirim. Alasannya tercatat di bawah.",
    # quarantine: bad data in PMM
    "invalid_nip": (
        "NIP pegawai tidak sah. Perbaiki di Dapodik (diteruskan ke PMM); sinkronisasi "
        "berikutnya membacanya lagi."
    ),
    "invalid_nuptk": (
        "NUPTK tidak sah (ditahan oleh versi lama). NUPTK tidak dikirim ke e-Kinerja: "
        "sinkronisasi berikutnya mengirim data ini. Perbaiki NUPTK di Dapodik."
    ),
    "birth_date_in_future": (
        "Tanggal lahir dalam NIP (8 digit pertama) ada di masa depan. Operator sekolah "
        "mencocokkan NIP di Dapodik / Verval PTK dengan data BKN (SIASN) dan memperbaikinya "
        "di Dapodik."
    ),
    "tmt_cpns_under_age": (
        "TMT CPNS dalam NIP (digit 9-14) jatuh sebelum pemiliknya berusia 18 tahun menurut "
        "tanggal lahir dalam NIP yang sama. Operator sekolah mencocokkan NIP dengan SIASN dan "
        "memperbaikinya di Dapodik."
    ),
    "tmt_cpns_after_period": (
        "TMT CPNS dalam NIP jatuh sesudah periode berakhir. Operator sekolah mencocokkan NIP "
        "dengan SIASN dan memperbaikinya di Dapodik; bila NIP benar, laporkan ke helpdesk PMM "
        "dengan ID sumbernya (data tercatat pada periode yang salah)."
    ),
    "duplicate_indicator": (
        "Indikator yang sama dipilih dua kali. Kepala sekolah memperbaiki perencanaan di PMM "
        "(pilih sekali, atau pilih indikator lain) dan penilai menyetujuinya."
    ),
    "finalised_before_period": (
        "Penilaian difinalkan sebelum periodenya dimulai: PMM mencatatnya pada periode atau "
        "tanggal yang salah, dan sekolah tidak dapat mengubahnya. Laporkan ke helpdesk PMM "
        "dengan ID sumbernya."
    ),
    "invalid_npsn": "NPSN sekolah tidak sah. Perbaiki di PMM / Dapodik.",
    "invalid_assessor_nip": "Penilai atau NIP penilai tidak sah. Perbaiki penilai di PMM.",
    "no_assessor": (
        "Belum ada penilai di PMM, dan sekolah tidak dapat memperbaikinya sendiri: dinas "
        "menetapkan Plt kepala sekolah (untuk guru) atau penilai kepala sekolah di Dapodik/PMM."
    ),
    "self_assessment": (
        "Pegawai tercatat sebagai penilai dirinya sendiri. Tetapkan penilai yang benar di PMM."
    ),
    "unknown_indicator": (
        "Indikator tidak ada di katalog (G-01..G-08, K-01..K-08). Perbaiki perencanaan di PMM."
    ),
    "indicator_role_mismatch": (
        "Guru memilih indikator G-, kepala sekolah indikator K-. Perbaiki perencanaan (atau "
        "jenis PTK) di PMM."
    ),
    "indicator_count": (
        "Jumlah indikator tidak sesuai aturan (satu; dua mulai 2026). Perbaiki perencanaan di PMM."
    ),
    "predicate_mismatch": (
        "Predikat melanggar matriks PermenPANRB 6/2022. Penilai memperbaiki penilaian di PMM."
    ),
    "final_incomplete": (
        "Penilaian final belum lengkap (rating, predikat, atau tanggalnya). Penilai "
        "melengkapinya di PMM."
    ),
    "malformed": (
        "PMM mengirim data yang tidak sesuai kontraknya. Laporkan ke helpdesk PMM dengan ID "
        "sumbernya."
    ),
    "unknown_schema_version": (
        "PMM memakai versi skema yang belum dikenal. Minta TI dinas memperbarui aplikasi "
        "sinkronisasi."
    ),
    "mapping_failed": (
        "Versi pemetaan aktif tidak dapat memetakan data ini (celah di pemetaan, bukan data "
        "yang salah). Laporkan ke TI dinas dengan ID sumbernya."
    ),
}

_FALLBACK = (
    "Baca permintaan dan setiap jawaban e-Kinerja di halaman guru, perbaiki penyebabnya, "
    f"{_REPLAY}."
)


def explain(code: str | None) -> str:
    """What a failure or quarantine code means and what to do, in Indonesian."""
    return _EXPLAINED.get(code or "", _FALLBACK)


def explain_or_none(code: str | None) -> str | None:
    """``explain``, or None for a code it has no words of its own for."""
    return _EXPLAINED.get(code or "")


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def wib(moment: dt.datetime | None) -> str:
    """A time in WIB (UTC+7), as people at a dinas read it."""
    if moment is None:
        return "-"
    return moment.astimezone(WIB).strftime("%Y-%m-%d %H:%M:%S")
