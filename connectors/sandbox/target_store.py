"""The e-Kinerja-like target's store: SKPs, penilaian, idempotency records and counters.

:class:`TargetStore` applies writes that :mod:`connectors.sandbox.target_checks` found valid,
under one lock together with their idempotency record, so two concurrent requests with one key
cannot both create something. Its counters let tests prove exactly-once delivery.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.catalogue import target_predicate
from connectors.sandbox.target_checks import Answer, field_error, problem, validation_error

__all__ = ["IDEMPOTENCY_TTL_S", "TargetStore"]

IDEMPOTENCY_TTL_S = 7 * 24 * 3600


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
                    return 422, problem(
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
                    **problem("SKP_SUDAH_ADA", "SKP untuk pegawai dan periode ini sudah ada"),
                    "id_skp": skp.id_skp,
                    "versi": skp.versi,
                }
            penilai = body["pejabat_penilai"]["nip"]
            if penilai not in assessors_outside and (penilai, tahun, semester) not in (
                self._by_person
            ):
                return 409, problem(
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
                return 404, problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            errors = []
            if body["nip"] != skp.nip:
                errors.append(field_error("nip", "NIP SKP tidak dapat diubah"))
            if (body["periode"]["tahun"], body["periode"]["semester"]) != (
                skp.tahun,
                skp.semester,
            ):
                errors.append(field_error("periode", "periode SKP tidak dapat diubah"))
            if errors:
                return 422, validation_error(errors)
            if body["unit_kerja"]["npsn"] in inactive_npsns:
                return 422, problem("UNOR_TIDAK_AKTIF", "unit kerja tidak aktif")
            if skp.locked:
                return 409, {
                    **problem("SKP_TERKUNCI", "SKP sudah dinilai dan tidak dapat diubah"),
                    "id_skp": id_skp,
                }
            if if_match != skp.versi:
                return 412, {
                    **problem("VERSI_TIDAK_SESUAI", "versi SKP sudah berubah"),
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
                return 404, problem("SKP_TIDAK_DITEMUKAN", f"SKP {id_skp} tidak ada")
            cell = (body["rating_hasil_kerja"], body["rating_perilaku_kerja"])
            expected = target_predicate(*cell)
            if body["predikat_kinerja"] != expected:
                return 422, {
                    **problem(
                        "PREDIKAT_TIDAK_SESUAI",
                        f"predikat {body['predikat_kinerja']} tidak sesuai matriks "
                        f"({cell[0]} x {cell[1]} = {expected})",
                    ),
                    "errors": [field_error("predikat_kinerja", f"seharusnya {expected}")],
                }
            penilai = skp.body["pejabat_penilai"]["nip"]
            if body["pejabat_penilai"]["nip"] != penilai:
                return 422, validation_error(
                    [field_error("pejabat_penilai.nip", f"harus pejabat penilai SKP ({penilai})")]
                )
            tanggal = dt.date.fromisoformat(body["tanggal_penilaian"])
            if tanggal < dt.date.fromisoformat(skp.body["periode"]["tanggal_mulai"]):
                return 422, validation_error(
                    [field_error("tanggal_penilaian", "sebelum awal periode SKP")]
                )
            if id_skp in self._penilaian:
                return 409, {
                    **problem("PENILAIAN_SUDAH_ADA", "SKP ini sudah memiliki penilaian"),
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
