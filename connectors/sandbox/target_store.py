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
from connectors.sandbox.target_checks import (
    Answer,
    check_skp,
    field_error,
    problem,
    skp_period,
    validation_error,
)

__all__ = ["IDEMPOTENCY_TTL_S", "SkpRefused", "TargetStore"]

IDEMPOTENCY_TTL_S = 7 * 24 * 3600


_PeriodKey = tuple[int, str, int | None]  # (tahun, jenis, semester)


def _period_name(period: _PeriodKey) -> str:
    """The period's kode: ``2026`` for a year, ``2025-1`` for a semester."""
    tahun, _, semester = period
    return f"{tahun}" if semester is None else f"{tahun}-{semester}"


@dataclass
class _Skp:
    id_skp: str
    nip: str
    tahun: int
    jenis: str
    semester: int | None
    versi: int
    body: dict[str, Any]
    locked: bool = False
    by_hand: bool = False

    @property
    def period(self) -> _PeriodKey:
        return self.tahun, self.jenis, self.semester


class SkpRefused(ValueError):
    """:meth:`TargetStore.create_skp_by_hand` refused the SKP: ``status`` and error ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body.get('kode')}: {body.get('pesan')}")
        self.status = status
        self.body = body


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
        self._by_person: dict[tuple[str, _PeriodKey], str] = {}
        self._penilaian: dict[str, _Penilaian] = {}
        self._keys: dict[str, _Idempotent] = {}
        self._answer_s = 0.0  # summed over the API requests answered
        self._counts = {
            "skp_created": 0,
            "skp_updated": 0,
            "skp_by_hand": 0,
            "penilaian_created": 0,
            "replayed": 0,
            "rejected": 0,
            "requests": 0,
        }
        self._faulted: dict[str, int] = {}
        self._creates: dict[str, dict[str, int]] = {"skp": {}, "penilaian": {}}

    # -- reading -------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters: creates, updates, replays, 4xx answers, API requests, faults injected;
        ``answer_s``: the seconds the API requests took from their arrival to their answer.

        ``creates`` counts the API's creates per ``"<nip>/<period kode>"``; SKPs made by hand
        count only under ``skp_by_hand``.
        """
        with self._lock:
            return {
                **self._counts,
                "answer_s": self._answer_s,
                "creates": copy.deepcopy(self._creates),
                "faults": dict(self._faulted),
            }

    def skps(self) -> list[dict[str, Any]]:
        """Every stored SKP: ``id_skp``, ``nip``, ``tahun``, ``jenis``, ``semester`` (None for
        ``tahunan``), ``versi``, ``body``, ``locked`` (a penilaian exists) and ``by_hand``."""
        with self._lock:
            return [
                {
                    "id_skp": s.id_skp,
                    "nip": s.nip,
                    "tahun": s.tahun,
                    "jenis": s.jenis,
                    "semester": s.semester,
                    "versi": s.versi,
                    "body": copy.deepcopy(s.body),
                    "locked": s.locked,
                    "by_hand": s.by_hand,
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

    def has_skp(
        self, nip: str, tahun: int, semester: int | None = None, jenis: str | None = None
    ) -> bool:
        """Whether ``nip`` has an SKP for the period; ``jenis`` defaults to ``semester`` when a
        semester is given, else ``tahunan``."""
        if jenis is None:
            jenis = "tahunan" if semester is None else "semester"
        with self._lock:
            return (nip, (tahun, jenis, semester)) in self._by_person

    # -- counting (used by the app) ------------------------------------------------------
    def count_request(self) -> None:
        with self._lock:
            self._counts["requests"] += 1

    def time_answer(self, seconds: float) -> None:
        """An API request was answered ``seconds`` after it reached the app (``answer_s``:
        what a benchmark tells the server's share of an answer's time by)."""
        with self._lock:
            self._answer_s += seconds

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
        """Store a checked SKP body sent by the API (the caller handles idempotency)."""
        with self._lock:
            period = skp_period(body["periode"])
            refused = self._duplicate(body["nip"], period)
            if refused is not None:
                return refused
            penilai = body["pejabat_penilai"]["nip"]
            if penilai not in assessors_outside and (penilai, period) not in self._by_person:
                return 409, problem(
                    "PENILAI_BELUM_ADA_SKP",
                    f"pejabat penilai {penilai} belum memiliki SKP periode {_period_name(period)}",
                )
            skp = self._store(body, by_hand=False)
            self._counts["skp_created"] += 1
            person = f"{skp.nip}/{_period_name(period)}"
            self._creates["skp"][person] = self._creates["skp"].get(person, 0) + 1
            return 201, {"id_skp": skp.id_skp, "status": "diterima", "versi": 1}

    def create_skp_by_hand(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store an SKP as a person in e-Kinerja's own pages would make it: no idempotency key,
        no ``sumber`` needed, no check that the penilai has an SKP or that the period is open.

        Returns ``{"id_skp", "status", "versi"}``; raises :class:`SkpRefused` with ``422
        VALIDASI`` for a wrong body and ``409 SKP_SUDAH_ADA`` when the person has an SKP for
        the period already. Counted under ``skp_by_hand`` only, never as the API's create.
        """
        errors = check_skp(body, by_hand=True)
        if errors:
            raise SkpRefused(422, validation_error(errors))
        with self._lock:
            refused = self._duplicate(body["nip"], skp_period(body["periode"]))
            if refused is not None:
                raise SkpRefused(*refused)
            skp = self._store(body, by_hand=True)
            self._counts["skp_by_hand"] += 1
            return {"id_skp": skp.id_skp, "status": "diterima", "versi": 1}

    def _duplicate(self, nip: str, period: _PeriodKey) -> Answer | None:
        existing = self._by_person.get((nip, period))
        if existing is None:
            return None
        skp = self._skps[existing]
        return 409, {
            **problem("SKP_SUDAH_ADA", "SKP untuk pegawai dan periode ini sudah ada"),
            "id_skp": skp.id_skp,
            "versi": skp.versi,
        }

    def _store(self, body: dict[str, Any], *, by_hand: bool) -> _Skp:
        nip = body["nip"]
        tahun, jenis, semester = period = skp_period(body["periode"])
        # SKP-<tahun>-<nip> for a year, SKP-<tahun>-<semester>-<nip> for a semester.
        id_skp = f"SKP-{_period_name(period)}-{nip}"
        skp = _Skp(id_skp, nip, tahun, jenis, semester, 1, copy.deepcopy(body), by_hand=by_hand)
        self._skps[id_skp] = skp
        self._by_person[(nip, period)] = id_skp
        return skp

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
            if skp_period(body["periode"]) != skp.period:
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
            id_penilaian = f"PNL-{_period_name(skp.period)}-{skp.nip}"
            self._penilaian[id_skp] = _Penilaian(id_skp, id_penilaian, copy.deepcopy(body))
            skp.locked = True
            self._counts["penilaian_created"] += 1
            person = f"{skp.nip}/{_period_name(skp.period)}"
            self._creates["penilaian"][person] = self._creates["penilaian"].get(person, 0) + 1
            return 201, {"id_penilaian": id_penilaian, "status": "final"}

    def skp_view(self, id_skp: str) -> dict[str, Any] | None:
        with self._lock:
            skp = self._skps.get(id_skp)
            return None if skp is None else _view(skp)

    def find_skps(
        self,
        nip: str | None,
        tahun: int | None,
        semester: int | None,
        jenis: str | None = None,
    ) -> list[dict[str, Any]]:
        """SKP views matching every filter given (None: any)."""
        with self._lock:
            return [
                _view(s)
                for s in self._skps.values()
                if (nip is None or s.nip == nip)
                and (tahun is None or s.tahun == tahun)
                and (jenis is None or s.jenis == jenis)
                and (semester is None or s.semester == semester)
            ]

    def school_skps(
        self,
        npsn: str,
        tahun: int,
        jenis: str,
        semester: int | None,
        *,
        after: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the period's SKPs whose unit kerja is ``npsn``, by ``id_skp``, strictly
        after ``after``; and the ``id_skp`` to continue after, or None when nothing follows."""
        period = (tahun, jenis, semester)
        with self._lock:
            found = sorted(
                (
                    s
                    for s in self._skps.values()
                    if s.period == period
                    and s.body["unit_kerja"]["npsn"] == npsn
                    and (after is None or s.id_skp > after)
                ),
                key=lambda s: s.id_skp,
            )
            page = [_view(s) for s in found[:limit]]
            return page, (found[limit - 1].id_skp if len(found) > limit else None)

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
