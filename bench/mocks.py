"""In-process stand-ins for both APIs, as ``httpx.MockTransport`` handlers.

``PmmMock`` serves just enough of the PMM contract (token, ``/api/v1/sekolah``,
``/api/v1/kinerja`` paged by cursor, filtered by ``npsn`` and ``diperbarui_sejak``) over a
:class:`bench.world.LeanWorld`, generating each page when it is asked for. ``TargetMock``
answers every write of the e-Kinerja contract with success (201 with ``id_skp``/``versi``, 201
for a penilaian, 200 for a PUT) and counts the requests; it checks nothing, so what is measured
is the engine, not the target. ``FreeTarget`` answers with fixed bytes, without reading the
request: what a request costs the client alone (the ceiling figures of (d)).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from typing import Any, ClassVar

import httpx

from bench.world import LeanWorld

__all__ = ["FreeTarget", "PmmMock", "TargetMock", "token_answer"]


def token_answer() -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600}
    )


class PmmMock:
    """The source. ``requests`` counts the API requests (token excluded)."""

    def __init__(self, world: LeanWorld) -> None:
        self.world = world
        self.requests = 0
        self._lock = threading.Lock()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return token_answer()
        with self._lock:
            self.requests += 1
        params = request.url.params
        limit = int(params.get("limit", "100"))
        start = int(params.get("cursor") or 0)
        if path == "/api/v1/sekolah":
            stop = min(self.world.n_schools, start + limit)
            data = [self.world.school(s) for s in range(start, stop)]
            more = stop < self.world.n_schools
            return httpx.Response(
                200, json={"data": data, "next_cursor": str(stop) if more else None}
            )
        if path == "/api/v1/periode":
            kode = self.world.period
            year, _, semester = kode.partition("-")
            first, last = {"1": ("01-01", "06-30"), "2": ("07-01", "12-31")}.get(
                semester, ("01-01", "12-31")
            )
            periode = {
                "kode": kode,
                "jenis": "semester" if semester else "tahunan",
                "tahun": int(year),
                "semester": int(semester) if semester else None,
                "tanggal_mulai": f"{year}-{first}",
                "tanggal_selesai": f"{year}-{last}",
                "batas_penilaian": None,
                "status": "berjalan",
            }
            return httpx.Response(200, json={"data": [periode]})
        if path == "/api/v1/kinerja":
            if params.get("periode") != self.world.period:
                return httpx.Response(400, json={"error": "unknown_periode", "detail": "?"})
            npsn = params.get("npsn")
            indexes = (
                self.world.school_range(self.world.school_index(npsn))
                if npsn
                else range(self.world.n)
            )
            since = params.get("diperbarui_sejak")
            if since is not None:
                first = self.world.first_index_since(dt.datetime.fromisoformat(since))
                indexes = range(max(indexes.start, first), indexes.stop)
            begin = max(indexes.start, start)
            stop = min(indexes.stop, begin + limit)
            data = [self.world.record(i) for i in range(begin, stop)]
            more = stop < indexes.stop
            return httpx.Response(
                200,
                json={"data": data, "next_cursor": str(stop) if more else None},
                headers={"X-Versi-Skema": "2"},
            )
        return httpx.Response(404, json={"error": "not_found", "detail": path})


class TargetMock:
    """The target: every write succeeds. ``counts`` by kind: skp_create, skp_update, penilaian."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return token_answer()
        body: Any = json.loads(request.content) if request.content else {}
        if request.method == "POST" and path == "/api/v1/skp":
            with self._lock:
                self.counts["skp_create"] += 1
            return httpx.Response(
                201, json={"id_skp": f"SKP-{body['nip']}", "status": "diterima", "versi": 1}
            )
        if request.method == "PUT" and path.startswith("/api/v1/skp/"):
            with self._lock:
                self.counts["skp_update"] += 1
            versi = int(request.headers.get("If-Match", "1")) + 1
            return httpx.Response(
                200, json={"id_skp": path.rsplit("/", 1)[1], "status": "diterima", "versi": versi}
            )
        if request.method == "POST" and path.endswith("/penilaian"):
            with self._lock:
                self.counts["penilaian"] += 1
            id_skp = path.split("/")[4]
            return httpx.Response(201, json={"id_penilaian": "PNL-" + id_skp, "status": "final"})
        with self._lock:
            self.counts["other"] += 1
        return httpx.Response(404, json={"kode": "TIDAK_ADA", "pesan": path})


class FreeTarget:
    """A target that costs (next to) nothing: fixed answers, the request not read, not counted
    by kind. What a request costs the client alone, without the target's work."""

    _ANSWERS: ClassVar[dict[str, tuple[int, bytes]]] = {
        "POST": (201, b'{"id_skp":"SKP-0","status":"diterima","versi":1}'),
        "PUT": (200, b'{"id_skp":"SKP-0","status":"diterima","versi":2}'),
        "penilaian": (201, b'{"id_penilaian":"PNL-0","status":"final"}'),
    }
    _HEADERS = ((b"Content-Type", b"application/json"),)

    def __init__(self) -> None:
        self.requests = 0  # the client is sequential: no lock needed

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth/token":
            return token_answer()
        self.requests += 1
        kind = "penilaian" if path.endswith("/penilaian") else request.method
        status, content = self._ANSWERS[kind]
        return httpx.Response(status, headers=list(self._HEADERS), content=content)
