"""The sandbox's vocabulary: indicator catalogues, ratings, predikat and the one predikat matrix.

The matrix (PermenPANRB No. 6 Tahun 2022) is kept once, in PMM's lower-case wire names;
:func:`target_predicate` reads it with e-Kinerja's upper-case names.
"""

from __future__ import annotations

__all__ = [
    "GURU_INDICATORS",
    "KEPALA_SEKOLAH_INDICATORS",
    "PREDICATES",
    "PREDICATE_MATRIX",
    "RATINGS",
    "TARGET_PREDICATES",
    "TARGET_RATINGS",
    "target_predicate",
]

GURU_INDICATORS: dict[str, str] = {
    "G-01": "Keteraturan Suasana Kelas",
    "G-02": "Penerapan Disiplin Positif",
    "G-03": "Perhatian dan Kepedulian",
    "G-04": "Umpan Balik Konstruktif",
    "G-05": "Dukungan Afektif",
    "G-06": "Aktivasi Kognitif",
    "G-07": "Pembelajaran Berdiferensiasi",
    "G-08": "Instruksi Pembelajaran",
}
KEPALA_SEKOLAH_INDICATORS: dict[str, str] = {
    "K-01": "Presentasi Visi-Misi Satuan Pendidikan",
    "K-02": "Penyusunan Kurikulum Operasional Satuan Pendidikan",
    "K-03": "Perencanaan Berbasis Data Rapor Pendidikan",
    "K-04": "Pengelolaan Sumber Daya Sekolah",
    "K-05": "Aktivasi Kegiatan Komunitas Belajar",
    "K-06": "Siklus Penguatan Kualitas Praktik Pembelajaran",
    "K-07": "Pendampingan Guru dalam Observasi Kelas",
    "K-08": "Penciptaan Iklim Sekolah yang Aman dan Inklusif",
}

RATINGS = ("diatas_ekspektasi", "sesuai_ekspektasi", "dibawah_ekspektasi")
PREDICATES = ("sangat_baik", "baik", "butuh_perbaikan", "kurang", "sangat_kurang")

PREDICATE_MATRIX: dict[tuple[str, str], str] = {
    # (rating hasil kerja, rating perilaku) -> predikat, lower case as PMM sends them
    ("diatas_ekspektasi", "dibawah_ekspektasi"): "kurang",
    ("diatas_ekspektasi", "sesuai_ekspektasi"): "baik",
    ("diatas_ekspektasi", "diatas_ekspektasi"): "sangat_baik",
    ("sesuai_ekspektasi", "dibawah_ekspektasi"): "kurang",
    ("sesuai_ekspektasi", "sesuai_ekspektasi"): "baik",
    ("sesuai_ekspektasi", "diatas_ekspektasi"): "baik",
    ("dibawah_ekspektasi", "dibawah_ekspektasi"): "sangat_kurang",
    ("dibawah_ekspektasi", "sesuai_ekspektasi"): "butuh_perbaikan",
    ("dibawah_ekspektasi", "diatas_ekspektasi"): "butuh_perbaikan",
}
TARGET_RATINGS = tuple(r.upper() for r in RATINGS)
"""The ratings as e-Kinerja spells them (``DIATAS_EKSPEKTASI``, ...)."""
TARGET_PREDICATES = tuple(p.upper() for p in PREDICATES)
"""The predikat as e-Kinerja spells them (``SANGAT_BAIK``, ...)."""


def target_predicate(rating_hasil_kerja: str, rating_perilaku_kerja: str) -> str:
    """The predikat (upper case) of two ratings in e-Kinerja's names; ``KeyError`` if unknown."""
    cell = (rating_hasil_kerja.lower(), rating_perilaku_kerja.lower())
    return PREDICATE_MATRIX[cell].upper()
