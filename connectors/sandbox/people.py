"""The people and schools of the sandbox's world: NIPs of PNS and NI PPPK, NUPTK, names with
apostrophes and non-ASCII letters, NPSNs of every real form (any first digit, PKBM/SKB ``P``
and LKP ``K`` schools), and long notes. Drawn from the world's one seeded ``random.Random``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["NOTES", "PeopleGenerator", "Person", "long_note"]

_JENJANG_TEXT = {
    "ahli_pertama": "Ahli Pertama",
    "ahli_muda": "Ahli Muda",
    "ahli_madya": "Ahli Madya",
    "ahli_utama": "Ahli Utama",
}

_MALE = (
    "Agus", "Budi", "Dedi", "Eko", "Fajar", "Hendra", "Imam", "Joko", "Kurniawan", "Lukman",
    "Made", "Nanang", "Putu", "Rahmat", "Slamet", "Taufik", "Wahyu", "Yusuf", "Zainal", "Arif",
)  # fmt: skip
_FEMALE = (
    "Siti", "Ani", "Dewi", "Endang", "Fitri", "Indah", "Kartini", "Lestari", "Maria", "Nur",
    "Putri", "Ratna", "Sri", "Tuti", "Wulan", "Yuni", "Rina", "Ayu", "Novi", "Kadek",
)  # fmt: skip
_FAMILY = (
    "Aminah", "Santoso", "Wijaya", "Hidayat", "Rahayu", "Saputra", "Kusuma", "Lubis",
    "Nasution", "Siregar", "Simanjuntak", "Pratama", "Setiawan", "Handayani", "Suryani",
    "Purnomo", "Hasibuan", "Sembiring", "Manurung", "Wulandari", "Utami", "Halim", "Sari",
)  # fmt: skip
# Real names that careless code breaks: apostrophes, long Balinese names, non-ASCII letters.
# The first guru of a world take them in this order (so even a small world has them).
_SPECIAL_NAMES = (
    (1, "Ma'ruf Amin, S.Pd."),
    (2, "Ni Luh Putu Ayu Wulandari, S.Pd."),
    (2, "Siti Nur'aini"),
    (1, "Ṣāliḥ"),
    (1, "I Gusti Ngurah Agung Krisna Dwipayana, S.Pd., M.Pd."),
    (1, "Muh. Syafi'i, S.Pd.I."),
    (2, "Dra. Théresia Ngantung"),
    (2, "Nurul 'Aini Lubis, S.Pd."),
)
_TITLES = ("S.Pd.", "S.Pd.", "S.Pd.", "S.Pd., M.Pd.", "S.Si.", "S.Pd.I.", "S.Kom.")
_PLACES = (
    "Contoh", "Sukamaju", "Cibinong", "Karanganyar", "Sidoarjo", "Tanjung Karang", "Kupang",
    "Ambon", "Pontianak", "Gowa", "Denpasar", "Jayapura", "Medan", "Padang", "Bantul",
)  # fmt: skip
_PKBM_NAMES = (
    "Harapan Bangsa", "Tunas Mekar", "Bina Insani", "Cahaya Ilmu", "Mandiri Sejahtera",
    "Al-Ikhlas", "Nur'ul Falah",
)  # fmt: skip
_LKP_NAMES = (
    "Kartika Busana", "Prima Komputer", "English First Class", "Tata Rias Ayu", "Otomotif Jaya",
    "Bahasa Jepang Sakura",
)  # fmt: skip
NOTES = (
    "Refleksi sudah baik, perlu konsistensi dalam umpan balik kepada murid.",
    "Praktik pembelajaran berubah nyata setelah observasi kedua.",
    "Perlu memperdalam materi disiplin positif melalui komunitas belajar.",
    "Kolaborasi dengan rekan sejawat sangat membantu perbaikan praktik.",
    'Guru sudah menerapkan "pembelajaran berdiferensiasi"; murid ber-IQ beragam terlayani.',
    "Catatan penilai: keteladanan baik — konsisten hadir tepat waktu, termasuk saat Ramaḍān.",
)
_NOTE_MAX = 2000


@dataclass
class Person:
    nip: str
    nuptk: str | None
    nama: str
    status: str  # PNS | PPPK
    jenjang: str | None
    peran: str  # guru | kepala_sekolah | pengawas_sekolah | kepala_dinas
    tmt_jabatan: dt.date | None = None
    tmt_shown: Literal["absent", "null", "date"] = "absent"
    """How a record shows a missing ``tmt_jabatan``: no key, or ``null``."""

    @property
    def jabatan(self) -> str:
        if self.peran == "kepala_dinas":
            return "Kepala Dinas Pendidikan"
        if self.peran == "pengawas_sekolah":
            return "Pengawas Sekolah " + _JENJANG_TEXT[self.jenjang or "ahli_madya"]
        if self.jenjang is None:
            return "Guru"
        return "Guru " + _JENJANG_TEXT[self.jenjang]


def long_note(rng: random.Random) -> str:
    """A note of exactly the 2,000 characters the contract allows."""
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < _NOTE_MAX:
        parts.append(rng.choice(NOTES))
    text = " ".join(parts)[:_NOTE_MAX]
    return text[:-1] + "." if text.endswith(" ") else text


class PeopleGenerator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nips: set[str] = set()
        self.nuptks: set[str] = set()
        self.npsns: set[str] = set()
        self.school_names: set[str] = set()
        self.special_names = list(_SPECIAL_NAMES)

    def _birth(self, first: int, last: int) -> dt.date:
        start = dt.date(first, 1, 1).toordinal()
        end = dt.date(last, 12, 31).toordinal()
        return dt.date.fromordinal(self.rng.randint(start, end))

    def nip(self, status: str, sex: int) -> str:
        rng = self.rng
        while True:
            if status == "PNS":
                birth = self._birth(1965, 1998)
                year = min(2023, birth.year + rng.randint(22, 32))
                middle = f"{year}{rng.randint(1, 12):02d}"
            else:
                birth = self._birth(1970, 1998)
                # NI PPPK: the appointment year and a code that is not a month (mostly 21).
                code = rng.choice((21, 21, 21, 21, 22, 23, 31, 41))
                middle = f"{rng.randint(2021, 2024)}{code:02d}"
            nip = f"{birth:%Y%m%d}{middle}{sex}{rng.randint(1, 999):03d}"
            if nip not in self.nips:
                self.nips.add(nip)
                return nip

    def nuptk(self) -> str | None:
        if self.rng.random() < 0.10:
            return None
        while True:
            value = str(self.rng.randint(10**15, 10**16 - 1))
            if value not in self.nuptks:
                self.nuptks.add(value)
                return value

    def person(self, peran: str) -> Person:
        rng = self.rng
        sex = rng.choice((1, 2))
        status = "PNS" if peran != "guru" or rng.random() >= 0.25 else "PPPK"
        first = rng.choice(_MALE if sex == 1 else _FEMALE)
        nama = f"{first} {rng.choice(_FAMILY)}, {rng.choice(_TITLES)}"
        if peran == "guru" and self.special_names:
            sex, nama = self.special_names.pop(0)
        jenjang: str | None
        if peran == "kepala_dinas":
            jenjang = None
        elif peran == "guru":
            roll = rng.random()
            if roll < 0.05:
                jenjang = None
            elif roll < 0.40:
                jenjang = "ahli_pertama"
            elif roll < 0.70:
                jenjang = "ahli_muda"
            elif roll < 0.93:
                jenjang = "ahli_madya"
            else:
                jenjang = "ahli_utama"
        else:
            jenjang = rng.choice(("ahli_muda", "ahli_madya", "ahli_madya", "ahli_utama"))
        person = Person(self.nip(status, sex), self.nuptk(), nama, status, jenjang, peran)
        # Before any period, or unknown (no key, or null).
        roll = rng.random()
        if roll < 0.4:
            person.tmt_jabatan = dt.date(rng.randint(2008, 2022), rng.randint(1, 12), 1)
            person.tmt_shown = "date"
        else:
            person.tmt_shown = "absent" if roll < 0.7 else "null"
        return person

    def school(self, kind: Literal["sekolah", "P", "K"], first_digit: str) -> dict[str, Any]:
        rng = self.rng
        region = rng.randint(1, 6)
        while True:
            if kind == "sekolah":
                npsn = f"{first_digit}{rng.randint(0, 9999999):07d}"
            else:
                npsn = f"{kind}{rng.randint(0, 9999999):07d}"
            if npsn not in self.npsns:
                self.npsns.add(npsn)
                break
        while True:
            place = rng.choice(_PLACES)
            if kind == "P" and rng.random() < 0.5:
                jenjang, nama = "SKB", f"SKB {rng.choice(('Kota', 'Kabupaten'))} {place}"
            elif kind == "P":
                jenjang, nama = "PKBM", f"PKBM {rng.choice(_PKBM_NAMES)}"
            elif kind == "K":
                jenjang, nama = "LKP", f"LKP {rng.choice(_LKP_NAMES)} {place}"
            else:
                jenjang = rng.choices(("SD", "SMP", "SMA", "SMK"), weights=(50, 25, 15, 10))[0]
                nama = f"{jenjang}N {rng.randint(1, 12)} {place}"
            if nama not in self.school_names:
                self.school_names.add(nama)
                break
        return {
            "npsn": npsn,
            "nama": nama,
            "jenjang": jenjang,
            "kode_wilayah": f"{region:02d}{rng.randint(1, 3):02d}00",
        }

    def schools(self, n: int) -> list[dict[str, Any]]:
        """``n`` schools, sorted by NPSN: with three or more, one PKBM/SKB and one LKP; the
        first digits of the others run through 0, 6, 7, 8 and then the rest."""
        rng = self.rng
        kinds: list[Literal["sekolah", "P", "K"]] = ["sekolah"] * n
        if n >= 3:
            p, k = rng.sample(range(n), 2)
            kinds[p], kinds[k] = "P", "K"
        digits = ["0", "6", "7", "8", *rng.sample("123459", 6)]
        found = []
        regular = 0
        for kind in kinds:
            found.append(self.school(kind, digits[regular % len(digits)]))
            regular += kind == "sekolah"
        return sorted(found, key=lambda s: str(s["npsn"]))
