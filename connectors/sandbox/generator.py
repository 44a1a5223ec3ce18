"""Seeded synthetic data for the sandbox: :func:`generate_world`.

It builds schools, their kepala sekolah and guru, one ``Kinerja`` record per person and period
(semesters ``YYYY-S`` and years ``YYYY``), a few rotations and cancellations, and a few
deliberately broken records (listed in :attr:`SandboxWorld.defects` as :class:`Defect`).
Everything comes from one seeded :class:`random.Random`: the same arguments give the same world.

The valid data is as varied as the real one, and none of this variety is a defect: NPSNs with
any first digit and PKBM/SKB (``P``) and LKP (``K``) schools; names with apostrophes and
non-ASCII letters; PNS NIPs and NI PPPK (a 2-digit code, not a month, where a PNS has its TMT
month); ``tmt_jabatan`` absent, null, before the period or (for a few people per year) inside
it, on the 1st or mid-month; ``catatan`` up to 2,000 characters; ``disetujui_pada`` and
``difinalkan_pada`` written in the school's own offset (WIB +07:00, WITA +08:00, WIT +09:00),
some just after midnight so that the local date is not the WIB date. ``diperbarui_pada`` is
always WIB. A kepala sekolah's penilai is a pengawas sekolah before 2026 and the world's one
Kepala Dinas from 2026; both are outside the sync and hold an SKP on the target already.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
from collections.abc import Sequence
from typing import Any, Literal

from connectors.sandbox.catalogue import (
    GURU_INDICATORS,
    KEPALA_SEKOLAH_INDICATORS,
    PREDICATE_MATRIX,
    PREDICATES,
    RATINGS,
)
from connectors.sandbox.people import NOTES, PeopleGenerator, Person, long_note
from connectors.sandbox.periods import Period, parse_period
from connectors.sandbox.world import WIB, Defect, SandboxWorld, format_instant, new_id

__all__ = ["DEFAULT_PERIODS", "Defect", "generate_world"]

DEFAULT_PERIODS: tuple[str, ...] = ("2024-1", "2024-2", "2025", "2026")
"""Two semesters of 2024 (the old cycle), then the years 2025 and 2026 (the new one)."""

WITA = dt.timezone(dt.timedelta(hours=8))
WIT = dt.timezone(dt.timedelta(hours=9))
_ZONES = (WIB, WITA, WIT)
# From 2026 a kepala sekolah's penilai is the Kepala Dinas (before: a pengawas sekolah).
_KEPALA_DINAS_FROM = 2026

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


class _PeriodBuilder:
    """Builds the records of one period (month offsets count from the period's first month)."""

    def __init__(self, rng: random.Random, period: Period, zones: dict[str, dt.tzinfo]) -> None:
        self.rng = rng
        self.period = period
        self.kode = period.kode
        self.tahun = period.tahun
        self.first_month = period.start.month
        self.zones = zones
        if period.jenis == "tahunan":
            # Planned in January–February, observed through the year, final in Nov–Dec.
            self.approve_months: tuple[int, ...] = (0, 1)
            self.update_months: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
            self.final_months: tuple[int, ...] = (10, 11)
            self.stage_span = 8
        else:
            self.approve_months = (0,)
            self.update_months = (2, 3, 4)
            self.final_months = (5,)
            self.stage_span = 3

    def month(self, offset: int) -> int:
        return self.first_month + offset

    def moment(
        self,
        offset_months: Sequence[int],
        days: Sequence[int],
        hours: Sequence[int],
        zone: dt.tzinfo = WIB,
    ) -> dt.datetime:
        rng = self.rng
        return dt.datetime(
            self.tahun,
            self.month(rng.choice(offset_months)),
            rng.choice(days),
            rng.choice(hours),
            tzinfo=zone,
        )

    def instant(
        self, offset_months: Sequence[int], days: Sequence[int], hours: Sequence[int]
    ) -> str:
        return format_instant(self.moment(offset_months, days, hours))

    def approval(self, npsn: str, tmt: dt.date | None) -> str:
        """``disetujui_pada`` in the school's offset; after a ``tmt_jabatan`` in the period."""
        zone = self.zones[npsn]
        moment = self.moment(self.approve_months, range(5, 29), (9, 10), zone)
        if tmt is not None and tmt >= self.period.start:
            start = dt.datetime(tmt.year, tmt.month, tmt.day, 9, tzinfo=zone)
            moment = max(moment, start + dt.timedelta(days=self.rng.randint(3, 20)))
        return moment.isoformat(timespec="seconds")

    def record(
        self,
        person: Person,
        school: dict[str, Any],
        penilai: Person,
        *,
        status: str,
        approved: bool,
        tmt_inside: dt.date | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        catalogue = GURU_INDICATORS if person.peran == "guru" else KEPALA_SEKOLAH_INDICATORS
        codes = rng.sample(sorted(catalogue), 2)
        if not (person.peran == "kepala_sekolah" and self.tahun >= 2026 and rng.random() < 0.5):
            codes = codes[:1]
        done = {"final": 5, "draf": rng.randint(3, 5), "belum": rng.randint(0, 4)}[status]
        stages = []
        for i, tahap in enumerate(_STAGES):
            month = self.month(1 + i * self.stage_span // 5)
            selesai = _at(self.tahun, month, 2 + 5 * i, 13) if i < done else None
            stages.append({"tahap": tahap, "selesai_pada": selesai})
        # Updated on a coarse grid so that many records share one instant.
        updated = self.instant(self.update_months, (1, 8, 15, 22), (10,))
        pegawai: dict[str, Any] = {
            "nip": person.nip,
            "nuptk": person.nuptk,
            "nama": person.nama,
            "jenis_ptk": person.peran,
            "status_kepegawaian": person.status,
            "jabatan": person.jabatan,
            "jenjang_jabatan": person.jenjang,
        }
        tmt = tmt_inside or person.tmt_jabatan
        approval = self.approval(school["npsn"], tmt) if approved else None
        if approval is not None and dt.datetime.fromisoformat(approval) >= (
            dt.datetime.fromisoformat(updated)
        ):
            # A jabatan that began inside the period: planned, then updated, after it.
            updated = format_instant(dt.datetime.fromisoformat(approval) + dt.timedelta(days=2))
        if tmt is not None:
            pegawai["tmt_jabatan"] = tmt.isoformat()
        elif person.tmt_shown == "null":
            pegawai["tmt_jabatan"] = None
        return {
            "id": new_id(rng),
            "versi_skema": 2,
            "periode": self.kode,
            "pegawai": pegawai,
            "sekolah": {"npsn": school["npsn"], "nama": school["nama"]},
            "penilai": {"nip": penilai.nip, "nama": penilai.nama, "peran": penilai.peran},
            "perencanaan": {
                "indikator": [{"kode": c, "nama": catalogue[c]} for c in codes],
                "disetujui_pada": approval,
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
        """Final, written in the school's offset; in WITA/WIT now and then just after
        midnight, so the local date is a day after the WIB date."""
        rng = self.rng
        zone = self.zones[record["sekolah"]["npsn"]]
        moment = self.moment(self.final_months, range(1, 29), (10, 14), zone)
        if zone is not WIB and rng.random() < 0.2:
            moment = moment.replace(hour=0, minute=rng.randint(0, 59))
        penilaian = record["penilaian"]
        penilaian["status"] = "final"
        penilaian["hasil"] = {
            "rating_hasil_kerja": cell[0],
            "rating_perilaku": cell[1],
            "predikat": predikat,
        }
        penilaian["difinalkan_pada"] = moment.isoformat(timespec="seconds")
        record["diperbarui_pada"] = format_instant(moment)
        for stage in record["pelaksanaan"]["observasi"]:
            if stage["selesai_pada"] is None:
                filler = self.month(1 + 4 * self.stage_span // 5)
                stage["selesai_pada"] = _at(self.tahun, filler, 20, 13)

    def tmt_inside(self, number: int) -> dt.date:
        """A ``tmt_jabatan`` inside the period after its first month: the 1st of a month or
        mid-month, alternately (``number`` counts the people picked so far)."""
        rng = self.rng
        # Late enough to count fewer months, early enough for a plan and a penilaian after it.
        month = self.month(rng.randint(1, 8 if self.period.jenis == "tahunan" else 3))
        day = 1 if number % 2 == 0 else rng.choice((15, 15, 10, 17))
        return dt.date(self.tahun, month, day)


def _at(year: int, month: int, day: int, hour: int, minute: int = 0) -> str:
    return format_instant(dt.datetime(year, month, day, hour, minute, tzinfo=WIB))


def generate_world(
    *,
    schools: int = 10,
    teachers_per_school: int = 20,
    seed: int = 1,
    periods: Sequence[str] = DEFAULT_PERIODS,
    schema_version: int = 1,
) -> SandboxWorld:
    """A deterministic synthetic world (see the module docstring).

    Per school one kepala sekolah and ``teachers_per_school`` guru, each with one record per
    period. ``periods`` are codes ``YYYY-S`` (a semester) or ``YYYY`` (a year); the latest is
    ``berjalan``, the others ``ditutup``. ``schema_version=2`` marks a deployment that serves
    only schema version 2.
    """
    if schools < 1 or teachers_per_school < 0:
        raise ValueError("need at least one school and a non-negative number of teachers")
    if not periods or len(set(periods)) != len(periods):
        raise ValueError("periods must be non-empty and distinct")
    if schema_version not in (1, 2):
        raise ValueError("schema_version is 1 or 2")
    parsed = sorted((parse_period(kode) for kode in periods), key=lambda p: (p.start, p.end))
    rng = random.Random(seed)
    gen = PeopleGenerator(rng)

    school_list = gen.schools(schools)
    zones: dict[str, dt.tzinfo] = {
        s["npsn"]: _ZONES[i % 3] if i < 3 else rng.choice(_ZONES) for i, s in enumerate(school_list)
    }
    pengawas = [gen.person("pengawas_sekolah") for _ in range(max(1, math.ceil(schools / 5)))]
    kepala_dinas = gen.person("kepala_dinas")
    heads = [gen.person("kepala_sekolah") for _ in school_list]
    teachers = [[gen.person("guru") for _ in range(teachers_per_school)] for _ in school_list]
    period_dicts = [p.as_wire("berjalan" if p is parsed[-1] else "ditutup") for p in parsed]
    total = len(periods) * schools * (1 + teachers_per_school)

    records: list[dict[str, Any]] = []
    defects: list[Defect] = []
    for number, period in enumerate(parsed):
        builder = _PeriodBuilder(rng, period, zones)
        assessors = [kepala_dinas] if period.tahun >= _KEPALA_DINAS_FROM else pengawas
        per_period, found = _build_period(
            builder,
            gen,
            school_list,
            heads,
            teachers,
            assessors,
            at_least_each_defect=number == 0 and total >= 100,
        )
        records.extend(per_period)
        defects.extend(found)

    return SandboxWorld(
        periods=period_dicts,
        schools=school_list,
        records=records,
        defects=defects,
        assessor_nips_outside_sync={p.nip for p in pengawas} | {kepala_dinas.nip},
        schema_version=schema_version,
        seed=seed,
    )


def _pick_tmt_inside(
    builder: _PeriodBuilder, heads: list[Person], teachers: list[list[Person]]
) -> dict[str, dt.date]:
    """The people whose jabatan begins inside this period (NIP → ``tmt_jabatan``): about 5–10 %
    in a year, about 2 % in a semester."""
    rng = builder.rng
    people = [*heads, *(t for school in teachers for t in school)]
    # Kept inside 5-10 % after rounding, for worlds of a few hundred people.
    share = rng.uniform(0.055, 0.095) if builder.period.jenis == "tahunan" else 0.02
    n = min(len(people), round(share * len(people)))
    if builder.period.jenis == "tahunan" and len(people) >= 10:
        n = max(2, n)  # both a 1st-of-the-month and a mid-month start
    chosen = rng.sample(people, n)
    return {person.nip: builder.tmt_inside(i) for i, person in enumerate(chosen)}


def _build_period(
    builder: _PeriodBuilder,
    gen: PeopleGenerator,
    school_list: list[dict[str, Any]],
    heads: list[Person],
    teachers: list[list[Person]],
    assessors: list[Person],
    *,
    at_least_each_defect: bool,
) -> tuple[list[dict[str, Any]], list[Defect]]:
    rng = builder.rng
    inside = _pick_tmt_inside(builder, heads, teachers)
    records: list[dict[str, Any]] = []
    guru_records: list[tuple[int, dict[str, Any]]] = []  # (school index, record)
    for i, school in enumerate(school_list):
        head = heads[i]
        status = rng.choices(("final", "draf", "belum"), weights=(70, 15, 15))[0]
        # A kepala sekolah is always approved and never broken: guru SKPs hang under it.
        records.append(
            builder.record(
                head,
                school,
                assessors[i % len(assessors)],
                status=status,
                approved=True,
                tmt_inside=inside.get(head.nip),
            )
        )
        for teacher in teachers[i]:
            status = rng.choices(("final", "draf", "belum"), weights=(70, 15, 15))[0]
            record = builder.record(
                teacher,
                school,
                head,
                status=status,
                approved=rng.random() >= 0.05,
                tmt_inside=inside.get(teacher.nip),
            )
            records.append(record)
            guru_records.append((i, record))
    # From now on the new jabatan began before every later period.
    for person in [*heads, *(t for school in teachers for t in school)]:
        if person.nip in inside:
            person.tmt_jabatan = inside[person.nip]
            person.tmt_shown = "date"

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
    # Not someone whose jabatan began inside the period: planned only after it, at one school.
    movable = [j for j in pool if guru_records[j][1]["pegawai"]["nip"] not in inside]
    rotated = [guru_records[j] for j in movable[:n_rotate]]
    pool = [j for j in pool if j not in movable[:n_rotate]]
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
    long_note_given = False
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
            # The first note of a period is as long as the contract allows.
            longest = not long_note_given or rng.random() < 0.05
            long_note_given = True
            record["penilaian"]["catatan"] = long_note(rng) if longest else rng.choice(NOTES)

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
    builder: _PeriodBuilder, gen: PeopleGenerator, record: dict[str, Any], npsn: str, n: int
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
