"""The client for the PMM-like source API (docs/apis.md, the "Source: ..." sections; the
sandbox connectors/sandbox/pmm_app.py serves the same)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from connectors._auth import ClientCredentialsAuth
from connectors._http import Call, call_once, data_list, json_object, send
from connectors._pagination import paginate
from connectors.errors import FatalError, RecordRejected

__all__ = ["PmmClient"]

_ACCEPT = {1: "application/json", 2: "application/json; versi=2"}
_MAX_PAGE_SIZE = 1000


class PmmClient:
    """Reads periods, schools and performance records (Kinerja) from the source.

    ``http`` carries the base URL and timeouts; this client never builds one. ``call``
    wraps each single request (one page), e.g. a tenacity ``Retrying``; paged walks are
    lazy iterators that ask for the next page only when the previous one is consumed.
    Any 4xx other than 401/403/408/429 means our request is wrong (there is no record to
    quarantine), so it is raised as a ``FatalError`` carrying the source's error/detail.
    Safe to share between threads.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        client_id: str,
        client_secret: str,
        schema_version: int = 2,
        page_size: int = 500,
        call: Call | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if schema_version not in _ACCEPT:
            raise ValueError(
                f"schema_version must be one of {sorted(_ACCEPT)}, not {schema_version!r}"
            )
        if not 1 <= page_size <= _MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{_MAX_PAGE_SIZE}, not {page_size!r}")
        self._http = http
        self._auth = ClientCredentialsAuth(
            http.base_url, client_id=client_id, client_secret=client_secret, clock=clock
        )
        self._call: Call = call or call_once
        self._headers = {"Accept": _ACCEPT[schema_version]}
        self.schema_version = schema_version
        self.page_size = page_size

    def __repr__(self) -> str:
        return (
            f"PmmClient({self._auth!r}, schema_version={self.schema_version}, "
            f"page_size={self.page_size})"
        )

    def periods(self) -> list[dict[str, Any]]:
        """Every ``Periode`` the source knows (not paged)."""
        path = "/api/v1/periode"
        return data_list(self._get(path, {}), "GET", path)

    def schools(self, *, region_code: str | None = None) -> Iterator[dict[str, Any]]:
        """Every school (optionally of one ``kode_wilayah``), page after page."""
        params = {"kode_wilayah": region_code} if region_code is not None else {}
        return self._walk("/api/v1/sekolah", params)

    def performance_records(
        self, period: str, *, npsn: str | None = None, updated_since: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Raw ``Kinerja`` dicts of ``period`` as served (v1 or v2), page after page.

        ``updated_since`` (tz-aware) includes records updated at exactly that instant. A
        record that changes during the walk is served again later with its new content.
        """
        if not period:
            raise ValueError("period is empty")
        params: dict[str, str] = {"periode": period}
        if npsn is not None:
            params["npsn"] = npsn
        if updated_since is not None:
            if updated_since.tzinfo is None or updated_since.utcoffset() is None:
                raise ValueError("updated_since must be timezone-aware")
            params["diperbarui_sejak"] = updated_since.isoformat()
        return self._walk("/api/v1/kinerja", params)

    def _walk(self, path: str, filters: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        yield from paginate(
            lambda params: self._get(path, params),
            path,
            filters,
            page_size=self.page_size,
            server="the source",
        )

    def _get(self, path: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        try:
            response = send(
                self._http,
                "GET",
                path,
                auth=self._auth,
                call=self._call,
                params=params,
                headers=self._headers,
            )
        except RecordRejected as exc:
            raise FatalError(
                f"the source refused our request: {exc.message}",
                status=exc.status,
                answer=exc.answer,
                retry_after_s=exc.retry_after_s,
            ) from exc
        return json_object(response, "GET", path)
