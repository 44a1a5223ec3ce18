"""Seeded synthetic data for the sandbox: :func:`generate_world`.

It builds schools, their kepala sekolah and guru (valid NIPs of PNS and PPPK), one ``Kinerja``
record per person and period, a few rotations and cancellations, and a few deliberately broken
records (listed in :attr:`SandboxWorld.defects` as :class:`Defect`). Everything comes from one
seeded :class:`random.Random`: the same arguments give the same world.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from connectors.sandbox.catalogue import (
    GURU_INDICATORS,
    KEPALA_SEKOLAH_INDICATORS,
    PREDICATE_MATRIX,
    PREDICATES,
    RATINGS,
)
from connectors.sandbox.world import WIB, Defect, SandboxWorld, format_instant, new_id

__all__ = ["Defect", "generate_world"]

# How often each cell appears among final penilaian after the nine covering ones.
_CELL_WEIGHTS: dict[tuple[str, str], int] = {
    ("diatas_ekspektasi", "diatas_ekspektasi"): 15,
    ("diatas_ekspektasi", "sesuai_ekspektasi"): 10,
    ("sesuai_ekspektasi", "diatas_ekspektasi"): 10,
    ("sesuai_ekspektasi", "sesuai_ekspektasi"): 45,
    ("diatas_ekspektasi", "dibawah_ekspektasi"): 2,
    ("sesuai_ekspektasi", "dibawah_ekspektasi"): 3,
    ("dibawah_ekspektasi", "dibawah_ekspektasi"): 3,
    ("dibawah_ekspektasi", "sesuai_ekspektasi"): 7,
    ("dibawah_ekspektasi", "diatas_ekspektasi"): 5,
}
_STAGES = ("persiapan", "observasi", "diskusi_tindak_lanjut", "upaya_tindak_lanjut", "refleksi")
_JENJANG = ("ahli_pertama", "ahli_muda", "ahli_madya", "ahli_utama")
_JENJANG_TEXT = {
    "ahli_pertama": "Ahli Pertama",
    "ahli_muda": "Ahli Muda",
    "ahli_madya": "Ahli Madya",
    "ahli_utama": "Ahli Utama",
}
_PERIOD_RE = re.compile(r"^(\d{4})-([12])$")

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
_TITLES = ("S.Pd.", "S.Pd.", "S.Pd.", "S.Pd., M.Pd.", "S.Si.", "S.Pd.I.", "S.Kom.")
_PLACES = (
    "Contoh", "Sukamaju", "Cibinong", "Karanganyar", "Sidoarjo", "Tanjung Karang", "Kupang",
    "Ambon", "Pontianak", "Gowa", "Denpasar", "Jayapura", "Medan", "Padang", "Bantul",
)  # fmt: skip
_NOTES = (
    "Refleksi sudah baik, perlu konsistensi dalam umpan balik kepada murid.",
    "Praktik pembelajaran berubah nyata setelah observasi kedua.",
    "Perlu memperdalam materi disiplin positif melalui komunitas belajar.",
    "Kolaborasi dengan rekan sejawat sangat membantu perbaikan praktik.",
)
_NPSN_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


@dataclass
class _Person:
    nip: str
    nuptk: str | None
    nama: str
    status: str  # PNS | PPPK
    jenjang: str | None
    peran: str  # guru | kepala_sekolah | pengawas_sekolah

    @property
    def jabatan(self) -> str:
        if self.peran == "pengawas_sekolah":
            return "Pengawas Sekolah " + _JENJANG_TEXT[self.jenjang or "ahli_madya"]
        if self.jenjang is None:
            return "Guru"
        return "Guru " + _JENJANG_TEXT[self.jenjang]


def _parse_period(kode: str) -> tuple[int, int]:
    match = _PERIOD_RE.match(kode)
    if match is None:
        raise ValueError(f"a period is 'YYYY-S' with S 1 or 2, not {kode!r}")
    return int(match.group(1)), int(match.group(2))


def _period_dict(kode: str, status: str) -> dict[str, Any]:
    tahun, semester = _parse_period(kode)
    start, end = ("01-01", "06-30") if semester == 1 else ("07-01", "12-31")
    return {
        "kode": kode,
        "tahun": tahun,
        "semester": semester,
        "tanggal_mulai": f"{tahun}-{start}",
        "tanggal_selesai": f"{tahun}-{end}",
        "status": status,
    }


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nips: set[str] = set()
        self.nuptks: set[str] = set()
        self.npsns: set[str] = set()
        self.school_names: set[str] = set()

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
                # The code is not a month: often above 12, so a PNS-style check would fail.
                code = rng.randint(13, 99) if rng.random() < 0.7 else rng.randint(1, 12)
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

    def person(self, peran: str) -> _Person:
        rng = self.rng
        sex = rng.choice((1, 2))
        status = "PNS" if peran != "guru" or rng.random() >= 0.25 else "PPPK"
        first = rng.choice(_MALE if sex == 1 else _FEMALE)
        nama = f"{first} {rng.choice(_FAMILY)}, {rng.choice(_TITLES)}"
        if peran == "guru":
            roll = rng.random()
            jenjang: str | None
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
        return _Person(self.nip(status, sex), self.nuptk(), nama, status, jenjang, peran)

    def school(self) -> dict[str, Any]:
        rng = self.rng
        region = rng.randint(1, 6)
        while True:
            if rng.random() < 0.2:
                npsn = f"{region}{rng.choice(_NPSN_LETTERS)}{rng.randint(0, 999999):06d}"
            else:
                npsn = f"{region}{rng.randint(0, 9999999):07d}"
            if npsn not in self.npsns:
                self.npsns.add(npsn)
                break
        jenjang = rng.choices(("SD", "SMP", "SMA", "SMK"), weights=(50, 25, 15, 10))[0]
        while True:
            nama = f"{jenjang}N {rng.randint(1, 12)} {rng.choice(_PLACES)}"
            if nama not in self.school_names:
                self.school_names.add(nama)
                break
        return {
            "npsn": npsn,
            "nama": nama,
            "jenjang": jenjang,
            "kode_wilayah": f"{region:02d}{rng.randint(1, 3):02d}00",
        }


def _at(year: int, month: int, day: int, hour: int, minute: int = 0) -> str:
    return format_instant(dt.datetime(year, month, day, hour, minute, tzinfo=WIB))


class _PeriodBuilder:
    """Builds the records of one period."""

    def __init__(self, rng: random.Random, kode: str) -> None:
        self.rng = rng
        self.kode = kode
        self.tahun, self.semester = _parse_period(kode)
        self.first_month = 1 if self.semester == 1 else 7

    def month(self, offset: int) -> int:
        return self.first_month + offset

    def instant(
        self, offset_months: Sequence[int], days: Sequence[int], hours: Sequence[int]
    ) -> str:
        rng = self.rng
        return _at(
            self.tahun,
            self.month(rng.choice(offset_months)),
            rng.choice(days),
            rng.choice(hours),
        )

    def record(
        self,
        person: _Person,
        school: dict[str, Any],
        penilai: _Person,
        *,
        status: str,
        approved: bool,
    ) -> dict[str, Any]:
        rng = self.rng
        catalogue = GURU_INDICATORS if person.peran == "guru" else KEPALA_SEKOLAH_INDICATORS
        codes = rng.sample(sorted(catalogue), 2)
        if not (person.peran == "kepala_sekolah" and self.tahun >= 2026 and rng.random() < 0.5):
            codes = codes[:1]
        done = {"final": 5, "draf": rng.randint(3, 5), "belum": rng.randint(0, 4)}[status]
        stages = []
        for i, tahap in enumerate(_STAGES):
            selesai = (
                _at(self.tahun, self.month(1 + i * 3 // 5), 2 + 5 * i, 13) if i < done else None
            )
            stages.append({"tahap": tahap, "selesai_pada": selesai})
        # Updated on a coarse grid so that many records share one instant.
        updated = self.instant((2, 3, 4), (1, 8, 15, 22), (10,))
        return {
            "id": new_id(rng),
            "versi_skema": 2,
            "periode": self.kode,
            "pegawai": {
                "nip": person.nip,
                "nuptk": person.nuptk,
                "nama": person.nama,
                "jenis_ptk": person.peran,
                "status_kepegawaian": person.status,
                "jabatan": person.jabatan,
                "jenjang_jabatan": person.jenjang,
            },
            "sekolah": {"npsn": school["npsn"], "nama": school["nama"]},
            "penilai": {"nip": penilai.nip, "nama": penilai.nama, "peran": penilai.peran},
            "perencanaan": {
                "indikator": [{"kode": c, "nama": catalogue[c]} for c in codes],
                "disetujui_pada": (self.instant((0,), range(5, 29), (9, 10)) if approved else None),
            },
            "pelaksanaan": {
                "observasi": stages,
                "pengembangan_kompetensi_jp": rng.choice((0, 8, 16, 24, 32, 40, 48, 64)),
            },
            "penilaian": {
                "status": status,
                "hasil": {"rating_hasil_kerja": None, "rating_perilaku": None, "predikat": None},
                "difinalkan_pada": None,
            },
            "dibatalkan": False,
            "diperbarui_pada": updated,
        }

    def finalise(self, record: dict[str, Any], cell: tuple[str, str], predikat: str) -> None:
        stamp = self.instant((5,), range(1, 29), (10, 14))
        penilaian = record["penilaian"]
        penilaian["status"] = "final"
        penilaian["hasil"] = {
            "rating_hasil_kerja": cell[0],
            "rating_perilaku": cell[1],
            "predikat": predikat,
        }
        penilaian["difinalkan_pada"] = stamp
        record["diperbarui_pada"] = stamp
        for stage in record["pelaksanaan"]["observasi"]:
            if stage["selesai_pada"] is None:
                stage["selesai_pada"] = _at(self.tahun, self.month(4), 20, 13)


def generate_world(
    *,
    schools: int = 10,
    teachers_per_school: int = 20,
    seed: int = 1,
    periods: Sequence[str] = ("2025-1",),
    schema_version: int = 1,
) -> SandboxWorld:
    """A deterministic synthetic world (see the module docstring).

    Per school one kepala sekolah and ``teachers_per_school`` guru, each with one record per
    period. ``schema_version=2`` marks a deployment that serves only schema version 2.
    """
    if schools < 1 or teachers_per_school < 0:
        raise ValueError("need at least one school and a non-negative number of teachers")
    if not periods or len(set(periods)) != len(periods):
        raise ValueError("periods must be non-empty and distinct")
    if schema_version not in (1, 2):
        raise ValueError("schema_version is 1 or 2")
    for kode in periods:
        _parse_period(kode)
    rng = random.Random(seed)
    gen = _Generator(rng)

    school_list = [gen.school() for _ in range(schools)]
    school_list.sort(key=lambda s: s["npsn"])
    pengawas = [gen.person("pengawas_sekolah") for _ in range(max(1, math.ceil(schools / 5)))]
    heads = [gen.person("kepala_sekolah") for _ in school_list]
    teachers = [[gen.person("guru") for _ in range(teachers_per_school)] for _ in school_list]
    ordered = sorted(periods, key=_parse_period)
    period_dicts = [
        _period_dict(kode, "berjalan" if kode == ordered[-1] else "ditutup") for kode in ordered
    ]
    total = len(periods) * schools * (1 + teachers_per_school)

    records: list[dict[str, Any]] = []
    defects: list[Defect] = []
    for number, kode in enumerate(ordered):
        builder = _PeriodBuilder(rng, kode)
        per_period, found = _build_period(
            builder,
            gen,
            school_list,
            heads,
            teachers,
            pengawas,
            at_least_each_defect=number == 0 and total >= 100,
        )
        records.extend(per_period)
        defects.extend(found)

    return SandboxWorld(
        periods=period_dicts,
        schools=school_list,
        records=records,
        defects=defects,
        assessor_nips_outside_sync={p.nip for p in pengawas},
        schema_version=schema_version,
        seed=seed,
    )


def _build_period(
    builder: _PeriodBuilder,
    gen: _Generator,
    school_list: list[dict[str, Any]],
    heads: list[_Person],
    teachers: list[list[_Person]],
    pengawas: list[_Person],
    *,
    at_least_each_defect: bool,
) -> tuple[list[dict[str, Any]], list[Defect]]:
    rng = builder.rng
    records: list[dict[str, Any]] = []
    guru_records: list[tuple[int, dict[str, Any]]] = []  # (school index, record)
    for i, school in enumerate(school_list):
        head = heads[i]
        status = rng.choices(("final", "draf", "belum"), weights=(70, 15, 15))[0]
        # A kepala sekolah is always approved and never broken: guru SKPs hang under it.
        records.append(
            builder.record(head, school, pengawas[i % len(pengawas)], status=status, approved=True)
        )
        for teacher in teachers[i]:
            status = rng.choices(("final", "draf", "belum"), weights=(70, 15, 15))[0]
            record = builder.record(
                teacher, school, head, status=status, approved=rng.random() >= 0.05
            )
            records.append(record)
            guru_records.append((i, record))

    n_total = len(records)
    n_guru = len(guru_records)
    pool = list(range(n_guru))
    rng.shuffle(pool)

    n_cancel = min(len(pool), max(1 if n_total >= 50 else 0, round(0.02 * n_total)))
    cancelled = [guru_records[j] for j in pool[:n_cancel]]
    pool = pool[n_cancel:]
    n_rotate = 0
    if len(school_list) >= 2:
        n_rotate = min(len(pool), max(1 if n_guru >= 20 else 0, round(0.02 * n_guru)))
    rotated = [guru_records[j] for j in pool[:n_rotate]]
    pool = pool[n_rotate:]
    n_defect = round(0.03 * n_total)
    if at_least_each_defect:
        n_defect = max(3, n_defect)
    broken = [guru_records[j] for j in pool[: min(len(pool), n_defect)]]
    broken_ids = {r["id"] for _, r in broken}
    cancelled_ids = {r["id"] for _, r in cancelled}

    # Final penilaian: the first nine valid ones cover every cell of the matrix.
    cells = list(PREDICATE_MATRIX)
    rng.shuffle(cells)
    weights = [_CELL_WEIGHTS[c] for c in PREDICATE_MATRIX]
    covered = 0
    for record in records:
        status = record["penilaian"]["status"]
        if status == "final":
            valid = record["id"] not in broken_ids and record["id"] not in cancelled_ids
            if valid and covered < len(cells):
                cell = cells[covered]
                covered += 1
            else:
                cell = rng.choices(list(PREDICATE_MATRIX), weights=weights)[0]
            builder.finalise(record, cell, PREDICATE_MATRIX[cell])
        elif status == "draf" and rng.random() < 0.6:
            hasil = record["penilaian"]["hasil"]
            hasil["rating_hasil_kerja"] = rng.choice(RATINGS)
            if rng.random() < 0.5:
                hasil["rating_perilaku"] = rng.choice(RATINGS)
        if status in ("final", "draf") and rng.random() < 0.3:
            record["penilaian"]["catatan"] = rng.choice(_NOTES)

    for _, record in cancelled:
        record["dibatalkan"] = True

    # Rotation: an earlier record (older diperbarui_pada) at another school, same period.
    for i, record in rotated:
        j = (i + 1 + rng.randrange(len(school_list) - 1)) % len(school_list)
        other = school_list[j]
        earlier = copy.deepcopy(record)
        earlier["id"] = new_id(rng)
        earlier["sekolah"] = {"npsn": other["npsn"], "nama": other["nama"]}
        head = heads[j]
        earlier["penilai"] = {"nip": head.nip, "nama": head.nama, "peran": head.peran}
        earlier["perencanaan"]["disetujui_pada"] = builder.instant((0,), range(5, 29), (9,))
        earlier["penilaian"] = {
            "status": "belum",
            "hasil": {"rating_hasil_kerja": None, "rating_perilaku": None, "predikat": None},
            "difinalkan_pada": None,
        }
        for stage in earlier["pelaksanaan"]["observasi"]:
            stage["selesai_pada"] = None
        earlier["diperbarui_pada"] = builder.instant((1,), (3, 10), (10,))
        records.append(earlier)

    defects = [
        _break(builder, gen, record, school_list[i]["npsn"], n)
        for n, (i, record) in enumerate(broken)
    ]
    return records, defects


def _break(
    builder: _PeriodBuilder, gen: _Generator, record: dict[str, Any], npsn: str, n: int
) -> Defect:
    rng = builder.rng
    kinds: tuple[Literal["bad_nip", "wrong_indicator_family", "predicate_mismatch"], ...] = (
        "bad_nip",
        "wrong_indicator_family",
        "predicate_mismatch",
    )
    kind = kinds[n] if n < len(kinds) else rng.choice(kinds)
    pegawai = record["pegawai"]
    nip = pegawai["nip"]
    if kind == "bad_nip":
        if pegawai["status_kepegawaian"] == "PNS" and rng.random() < 0.7:
            bad = nip[:12] + "13" + nip[14:]
            description = f"PNS NIP {bad} has TMT CPNS month 13"
        else:
            bad = nip[:17]
            description = f"NIP {bad} has 17 digits"
        while bad in gen.nips:  # pragma: no cover - practically never
            bad = bad[:-1] + str((int(bad[-1]) + 1) % 10)
        gen.nips.add(bad)
        pegawai["nip"] = bad
        nip = bad
    elif kind == "wrong_indicator_family":
        code = rng.choice(sorted(KEPALA_SEKOLAH_INDICATORS))
        record["perencanaan"]["indikator"] = [
            {"kode": code, "nama": KEPALA_SEKOLAH_INDICATORS[code]}
        ]
        description = f"guru with kepala sekolah indicator {code}"
    else:
        cell = rng.choice(list(PREDICATE_MATRIX))
        right = PREDICATE_MATRIX[cell]
        wrong = rng.choice([p for p in PREDICATES if p != right])
        builder.finalise(record, cell, wrong)
        description = f"final penilaian {cell[0]}/{cell[1]} with predikat {wrong} (matrix: {right})"
    return Defect(source_id=record["id"], nip=nip, npsn=npsn, kind=kind, description=description)
