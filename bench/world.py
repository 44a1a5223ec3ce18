"""A lean, lazy source world for the benchmark: N ``Kinerja`` records (schema v2) made on
demand from their index, so 100,000 of them cost no memory in the benchmark process.

``connectors.sandbox.generate_world`` keeps every record (deep copies, a sorted index) and
takes ~1 s and ~100 MB per 10,000 records: fine for tests, but it would dominate the memory
figure the benchmark is about. Here record ``i`` is a pure function of ``(seed, i)``: the same
world on every call and in every process, which is what the "rerun with no source change"
figure needs.

Shape: schools of ``per_school`` records (one kepala sekolah, assessed by a pengawas who is
outside the sync, then guru assessed by their kepala sekolah). The last week of June: 90% of
penilaian are final, 5% draf, 5% belum; 2% of guru plans not approved; 0.5% of guru records
carry a broken NIP (quarantined) and 0.5% are cancelled. ``diperbarui_pada`` grows with ``i``
(2 s apart), so a school's records come in index order and the incremental cursor works.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.catalogue import (
    GURU_INDICATORS,
    KEPALA_SEKOLAH_INDICATORS,
    PREDICATE_MATRIX,
)

__all__ = ["LeanWorld"]

WIB = dt.timezone(dt.timedelta(hours=7))
_BASE = dt.datetime(2025, 6, 23, 8, 0, tzinfo=WIB)  # the last week of June
_STEP_S = 2
_CELLS = list(PREDICATE_MATRIX)
_CELL_WEIGHTS = [15, 10, 3, 10, 45, 3, 5, 7, 2]  # roughly the sandbox's mix
_JENJANG = ("ahli_pertama", "ahli_muda", "ahli_madya", "ahli_utama")
_JENJANG_TEXT = dict(
    zip(_JENJANG, ("Ahli Pertama", "Ahli Muda", "Ahli Madya", "Ahli Utama"), strict=True)
)
_NAMES = ("Siti Aminah", "Budi Santoso", "Dewi Lestari", "Agus Wijaya", "Rina Hidayat")
_STAGES = ("persiapan", "observasi", "diskusi_tindak_lanjut", "upaya_tindak_lanjut", "refleksi")
_PENGAWAS_BASE = 10_000_000  # person keys of pengawas, apart from the record indexes


def _fmt(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _nip(key: int, rng: random.Random, pppk: bool) -> str:
    """A valid, unique 18-digit NIP (PNS) or NI PPPK for person ``key``.

    Unique: the birth date is an injective function of ``key // 999`` (37 is invertible
    mod 14000) and the sequence number is ``key % 999 + 1``.
    """
    birth = dt.date(1965, 1, 1) + dt.timedelta(days=(key // 999) * 37 % 14000)
    if pppk:
        middle = f"{rng.randint(2021, 2024)}{rng.randint(13, 99):02d}"
    else:
        middle = f"{min(2023, birth.year + rng.randint(22, 32))}{rng.randint(1, 12):02d}"
    return f"{birth:%Y%m%d}{middle}{rng.choice((1, 2))}{key % 999 + 1:03d}"


@dataclass(frozen=True)
class _Person:
    nip: str
    nama: str
    status: str
    jenjang: str | None


class LeanWorld:
    """``n`` records in ``ceil(n / per_school)`` schools; every method is cheap and pure."""

    def __init__(
        self, n: int, *, per_school: int = 40, seed: int = 7, period: str = "2025-1"
    ) -> None:
        if n < 1 or per_school < 2:
            raise ValueError("need n >= 1 and per_school >= 2")
        self.n = n
        self.per_school = per_school
        self.seed = seed
        self.period = period
        self.n_schools = -(-n // per_school)

    # -- schools -------------------------------------------------------------------------
    def npsn(self, s: int) -> str:
        return f"{1 + s % 6}{s:07d}"

    def school(self, s: int) -> dict[str, Any]:
        region = 1 + s % 6
        return {
            "npsn": self.npsn(s),
            "nama": f"SDN {s + 1} Contoh",
            "jenjang": "SD",
            "kode_wilayah": f"{region:02d}0100",
        }

    def school_index(self, npsn: str) -> int:
        s = int(npsn[1:])
        if not 0 <= s < self.n_schools or self.npsn(s) != npsn:
            raise KeyError(npsn)
        return s

    def school_range(self, s: int) -> range:
        return range(s * self.per_school, min(self.n, (s + 1) * self.per_school))

    # -- people and records --------------------------------------------------------------
    def _rng(self, key: int) -> random.Random:
        return random.Random(self.seed * 1_000_003 + key)

    def _person(self, key: int, peran: str) -> _Person:
        rng = self._rng(key + 7_777_777)
        pppk = peran == "guru" and rng.random() < 0.25
        jenjang = None if (peran == "guru" and rng.random() < 0.05) else rng.choice(_JENJANG)
        return _Person(
            _nip(key, rng, pppk), rng.choice(_NAMES) + ", S.Pd.", "PPPK" if pppk else "PNS", jenjang
        )

    def updated_at(self, i: int) -> dt.datetime:
        return _BASE + dt.timedelta(seconds=_STEP_S * i)

    def first_index_since(self, since: dt.datetime) -> int:
        """The first index whose ``diperbarui_pada`` is at or after ``since``."""
        offset = (since - _BASE).total_seconds()
        return max(0, -int(-offset // _STEP_S))

    def record(self, i: int) -> dict[str, Any]:
        """Record ``i`` as the source serves it (schema version 2)."""
        s, pos = divmod(i, self.per_school)
        head_index = s * self.per_school
        is_head = pos == 0
        rng = self._rng(i)
        if is_head:
            person = self._person(i, "kepala_sekolah")
            pengawas = self._person(_PENGAWAS_BASE + s // 20, "pengawas_sekolah")
            penilai = {"nip": pengawas.nip, "nama": pengawas.nama, "peran": "pengawas_sekolah"}
            catalogue, peran = KEPALA_SEKOLAH_INDICATORS, "kepala_sekolah"
            jabatan = "Guru " + _JENJANG_TEXT[person.jenjang or "ahli_madya"]
        else:
            person = self._person(i, "guru")
            head = self._person(head_index, "kepala_sekolah")
            penilai = {"nip": head.nip, "nama": head.nama, "peran": "kepala_sekolah"}
            catalogue, peran = GURU_INDICATORS, "guru"
            jabatan = "Guru " + _JENJANG_TEXT[person.jenjang] if person.jenjang else "Guru"
        roll = rng.random()
        status = "final" if roll < 0.90 else ("draf" if roll < 0.95 else "belum")
        approved = is_head or rng.random() >= 0.02
        nip = person.nip
        if not is_head and rng.random() < 0.005:
            nip = nip[:12] + "13" + nip[14:]  # TMT CPNS month 13: quarantined
        cancelled = not is_head and rng.random() < 0.005
        updated = self.updated_at(i)
        code = rng.choice(sorted(catalogue))
        hasil: dict[str, Any] = {
            "rating_hasil_kerja": None,
            "rating_perilaku": None,
            "predikat": None,
        }
        finalised = None
        if status == "final":
            cell = rng.choices(_CELLS, weights=_CELL_WEIGHTS)[0]
            hasil = {
                "rating_hasil_kerja": cell[0],
                "rating_perilaku": cell[1],
                "predikat": PREDICATE_MATRIX[cell],
            }
            finalised = _fmt(updated)
        done = 5 if status == "final" else rng.randint(0, 4)
        record_id = uuid.UUID(
            bytes=hashlib.md5(f"{self.seed}:{i}".encode(), usedforsecurity=False).digest(),
            version=4,
        )
        return {
            "id": str(record_id),
            "versi_skema": 2,
            "periode": self.period,
            "pegawai": {
                "nip": nip,
                "nuptk": None
                if rng.random() < 0.1
                else str(10**15 + (i * 2654435761) % (9 * 10**15)),
                "nama": person.nama,
                "jenis_ptk": peran,
                "status_kepegawaian": person.status,
                "jabatan": jabatan,
                "jenjang_jabatan": person.jenjang,
            },
            "sekolah": {"npsn": self.npsn(s), "nama": f"SDN {s + 1} Contoh"},
            "penilai": penilai,
            "perencanaan": {
                "indikator": [{"kode": code, "nama": catalogue[code]}],
                "disetujui_pada": "2025-01-10T09:00:00+07:00" if approved else None,
            },
            "pelaksanaan": {
                "observasi": [
                    {
                        "tahap": tahap,
                        "selesai_pada": f"2025-0{2 + k}-1{k}T13:00:00+07:00" if k < done else None,
                    }
                    for k, tahap in enumerate(_STAGES)
                ],
                "pengembangan_kompetensi_jp": rng.choice((0, 8, 16, 24, 32)),
            },
            "penilaian": {
                "status": status,
                "hasil": hasil,
                "difinalkan_pada": finalised,
                "catatan": None,
            },
            "dibatalkan": cancelled,
            "diperbarui_pada": _fmt(updated),
        }

    def records(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            yield self.record(i)
