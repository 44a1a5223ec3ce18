"""The mutable source store: what the PMM-like sandbox serves, and its paging.

:class:`SandboxWorld` holds the periods, the schools and the latest version of every
``Kinerja`` record (see :mod:`connectors.sandbox.generator` for how a seeded one is made).

Records are kept in the schema version 2 wire shape; :meth:`SandboxWorld.as_version` gives the
version 1 shape. A stored record is never mutated in place: an update stores a new dict, and its
``diperbarui_pada`` moves strictly past every earlier timestamp in the world (a logical clock).
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "WIB",
    "Defect",
    "SandboxWorld",
    "format_instant",
    "new_id",
    "parse_instant",
    "to_v1",
    "to_v2",
]

WIB = dt.timezone(dt.timedelta(hours=7))


@dataclass(frozen=True)
class Defect:
    """A record deliberately broken in the synthetic data."""

    source_id: str
    nip: str
    npsn: str
    kind: Literal["bad_nip", "wrong_indicator_family", "predicate_mismatch"]
    description: str


def format_instant(moment: dt.datetime) -> str:
    return moment.astimezone(WIB).isoformat(timespec="seconds")


def parse_instant(text: str) -> dt.datetime:
    """An RFC 3339 timestamp with offset; ``ValueError`` without an offset."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp without an offset: {text!r}")
    return moment


def _sort_key(record: dict[str, Any]) -> tuple[dt.datetime, str]:
    return parse_instant(record["diperbarui_pada"]), str(record["id"])


def _tmt(pegawai: dict[str, Any]) -> dict[str, Any]:
    """``tmt_jabatan`` as the record has it: absent stays absent (both versions carry it)."""
    return {"tmt_jabatan": pegawai["tmt_jabatan"]} if "tmt_jabatan" in pegawai else {}


def to_v1(record: dict[str, Any]) -> dict[str, Any]:
    """The schema version 1 wire dict of a version 2 record (a new dict)."""
    pegawai = record["pegawai"]
    indikator = record["perencanaan"]["indikator"]
    penilaian = record["penilaian"]
    hasil = penilaian["hasil"]
    return {
        "id": record["id"],
        "versi_skema": 1,
        "periode": record["periode"],
        "pegawai": {
            "nip": pegawai["nip"],
            "nuptk": pegawai["nuptk"],
            "nama": pegawai["nama"],
            "peran": pegawai["jenis_ptk"],
            "status_kepegawaian": pegawai["status_kepegawaian"],
            "jabatan": pegawai["jabatan"],
            "jenjang_jabatan": pegawai["jenjang_jabatan"],
            **_tmt(pegawai),
        },
        "sekolah": dict(record["sekolah"]),
        "penilai": dict(record["penilai"]),
        "perencanaan": {
            "indikator": dict(indikator[0]) if indikator else None,
            "disetujui_pada": record["perencanaan"]["disetujui_pada"],
        },
        "pelaksanaan": copy.deepcopy(record["pelaksanaan"]),
        "penilaian": {
            "status": penilaian["status"],
            "rating_hasil_kerja": hasil["rating_hasil_kerja"],
            "rating_perilaku": hasil["rating_perilaku"],
            "predikat": hasil["predikat"],
            "difinalkan_pada": penilaian["difinalkan_pada"],
        },
        "dibatalkan": record["dibatalkan"],
        "diperbarui_pada": record["diperbarui_pada"],
    }


def to_v2(record: dict[str, Any]) -> dict[str, Any]:
    """The schema version 2 wire dict of a version 1 record (a new dict)."""
    pegawai = record["pegawai"]
    indikator = record["perencanaan"]["indikator"]
    penilaian = record["penilaian"]
    return {
        "id": record["id"],
        "versi_skema": 2,
        "periode": record["periode"],
        "pegawai": {
            "nip": pegawai["nip"],
            "nuptk": pegawai["nuptk"],
            "nama": pegawai["nama"],
            "jenis_ptk": pegawai["peran"],
            "status_kepegawaian": pegawai["status_kepegawaian"],
            "jabatan": pegawai["jabatan"],
            "jenjang_jabatan": pegawai["jenjang_jabatan"],
            **_tmt(pegawai),
        },
        "sekolah": dict(record["sekolah"]),
        "penilai": dict(record["penilai"]),
        "perencanaan": {
            "indikator": [dict(indikator)] if indikator else [],
            "disetujui_pada": record["perencanaan"]["disetujui_pada"],
        },
        "pelaksanaan": copy.deepcopy(record["pelaksanaan"]),
        "penilaian": {
            "status": penilaian["status"],
            "hasil": {
                "rating_hasil_kerja": penilaian["rating_hasil_kerja"],
                "rating_perilaku": penilaian["rating_perilaku"],
                "predikat": penilaian["predikat"],
            },
            "difinalkan_pada": penilaian["difinalkan_pada"],
        },
        "dibatalkan": record["dibatalkan"],
        "diperbarui_pada": record["diperbarui_pada"],
    }


class SandboxWorld:
    """The source's data: periods, schools, and the latest version of every ``Kinerja``.

    Thread-safe: the source server reads it while a test changes records.
    """

    def __init__(
        self,
        *,
        periods: list[dict[str, Any]],
        schools: list[dict[str, Any]],
        records: Iterable[dict[str, Any]],
        defects: list[Defect],
        assessor_nips_outside_sync: set[str],
        schema_version: int = 1,
        seed: int = 0,
    ) -> None:
        self.periods = periods
        self.schools = schools
        self.defects = defects
        self.assessor_nips_outside_sync = assessor_nips_outside_sync
        self.schema_version = schema_version
        """2: the source serves only schema version 2 (a deployment that dropped v1)."""
        self._lock = threading.RLock()
        self._rng = random.Random(seed * 7919 + 17)
        self._records: dict[str, dict[str, Any]] = {}
        self._index: dict[str, list[tuple[dt.datetime, str]]] = {p["kode"]: [] for p in periods}
        self._clock = dt.datetime(1970, 1, 1, tzinfo=WIB)
        for record in records:
            self._insert(copy.deepcopy(record))

    # -- reading -------------------------------------------------------------------------
    def records(self, period: str | None = None) -> list[dict[str, Any]]:
        """The latest version of every record (v2 wire dicts, copies), by (diperbarui_pada, id)."""
        with self._lock:
            kodes = [period] if period is not None else [p["kode"] for p in self.periods]
            keys = sorted(key for kode in kodes for key in self._index.get(kode, []))
            return [copy.deepcopy(self._records[key[1]]) for key in keys]

    def record(self, source_id: str) -> dict[str, Any]:
        """One record (v2 wire dict, a copy); ``KeyError`` if unknown."""
        with self._lock:
            return copy.deepcopy(self._records[source_id])

    def has_period(self, kode: str) -> bool:
        return kode in self._index

    def page(
        self,
        period: str,
        *,
        npsn: str | None = None,
        since: dt.datetime | None = None,
        after: tuple[dt.datetime, str] | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], tuple[dt.datetime, str] | None]:
        """One page by (diperbarui_pada, id), strictly after ``after``.

        Returns the stored records (do not mutate them) and the position to continue from, or
        None when nothing follows.
        """
        with self._lock:
            keys = self._index[period]
            start = 0
            if after is not None:
                start = bisect.bisect_right(keys, after)
            if since is not None:
                start = max(start, bisect.bisect_left(keys, (since, "")))
            found: list[tuple[tuple[dt.datetime, str], dict[str, Any]]] = []
            for i in range(start, len(keys)):
                record = self._records[keys[i][1]]
                if npsn is not None and record["sekolah"]["npsn"] != npsn:
                    continue
                found.append((keys[i], record))
                if len(found) > limit:
                    break
            if len(found) > limit:
                return [r for _, r in found[:limit]], found[limit - 1][0]
            return [r for _, r in found], None

    @staticmethod
    def as_version(record: dict[str, Any], versi: int) -> dict[str, Any]:
        """The wire dict of ``record`` (either version) in schema version ``versi`` (1 or 2)."""
        current = record.get("versi_skema")
        if versi == current:
            return copy.deepcopy(record)
        if versi == 1 and current == 2:
            return to_v1(record)
        if versi == 2 and current == 1:
            return to_v2(record)
        raise ValueError(f"cannot convert versi_skema {current!r} to {versi!r}")

    # -- changing ------------------------------------------------------------------------
    def update_record(
        self, source_id: str, mutate: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Change one record; its ``diperbarui_pada`` moves past every earlier timestamp.

        ``mutate`` gets a copy of the v2 wire dict to change in place. A record that becomes
        ``final`` without ``difinalkan_pada`` gets the new timestamp there too.
        """
        with self._lock:
            current = self._records[source_id]
            draft = copy.deepcopy(current)
            mutate(draft)
            if draft.get("id") != source_id or draft.get("periode") != current["periode"]:
                raise ValueError("an update cannot change a record's id or periode")
            draft["versi_skema"] = 2
            stamp = self._tick()
            draft["diperbarui_pada"] = stamp
            penilaian = draft.get("penilaian")
            if (
                isinstance(penilaian, dict)
                and penilaian.get("status") == "final"
                and penilaian.get("difinalkan_pada") is None
            ):
                penilaian["difinalkan_pada"] = stamp
            self._remove(source_id)
            self._insert(draft)
            return copy.deepcopy(draft)

    def add_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add a record (v1 or v2 wire dict; an ``id`` is made if missing), stamped now."""
        with self._lock:
            draft = to_v2(record) if record.get("versi_skema") == 1 else copy.deepcopy(record)
            if draft.get("versi_skema") != 2:
                raise ValueError("a record has versi_skema 1 or 2")
            if not self.has_period(str(draft.get("periode"))):
                raise ValueError(f"unknown periode {draft.get('periode')!r}")
            if not draft.get("id"):
                draft["id"] = new_id(self._rng)
            if draft["id"] in self._records:
                raise ValueError(f"record {draft['id']!r} exists already")
            draft["diperbarui_pada"] = self._tick()
            self._insert(draft)
            return copy.deepcopy(draft)

    def _tick(self) -> str:
        self._clock = self._clock + dt.timedelta(seconds=1)
        return format_instant(self._clock)

    def _insert(self, record: dict[str, Any]) -> None:
        key = _sort_key(record)
        self._records[key[1]] = record
        bisect.insort(self._index[record["periode"]], key)
        self._clock = max(self._clock, key[0])

    def _remove(self, source_id: str) -> None:
        record = self._records.pop(source_id)
        keys = self._index[record["periode"]]
        key = _sort_key(record)
        keys.pop(bisect.bisect_left(keys, key))


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
