"""The e-Kinerja-like target API (contracts/ekinerja-target.md) and its :class:`TargetStore`.

Endpoints: ``POST /oauth/token``; ``POST /api/v1/skp``, ``GET /api/v1/skp``,
``GET|PUT /api/v1/skp/{id_skp}``, ``POST|GET /api/v1/skp/{id_skp}/penilaian``; admin endpoints
(no token, never faulted): ``GET /_sandbox/stats``, ``GET|PUT /_sandbox/faults``,
``POST /_sandbox/tokens/revoke``.

Strict on purpose: the project's tests use it to prove that records arrive exactly once. Every
write is checked and applied under one lock, together with its idempotency record, so two
concurrent requests with one key cannot both create something.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.sandbox.faults import (
    FaultMiddleware,
    Faults,
    Grant,
    TokenRegistry,
    admin_routes,
    token_response,
    unauthorized,
)
from connectors.sandbox.world import SandboxWorld

__all__ = ["PREDIKAT_MATRIX", "TargetStore", "create_ekinerja_app"]

IDEMPOTENCY_TTL_S = 7 * 24 * 3600
MAX_KEY_LENGTH = 128
WRITE_SCOPE = "skp.write"
READ_SCOPE = "skp.read"

_RATINGS = ("DIATAS_EKSPEKTASI", "SESUAI_EKSPEKTASI", "DIBAWAH_EKSPEKTASI")
_PREDIKAT = ("SANGAT_BAIK", "BAIK", "BUTUH_PERBAIKAN", "KURANG", "SANGAT_KURANG")
PREDIKAT_MATRIX: dict[tuple[str, str], str] = {
    # (rating hasil kerja, rating perilaku kerja) -> predikat kinerja (PermenPANRB 6/2022)
    ("DIATAS_EKSPEKTASI", "DIBAWAH_EKSPEKTASI"): "KURANG",
    ("DIATAS_EKSPEKTASI", "SESUAI_EKSPEKTASI"): "BAIK",
    ("DIATAS_EKSPEKTASI", "DIATAS_EKSPEKTASI"): "SANGAT_BAIK",
    ("SESUAI_EKSPEKTASI", "DIBAWAH_EKSPEKTASI"): "KURANG",
    ("SESUAI_EKSPEKTASI", "SESUAI_EKSPEKTASI"): "BAIK",
    ("SESUAI_EKSPEKTASI", "DIATAS_EKSPEKTASI"): "BAIK",
    ("DIBAWAH_EKSPEKTASI", "DIBAWAH_EKSPEKTASI"): "SANGAT_KURANG",
    ("DIBAWAH_EKSPEKTASI", "SESUAI_EKSPEKTASI"): "BUTUH_PERBAIKAN",
    ("DIBAWAH_EKSPEKTASI", "DIATAS_EKSPEKTASI"): "BUTUH_PERBAIKAN",
}
_NIP_RE = re.compile(r"^[0-9]{18}$")
_NPSN_RE = re.compile(r"^[0-9A-Z]{8}$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

Answer = tuple[int, dict[str, Any]]


# -- the store ---------------------------------------------------------------------------------


@dataclass
class _Skp:
    id_skp: str
    nip: str
    tahun: int
    semester: int
    versi: int
    body: dict[str, Any]
    locked: bool = False


@dataclass
class _Penilaian:
    id_skp: str
    id_penilaian: str
    body: dict[str, Any]


@dataclass
class _Idempotent:
    fingerprint: str
    status: int
    body: dict[str, Any]
    stored_at: float


class TargetStore:
    """What the target holds, and counters that let tests prove exactly-once delivery.

    Thread-safe. A replayed idempotent answer is counted under ``replayed``, never as a create.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._skps: dict[str, _Skp] = {}
        self._by_person: dict[tuple[str, int, int], str] = {}
        self._penilaian: dict[str, _Penilaian] = {}
        self._keys: dict[str, _Idempotent] = {}
        self._counts = {
            "skp_created": 0,
            "skp_updated": 0,
            "penilaian_created": 0,
            "replayed": 0,
            "rejected": 0,
            "requests": 0,
        }
        self._faulted: dict[str, int] = {}
        self._creates: dict[str, dict[str, int]] = {"skp": {}, "penilaian": {}}

    # -- reading -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters: creates, updates, replays, 4xx answers, API requests, faults injected."""
        with self._lock:
            return {
                **self._counts,
                "creates": copy.deepcopy(self._creates),
                "faults": dict(self._faulted),
            }

    def skps(self) -> list[dict[str, Any]]:
        """Every stored SKP: ``id_skp``, ``nip``, ``tahun``, ``semester``, ``versi``,
        ``body`` and ``locked`` (a penilaian exists)."""
        with self._lock:
            return [
                {
                    "id_skp": s.id_skp,
                    "nip": s.nip,
                    "tahun": s.tahun,
                    "semester": s.semester,
                    "versi": s.versi,
                    "body": copy.deepcopy(s.body),
                    "locked": s.locked,
                }
                for s in self._skps.values()
            ]

    def penilaian(self) -> list[dict[str, Any]]:
        """Every stored penilaian: ``id_skp``, ``id_penilaian``, ``body``."""
        with self._lock:
            return [
                {"id_skp": p.id_skp, "id_penilaian": p.id_penilaian, "body": copy.deepcopy(p.body)}
                for p in self._penilaian.values()
            ]

    def has_skp(self, nip: str, tahun: int, semester: int) -> bool:
        with self._lock:
            return (nip, tahun, semester) in self._by_person

    # -- counting (used by the app) ------------------------------------------------------
    def count_request(self) -> None:
        with self._lock:
            self._counts["requests"] += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self._faulted[kind] = self._faulted.get(kind, 0) + 1

    def count_answer(self, status: int) -> None:
        if 400 <= status < 500:
            with self._lock:
                self._counts["rejected"] += 1

    # -- writing -------------------------------------------------------------------------
    def idempotent(self, key: str, fingerprint: str, apply: Callable[[], Answer]) -> Answer:
        """Replay the stored 2xx answer for ``key``, refuse a reused key, or ``apply``.

        ``apply`` runs under the store's lock; only its 2xx answers are kept for replay.
        """
        with self._lock:
            now = time.monotonic()
            known = self._keys.get(key)
            if known is not None and now - known.stored_at > IDEMPOTENCY_TTL_S:
                del self._keys[key]
                known = None
            if known is not None:
                if known.fingerprint != fingerprint:
                    return 422, _problem(
                        "IDEMPOTENCY_KEY_REUSED",
                        "Idempotency-Key ini sudah dipakai untuk permintaan lain",
                    )
                self._counts["replayed"] += 1
                return known.status, copy.deepcopy(known.body)
            status, body = apply()
            if 200 <= status < 300:
                self._keys[key] = _Idempotent(fingerprint, status, copy.deepcopy(body), now)
            return status, body

    def create_skp(self, body: dict[str, Any], assessors_outside: set[str]) -> Answer:
        with self._lock:
            nip = body["nip"]
            tahun, semester = body["periode"]["tahun"], body["periode"]["semester"]
            existing = self._by_person.get((nip, tahun, semester))
            if existing is not None:
                skp = self._skps[existing]
                return 409, {
                    **_problem("SKP_SUDAH_ADA", "SKP untuk pegawai dan periode ini sudah ada"),
                    "id_skp": skp.id_skp,
                    "versi": skp.versi,
                }
            penilai = body["pejabat_penilai"]["nip"]
            if penilai not in assessors_outside and (penilai, tahun, semester) not in (
                self._by_person
            ):
                return 409, _problem(
                    "PENILAI_BELUM_ADA_SKP",
                    f"pejabat penilai {penilai} belum memiliki SKP periode {tahun}-{semester}",
                )
            id_skp = f"SKP-{tahun}-{semester}-{nip}"
            self._skps[id_skp] = _Skp(id_skp, nip, tahun, semester, 1, copy.deepcopy(body))
            self._by_person[(nip, tahun, semester)] = id_skp
            self._counts["skp_created"] += 1
            person = f"{nip}/{tahun}-{semester}"
            self._creates["skp"][person] = self._creates["skp"].get(person, 0) + 1
            return 201, {"id_skp": id_skp, "status": "diterima", "versi": 1}

    def replace_skp(
        self, id_skp: str, body: dict[str, Any], if_match: int, inactive_npsns: set[str]
    ) -> Answer:
        with self._lock:
            skp = self._skps.get(id_skp)
            if skp is None:
                return 404, _problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = []
            if body["nip"] != skp.nip:
                errors.append(_field("nip", "NIP SKP tidak dapat diubah"))
            if (body["periode"]["tahun"], body["periode"]["semester"]) != (
                skp.tahun,
                skp.semester,
            ):
                errors.append(_field("periode", "periode SKP tidak dapat diubah"))
            if errors:
                return 422, _validation(errors)
            if body["unit_kerja"]["npsn"] in inactive_npsns:
                return 422, _problem("UNOR_TIDAK_AKTIF", "unit kerja tidak aktif")
            if skp.locked:
                return 409, {
                    **_problem("SKP_TERKUNCI", "SKP sudah dinilai dan tidak dapat diubah"),
                    "id_skp": id_skp,
                }
            if if_match != skp.versi:
                return 412, {
                    **_problem("VERSI_TIDAK_SESUAI", "versi SKP sudah berubah"),
                    "id_skp": id_skp,
                    "versi": skp.versi,
                }
            skp.versi += 1
            skp.body = copy.deepcopy(body)
            self._counts["skp_updated"] += 1
            return 200, {"id_skp": id_skp, "status": "diterima", "versi": skp.versi}

    def create_penilaian(self, id_skp: str, body: dict[str, Any]) -> Answer:
        with self._lock:
            skp = self._skps.get(id_skp)
            if skp is None:
                return 404, _problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            cell = (body["rating_hasil_kerja"], body["rating_perilaku_kerja"])
            expected = PREDIKAT_MATRIX[cell]
            if body["predikat_kinerja"] != expected:
                return 422, {
                    **_problem(
                        "PREDIKAT_TIDAK_SESUAI",
                        f"predikat {body['predikat_kinerja']} tidak sesuai matriks "
                        f"({cell[0]} x {cell[1]} = {expected})",
                    ),
                    "errors": [_field("predikat_kinerja", f"seharusnya {expected}")],
                }
            penilai = skp.body["pejabat_penilai"]["nip"]
            if body["pejabat_penilai"]["nip"] != penilai:
                return 422, _validation(
                    [_field("pejabat_penilai.nip", f"harus pejabat penilai SKP ({penilai})")]
                )
            tanggal = dt.date.fromisoformat(body["tanggal_penilaian"])
            if tanggal < dt.date.fromisoformat(skp.body["periode"]["tanggal_mulai"]):
                return 422, _validation([_field("tanggal_penilaian", "sebelum awal periode SKP")])
            if id_skp in self._penilaian:
                return 409, {
                    **_problem("PENILAIAN_SUDAH_ADA", "SKP ini sudah memiliki penilaian"),
                    "id_penilaian": self._penilaian[id_skp].id_penilaian,
                }
            id_penilaian = f"PNL-{skp.tahun}-{skp.semester}-{skp.nip}"
            self._penilaian[id_skp] = _Penilaian(id_skp, id_penilaian, copy.deepcopy(body))
            skp.locked = True
            self._counts["penilaian_created"] += 1
            person = f"{skp.nip}/{skp.tahun}-{skp.semester}"
            self._creates["penilaian"][person] = self._creates["penilaian"].get(person, 0) + 1
            return 201, {"id_penilaian": id_penilaian, "status": "final"}

    def skp_view(self, id_skp: str) -> dict[str, Any] | None:
        with self._lock:
            skp = self._skps.get(id_skp)
            return None if skp is None else _view(skp)

    def find_skps(
        self, nip: str | None, tahun: int | None, semester: int | None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                _view(s)
                for s in self._skps.values()
                if (nip is None or s.nip == nip)
                and (tahun is None or s.tahun == tahun)
                and (semester is None or s.semester == semester)
            ]

    def penilaian_view(self, id_skp: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._penilaian.get(id_skp)
            if found is None:
                return None
            return {
                **copy.deepcopy(found.body),
                "id_penilaian": found.id_penilaian,
                "id_skp": id_skp,
                "status": "final",
            }


def _view(skp: _Skp) -> dict[str, Any]:
    return {
        **copy.deepcopy(skp.body),
        "id_skp": skp.id_skp,
        "versi": skp.versi,
        "status": "diterima",
        "terkunci": skp.locked,
    }


# -- validation --------------------------------------------------------------------------------


def _problem(kode: str, pesan: str) -> dict[str, Any]:
    return {"kode": kode, "pesan": pesan}


def _field(name: str, pesan: str) -> dict[str, str]:
    return {"field": name, "pesan": pesan}


def _validation(errors: list[dict[str, str]]) -> dict[str, Any]:
    return {**_problem("VALIDASI", "isi permintaan tidak valid"), "errors": errors}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def fail(self, name: str, pesan: str) -> None:
        self.errors.append(_field(name, pesan))

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


def _check_skp(body: Any) -> list[dict[str, str]]:
    c = _Checker()
    top = c.obj(
        body,
        "",
        {
            "nip",
            "periode",
            "jenis_jabatan",
            "jabatan",
            "unit_kerja",
            "pejabat_penilai",
            "rencana_hasil_kerja",
            "sumber",
        },
    )
    if top is None:
        return c.errors
    c.nip(top, "nip", "nip")
    periode = (
        c.obj(
            top.get("periode"), "periode", {"tahun", "semester", "tanggal_mulai", "tanggal_selesai"}
        )
        if "periode" in top
        else None
    )
    if periode is not None:
        tahun = c.integer(periode, "tahun", "periode.tahun")
        if tahun is not None and not 2000 <= tahun <= 2100:
            c.fail("periode.tahun", "tahun tidak masuk akal")
            tahun = None
        semester = periode.get("semester")
        if "semester" in periode and (isinstance(semester, bool) or semester not in (1, 2)):
            c.fail("periode.semester", "semester harus 1 atau 2")
            semester = None
        start = c.date(periode, "tanggal_mulai", "periode.tanggal_mulai")
        end = c.date(periode, "tanggal_selesai", "periode.tanggal_selesai")
        if tahun is not None and semester in (1, 2):
            first, last = (
                (dt.date(tahun, 1, 1), dt.date(tahun, 6, 30))
                if semester == 1
                else (dt.date(tahun, 7, 1), dt.date(tahun, 12, 31))
            )
            if start is not None and start != first:
                c.fail("periode.tanggal_mulai", f"harus {first.isoformat()}")
            if end is not None and end != last:
                c.fail("periode.tanggal_selesai", f"harus {last.isoformat()}")
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


def _check_penilaian(body: Any, exact: Any) -> list[dict[str, str]]:
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
        frozenset({"angka_kredit", "catatan"}),
    )
    if top is None:
        return c.errors
    c.enum(top, "rating_hasil_kerja", "rating_hasil_kerja", _RATINGS)
    c.enum(top, "rating_perilaku_kerja", "rating_perilaku_kerja", _RATINGS)
    c.enum(top, "predikat_kinerja", "predikat_kinerja", _PREDIKAT)
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
            elif isinstance(exponent, int) and exponent < -2:
                c.fail("angka_kredit", "paling banyak 2 angka desimal")
    catatan = top.get("catatan")
    if catatan is not None and (not isinstance(catatan, str) or len(catatan) > 2000):
        c.fail("catatan", "harus teks paling panjang 2000 karakter atau null")
    return c.errors


# -- the app -----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _if_match(header: str) -> int | None:
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() else None


def create_ekinerja_app(
    world: SandboxWorld,
    store: TargetStore,
    faults: Faults,
    *,
    token_ttl_s: int = 3600,
    client_id: str = "sandbox",
    client_secret: str = "sandbox-secret",  # noqa: S107 - the public demo secret
) -> Starlette:
    """The target API over ``store``; pengawas sekolah of ``world`` count as holding an SKP."""
    tokens = TokenRegistry(
        ttl_s=token_ttl_s,
        client_id=client_id,
        client_secret=client_secret,
        known_scopes=frozenset({WRITE_SCOPE, READ_SCOPE}),
        default_scopes=frozenset({READ_SCOPE}),
    )
    open_periods = {(p["tahun"], p["semester"]) for p in world.periods}

    def answer(
        status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        store.count_answer(status)
        return JSONResponse(body, status_code=status, headers=headers)

    def authorize(request: Request, scope: str) -> Grant | Response:
        grant = tokens.check(request.headers.get("authorization"))
        if grant is None:
            store.count_answer(401)
            return unauthorized()
        if scope == WRITE_SCOPE and WRITE_SCOPE not in grant.scopes:
            return answer(403, {"error": "insufficient_scope", "scope": WRITE_SCOPE})
        return grant

    async def read_write(request: Request) -> tuple[str, Any, Any] | Response:
        """Check the token and Idempotency-Key; parse the body (plain and with exact decimals)."""
        grant = authorize(request, WRITE_SCOPE)
        if isinstance(grant, Response):
            return grant
        key = request.headers.get("idempotency-key")
        if not key:
            return answer(400, _problem("IDEMPOTENCY_KEY_WAJIB", "header Idempotency-Key wajib"))
        if len(key) > MAX_KEY_LENGTH:
            return answer(
                400, _problem("IDEMPOTENCY_KEY_TERLALU_PANJANG", "paling panjang 128 karakter")
            )
        raw = await request.body()
        try:
            body = json.loads(raw, parse_constant=_reject_constant)
            exact = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError):
            return answer(400, _problem("JSON_TIDAK_VALID", "isi permintaan bukan JSON"))
        return key, body, exact

    def fingerprint(request: Request, body: Any) -> str:
        text = f"{request.method} {request.url.path}\n{_canonical(body)}"
        return hashlib.sha256(text.encode()).hexdigest()

    def skp_preconditions(body: dict[str, Any]) -> Answer | None:
        """National-side refusals after the shape is valid (the faults decide some)."""
        if body["nip"] in faults.unknown_nips:
            return 422, {
                **_problem("NIP_TIDAK_DITEMUKAN", f"NIP {body['nip']} tidak dikenal BKN"),
                "errors": [_field("nip", "tidak ditemukan")],
            }
        if (body["periode"]["tahun"], body["periode"]["semester"]) not in open_periods:
            return 422, _problem("PERIODE_TIDAK_ADA", "periode belum dibuka di e-Kinerja")
        if body["unit_kerja"]["npsn"] in faults.inactive_npsns:
            return 422, _problem("UNOR_TIDAK_AKTIF", "unit kerja tidak aktif")
        return None

    async def token(request: Request) -> Response:
        return await token_response(request, tokens)

    async def post_skp(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, _ = parsed

        def apply() -> Answer:
            errors = _check_skp(body)
            if errors:
                return 422, _validation(errors)
            refused = skp_preconditions(body)
            if refused is not None:
                return refused
            return store.create_skp(body, world.assessor_nips_outside_sync)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        return answer(status, out)

    async def put_skp(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, _ = parsed
        id_skp = request.path_params["id_skp"]
        header = request.headers.get("if-match")

        def apply() -> Answer:
            if header is None:
                return 428, _problem("IF_MATCH_WAJIB", "header If-Match (versi SKP) wajib")
            versi = _if_match(header)
            if versi is None:
                return 400, _problem("IF_MATCH_TIDAK_VALID", "If-Match harus versi SKP")
            if store.skp_view(id_skp) is None:
                return 404, _problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = _check_skp(body)
            if errors:
                return 422, _validation(errors)
            # nip and period cannot change, so only the unit kerja can be refused here.
            return store.replace_skp(id_skp, body, versi, faults.inactive_npsns)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        headers = {"ETag": f'"{out["versi"]}"'} if status == 200 else None
        return answer(status, out, headers)

    async def post_penilaian(request: Request) -> Response:
        parsed = await read_write(request)
        if isinstance(parsed, Response):
            return parsed
        key, body, exact = parsed
        id_skp = request.path_params["id_skp"]

        def apply() -> Answer:
            if store.skp_view(id_skp) is None:
                return 404, _problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = _check_penilaian(body, exact)
            if errors:
                return 422, _validation(errors)
            return store.create_penilaian(id_skp, body)

        status, out = store.idempotent(key, fingerprint(request, body), apply)
        return answer(status, out)

    async def list_skp(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        params = request.query_params
        numbers: dict[str, int | None] = {}
        for name in ("tahun", "semester"):
            raw = params.get(name)
            if raw is not None and not raw.isdigit():
                return answer(400, _problem("PARAMETER_TIDAK_VALID", f"{name} harus angka"))
            numbers[name] = int(raw) if raw is not None else None
        found = store.find_skps(params.get("nip"), numbers["tahun"], numbers["semester"])
        return answer(200, {"data": found})

    async def get_skp(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        found = store.skp_view(request.path_params["id_skp"])
        if found is None:
            return answer(404, _problem("SKP_TIDAK_DITEMUKAN", "SKP tidak ada"))
        return answer(200, found, {"ETag": f'"{found["versi"]}"'})

    async def get_penilaian(request: Request) -> Response:
        grant = authorize(request, READ_SCOPE)
        if isinstance(grant, Response):
            return grant
        found = store.penilaian_view(request.path_params["id_skp"])
        if found is None:
            return answer(404, _problem("PENILAIAN_TIDAK_DITEMUKAN", "penilaian tidak ada"))
        return answer(200, found)

    async def stats(request: Request) -> Response:
        return JSONResponse(store.stats())

    return Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/api/v1/skp", post_skp, methods=["POST"]),
            Route("/api/v1/skp", list_skp, methods=["GET"]),
            Route("/api/v1/skp/{id_skp}", put_skp, methods=["PUT"]),
            Route("/api/v1/skp/{id_skp}", get_skp, methods=["GET"]),
            Route("/api/v1/skp/{id_skp}/penilaian", post_penilaian, methods=["POST"]),
            Route("/api/v1/skp/{id_skp}/penilaian", get_penilaian, methods=["GET"]),
            Route("/_sandbox/stats", stats, methods=["GET"]),
            *admin_routes(faults, tokens),
        ],
        middleware=[
            Middleware(
                FaultMiddleware,
                faults=faults,
                drop_methods=frozenset({"POST", "PUT"}),
                on_request=store.count_request,
                on_fault=store.count_fault,
            )
        ],
    )
