"""The e-Kinerja-like target's payload checks, and the shape of its refusals.

:func:`check_skp` and :func:`check_penilaian` list what is wrong with a request body as
``{"field", "pesan"}`` errors (the ``422 VALIDASI`` answer); :func:`problem` and
:func:`validation_error` build the error bodies of docs/apis.md, "Target: error codes".
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from connectors.sandbox.catalogue import TARGET_PREDICATES, TARGET_RATINGS
from connectors.sandbox.periods import period_bounds

__all__ = [
    "Answer",
    "check_penilaian",
    "check_skp",
    "field_error",
    "problem",
    "skp_period",
    "validation_error",
]

_NIP_RE = re.compile(r"^[0-9]{18}$")
_NPSN_RE = re.compile(r"^[0-9A-Z]{8}$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

Answer = tuple[int, dict[str, Any]]


def problem(kode: str, pesan: str) -> dict[str, Any]:
    """An error body: ``{"kode", "pesan"}``."""
    return {"kode": kode, "pesan": pesan}


def field_error(name: str, pesan: str) -> dict[str, str]:
    """One entry of a ``VALIDASI`` answer's ``errors``."""
    return {"field": name, "pesan": pesan}


def validation_error(errors: list[dict[str, str]]) -> dict[str, Any]:
    """The body of a ``422 VALIDASI`` answer."""
    return {**problem("VALIDASI", "isi permintaan tidak valid"), "errors": errors}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def fail(self, name: str, pesan: str) -> None:
        self.errors.append(field_error(name, pesan))

    def obj(
        self, value: Any, name: str, required: set[str], optional: frozenset[str] = frozenset()
    ) -> dict[str, Any] | None:
        """The object if it is one; reports missing and unknown fields."""
        if not isinstance(value, dict):
            self.fail(name or "(body)", "harus objek JSON")
            return None
        prefix = f"{name}." if name else ""
        for key in sorted(required - value.keys()):
            self.fail(prefix + key, "wajib diisi")
        for key in sorted(value.keys() - required - optional):
            self.fail(prefix + key, "field tidak dikenal")
        return value

    def text(self, parent: dict[str, Any], key: str, name: str, max_len: int = 255) -> None:
        if key not in parent:
            return
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(name, "harus teks yang tidak kosong")
        elif len(value) > max_len:
            self.fail(name, f"paling panjang {max_len} karakter")

    def nip(self, parent: dict[str, Any], key: str, name: str) -> None:
        if key in parent and not (isinstance(parent[key], str) and _NIP_RE.match(parent[key])):
            self.fail(name, "NIP harus 18 digit")

    def enum(self, parent: dict[str, Any], key: str, name: str, allowed: tuple[str, ...]) -> None:
        if key in parent and parent[key] not in allowed:
            self.fail(name, "harus salah satu dari " + ", ".join(allowed))

    def integer(self, parent: dict[str, Any], key: str, name: str) -> int | None:
        value = parent.get(key)
        if key in parent and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(name, "harus bilangan bulat")
            return None
        return value

    def date(self, parent: dict[str, Any], key: str, name: str) -> dt.date | None:
        value = parent.get(key)
        if key not in parent:
            return None
        if isinstance(value, str) and _DATE_RE.match(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(name, "harus tanggal YYYY-MM-DD")
        return None


def check_skp(body: Any, *, by_hand: bool = False) -> list[dict[str, str]]:
    """What is wrong with an SKP body (empty: nothing).

    ``by_hand``: an SKP made in e-Kinerja's own pages, which has no ``sumber``.
    """
    c = _Checker()
    required = {
        "nip",
        "periode",
        "jenis_jabatan",
        "jabatan",
        "unit_kerja",
        "pejabat_penilai",
        "rencana_hasil_kerja",
        "sumber",
    }
    top = c.obj(body, "", required - {"sumber"} if by_hand else required, frozenset({"sumber"}))
    if top is None:
        return c.errors
    c.nip(top, "nip", "nip")
    if "periode" in top:
        _check_period(c, top["periode"])
    c.enum(top, "jenis_jabatan", "jenis_jabatan", ("guru", "kepala_sekolah"))
    c.text(top, "jabatan", "jabatan")
    if "unit_kerja" in top:
        unit = c.obj(top["unit_kerja"], "unit_kerja", {"npsn", "nama"})
        if unit is not None:
            if "npsn" in unit and not (
                isinstance(unit["npsn"], str) and _NPSN_RE.match(unit["npsn"])
            ):
                c.fail("unit_kerja.npsn", "NPSN harus 8 karakter angka atau huruf kapital")
            c.text(unit, "nama", "unit_kerja.nama")
    if "pejabat_penilai" in top:
        penilai = c.obj(top["pejabat_penilai"], "pejabat_penilai", {"nip"})
        if penilai is not None:
            c.nip(penilai, "nip", "pejabat_penilai.nip")
            if penilai.get("nip") == top.get("nip"):
                c.fail("pejabat_penilai.nip", "pejabat penilai tidak boleh pegawai itu sendiri")
    if "rencana_hasil_kerja" in top:
        _check_plan(c, top["rencana_hasil_kerja"])
    if "sumber" in top:
        sumber = c.obj(top["sumber"], "sumber", {"sistem", "id", "versi_skema"})
        if sumber is not None:
            c.enum(sumber, "sistem", "sumber.sistem", ("PMM",))
            c.text(sumber, "id", "sumber.id")
            versi = sumber.get("versi_skema")
            if "versi_skema" in sumber and (isinstance(versi, bool) or versi not in (1, 2)):
                c.fail("sumber.versi_skema", "harus 1 atau 2")
    return c.errors


def skp_period(periode: dict[str, Any]) -> tuple[int, str, int | None]:
    """``(tahun, jenis, semester)`` of a checked SKP's ``periode`` (no ``jenis``: a semester)."""
    return periode["tahun"], periode.get("jenis", "semester"), periode["semester"]


def _check_period(c: _Checker, value: Any) -> None:
    periode = c.obj(
        value,
        "periode",
        {"tahun", "semester", "tanggal_mulai", "tanggal_selesai"},
        frozenset({"jenis"}),
    )
    if periode is None:
        return
    tahun = c.integer(periode, "tahun", "periode.tahun")
    if tahun is not None and not 2000 <= tahun <= 2100:
        c.fail("periode.tahun", "tahun tidak masuk akal")
        tahun = None
    # Older clients send no jenis: their SKP is a semester one.
    jenis = periode.get("jenis", "semester")
    if jenis not in ("semester", "tahunan"):
        c.fail("periode.jenis", "harus semester atau tahunan")
        jenis = None
    semester = periode.get("semester")
    if "semester" in periode:
        if jenis == "semester" and (isinstance(semester, bool) or semester not in (1, 2)):
            c.fail("periode.semester", "semester harus 1 atau 2 untuk periode semester")
            jenis = None
        elif jenis == "tahunan" and semester is not None:
            c.fail("periode.semester", "semester harus null untuk periode tahunan")
            jenis = None
    start = c.date(periode, "tanggal_mulai", "periode.tanggal_mulai")
    end = c.date(periode, "tanggal_selesai", "periode.tanggal_selesai")
    if tahun is None or jenis is None or "semester" not in periode:
        return
    first, last = period_bounds(tahun, jenis, semester)
    if start is not None and start != first:
        c.fail("periode.tanggal_mulai", f"harus {first.isoformat()}")
    if end is not None and end != last:
        c.fail("periode.tanggal_selesai", f"harus {last.isoformat()}")


def _check_plan(c: _Checker, plan: Any) -> None:
    if not isinstance(plan, list) or not plan:
        c.fail("rencana_hasil_kerja", "harus daftar yang tidak kosong")
        return
    for i, item in enumerate(plan):
        name = f"rencana_hasil_kerja[{i}]"
        rhk = c.obj(item, name, {"uraian", "indikator"})
        if rhk is None:
            continue
        c.text(rhk, "uraian", f"{name}.uraian", 2000)
        indikator = rhk.get("indikator")
        if "indikator" not in rhk:
            continue
        if not isinstance(indikator, list) or not indikator:
            c.fail(f"{name}.indikator", "harus daftar yang tidak kosong")
            continue
        for j, ind in enumerate(indikator):
            iname = f"{name}.indikator[{j}]"
            found = c.obj(ind, iname, {"kode", "uraian", "target"})
            if found is not None:
                c.text(found, "kode", f"{iname}.kode", 20)
                c.text(found, "uraian", f"{iname}.uraian", 2000)
                c.text(found, "target", f"{iname}.target", 2000)


def check_penilaian(body: Any, exact: Any, *, jenis: str) -> list[dict[str, str]]:
    """What is wrong with a penilaian body for an SKP of kind ``jenis`` (``semester`` or
    ``tahunan``); ``exact`` is the body parsed with ``Decimal``.

    ``angka_kredit``: a non-negative JSON number with at most 3 decimals. ``bulan_dinilai``:
    an integer 1..12, at most the period's months (6 or 12); required with ``angka_kredit``
    on an annual SKP, optional (6) on a semester one. The value of the angka kredit is not
    checked.
    """
    c = _Checker()
    top = c.obj(
        body,
        "",
        {
            "rating_hasil_kerja",
            "rating_perilaku_kerja",
            "predikat_kinerja",
            "tanggal_penilaian",
            "pejabat_penilai",
        },
        frozenset({"angka_kredit", "bulan_dinilai", "catatan"}),
    )
    if top is None:
        return c.errors
    c.enum(top, "rating_hasil_kerja", "rating_hasil_kerja", TARGET_RATINGS)
    c.enum(top, "rating_perilaku_kerja", "rating_perilaku_kerja", TARGET_RATINGS)
    c.enum(top, "predikat_kinerja", "predikat_kinerja", TARGET_PREDICATES)
    c.date(top, "tanggal_penilaian", "tanggal_penilaian")
    if "pejabat_penilai" in top:
        penilai = c.obj(top["pejabat_penilai"], "pejabat_penilai", {"nip"})
        if penilai is not None:
            c.nip(penilai, "nip", "pejabat_penilai.nip")
    credit = exact.get("angka_kredit") if isinstance(exact, dict) else None
    if credit is not None:
        if isinstance(credit, bool) or not isinstance(credit, int | Decimal):
            c.fail("angka_kredit", "harus angka")
        else:
            value = Decimal(credit)
            exponent = value.normalize().as_tuple().exponent
            if value < 0:
                c.fail("angka_kredit", "tidak boleh negatif")
            elif isinstance(exponent, int) and exponent < -3:
                c.fail("angka_kredit", "paling banyak 3 angka desimal")
    months = 12 if jenis == "tahunan" else 6
    bulan = top.get("bulan_dinilai")
    if bulan is None:
        if credit is not None and jenis == "tahunan":
            c.fail("bulan_dinilai", "wajib diisi bersama angka_kredit untuk SKP tahunan")
    elif isinstance(bulan, bool) or not isinstance(bulan, int) or not 1 <= bulan <= 12:
        c.fail("bulan_dinilai", "harus bilangan bulat 1..12")
    elif bulan > months:
        c.fail("bulan_dinilai", f"paling banyak {months} bulan untuk periode {jenis}")
    catatan = top.get("catatan")
    if catatan is not None and (not isinstance(catatan, str) or len(catatan) > 2000):
        c.fail("catatan", "harus teks paling panjang 2000 karakter atau null")
    return c.errors
