"""connectors.pmm.PmmClient against a respx-mocked source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import respx
import tenacity

from connectors import FatalError, PmmClient, RetriableError, TargetPaused

BASE = "https://pmm.example"
SECRET = "pmm-secret-value"
TOKEN = "pmm-token-value"
WIB = timezone(timedelta(hours=7))


def record(i: int, versi: int = 2) -> dict[str, Any]:
    return {"id": f"rec-{i}", "versi_skema": versi, "periode": "2025-1"}


def paged(pages: list[list[dict[str, Any]]]) -> Callable[[httpx.Request], httpx.Response]:
    """A side effect serving ``pages`` by cursor ``c1``, ``c2``, ...; the first has none."""

    def serve(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        index = 0 if cursor is None else int(cursor.removeprefix("c"))
        next_cursor = f"c{index + 1}" if index + 1 < len(pages) else None
        return httpx.Response(200, json={"data": pages[index], "next_cursor": next_cursor})

    return serve


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post("/oauth/token", name="token").mock(
            return_value=httpx.Response(
                200, json={"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
            )
        )
        yield mock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, timeout=5) as client:
        yield client


def make_client(http: httpx.Client, **kwargs: Any) -> PmmClient:
    return PmmClient(http, client_id="sync", client_secret=SECRET, **kwargs)


def test_periods(router: respx.MockRouter, http: httpx.Client) -> None:
    periode = {"kode": "2025-1", "tahun": 2025, "semester": 1, "status": "berjalan"}
    route = router.get("/api/v1/periode").mock(
        return_value=httpx.Response(200, json={"data": [periode]})
    )
    assert make_client(http).periods() == [periode]
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_performance_records_walks_every_page(router: respx.MockRouter, http: httpx.Client) -> None:
    pages = [[record(1), record(2)], [record(3)], [], [record(4), record(5)]]
    route = router.get("/api/v1/kinerja").mock(side_effect=paged(pages))
    client = make_client(http, page_size=2)
    records = list(client.performance_records("2025-1"))
    assert [r["id"] for r in records] == ["rec-1", "rec-2", "rec-3", "rec-4", "rec-5"]
    assert route.call_count == 4
    sent = [dict(c.request.url.params) for c in route.calls]
    assert sent == [
        {"periode": "2025-1", "limit": "2"},
        {"periode": "2025-1", "limit": "2", "cursor": "c1"},
        {"periode": "2025-1", "limit": "2", "cursor": "c2"},
        {"periode": "2025-1", "limit": "2", "cursor": "c3"},
    ]
    assert router["token"].call_count == 1  # one token for the whole walk


def test_filters_sent_on_every_page(router: respx.MockRouter, http: httpx.Client) -> None:
    route = router.get("/api/v1/kinerja").mock(side_effect=paged([[record(1)], [record(2)], []]))
    since = datetime(2025, 6, 20, 10, 0, tzinfo=WIB)
    client = make_client(http)
    assert (
        len(list(client.performance_records("2025-1", npsn="2021234X", updated_since=since))) == 2
    )
    assert route.call_count == 3
    for call in route.calls:
        params = call.request.url.params
        assert params["periode"] == "2025-1"
        assert params["npsn"] == "2021234X"
        assert params["diperbarui_sejak"] == "2025-06-20T10:00:00+07:00"
        assert params["limit"] == "500"
        # The offset's "+" must be escaped, or the server reads a space.
        assert "diperbarui_sejak=2025-06-20T10%3A00%3A00%2B07%3A00" in str(call.request.url)


def test_updated_since_keeps_microseconds_and_utc_offset(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    route = router.get("/api/v1/kinerja").mock(side_effect=paged([[]]))
    since = datetime(2025, 6, 20, 3, 0, 0, 123456, tzinfo=UTC)
    list(make_client(http).performance_records("2025-1", updated_since=since))
    assert route.calls.last.request.url.params["diperbarui_sejak"] == (
        "2025-06-20T03:00:00.123456+00:00"
    )


def test_naive_updated_since_is_refused_before_any_request(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    route = router.get("/api/v1/kinerja").mock(side_effect=paged([[]]))
    with pytest.raises(ValueError, match="timezone-aware"):
        make_client(http).performance_records("2025-1", updated_since=datetime(2025, 6, 20))
    assert route.call_count == 0
    assert router["token"].call_count == 0


def test_schools_pages_with_region(router: respx.MockRouter, http: httpx.Client) -> None:
    pages = [[{"npsn": f"2021000{i}"}] for i in range(3)]
    route = router.get("/api/v1/sekolah").mock(side_effect=paged(pages))
    schools = list(make_client(http, page_size=1).schools(region_code="020100"))
    assert [s["npsn"] for s in schools] == ["20210000", "20210001", "20210002"]
    assert [c.request.url.params.get("cursor") for c in route.calls] == [None, "c1", "c2"]
    assert all(c.request.url.params["kode_wilayah"] == "020100" for c in route.calls)
    assert all(c.request.url.params["limit"] == "1" for c in route.calls)


def test_schools_without_region_sends_no_filter(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    route = router.get("/api/v1/sekolah").mock(side_effect=paged([[{"npsn": "1"}]]))
    list(make_client(http).schools())
    assert "kode_wilayah" not in route.calls.last.request.url.params


def test_walk_is_lazy(router: respx.MockRouter, http: httpx.Client) -> None:
    route = router.get("/api/v1/kinerja").mock(
        side_effect=paged([[record(1), record(2)], [record(3)], [record(4)]])
    )
    records = make_client(http).performance_records("2025-1")
    assert route.call_count == 0
    assert next(records)["id"] == "rec-1"
    assert next(records)["id"] == "rec-2"
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("schema_version", "accept"),
    [(1, "application/json"), (2, "application/json; versi=2")],
)
def test_accept_header_per_schema_version(
    router: respx.MockRouter, http: httpx.Client, schema_version: int, accept: str
) -> None:
    route = router.get("/api/v1/kinerja").mock(side_effect=paged([[record(1, schema_version)]]))
    client = make_client(http, schema_version=schema_version)
    records = list(client.performance_records("2025-1"))
    assert records[0]["versi_skema"] == schema_version
    assert route.calls.last.request.headers["Accept"] == accept


def test_records_served_as_is_whatever_their_version(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    # Unknown versi_skema is bad data for validation to quarantine, not the client's business.
    served = [record(1, 1), record(2, 2), record(3, 99)]
    router.get("/api/v1/kinerja").mock(side_effect=paged([served]))
    assert list(make_client(http).performance_records("2025-1")) == served


def test_400_is_fatal_with_source_detail(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/kinerja").mock(
        return_value=httpx.Response(
            400, json={"error": "periode_tidak_dikenal", "detail": "periode 2031-1 tidak ada"}
        )
    )
    with pytest.raises(FatalError) as info:
        list(make_client(http).performance_records("2031-1"))
    assert info.value.status == 400
    assert info.value.code == "periode_tidak_dikenal"
    message = str(info.value)
    assert "GET /api/v1/kinerja -> 400" in message
    assert "error=periode_tidak_dikenal" in message
    assert "detail=periode 2031-1 tidak ada" in message
    assert SECRET not in message
    assert TOKEN not in message


def test_bad_cursor_midway_is_fatal(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/kinerja").mock(
        side_effect=[
            httpx.Response(200, json={"data": [record(1)], "next_cursor": "c1"}),
            httpx.Response(400, json={"error": "cursor_kedaluwarsa", "detail": "older than 24 h"}),
        ]
    )
    records = make_client(http).performance_records("2025-1")
    assert next(records)["id"] == "rec-1"
    with pytest.raises(FatalError, match="cursor_kedaluwarsa"):
        next(records)


def test_429_is_retriable_with_retry_after(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/kinerja").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "2"})
    )
    with pytest.raises(RetriableError) as info:
        list(make_client(http).performance_records("2025-1"))
    assert info.value.retry_after_s == 2.0
    assert not isinstance(info.value, FatalError)


def test_503_with_retry_after_is_paused(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/periode").mock(
        return_value=httpx.Response(503, headers={"Retry-After": "60"})
    )
    with pytest.raises(TargetPaused):
        make_client(http).periods()


def test_call_wrapper_retries_only_the_failed_page(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    serve = paged([[record(1)], [record(2)], [record(3)]])
    failures = {"c1": 2}  # page 2 fails twice: a dropped connection, then a 500

    def flaky(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        if cursor in failures and failures[cursor] > 0:
            failures[cursor] -= 1
            if failures[cursor] == 1:
                raise httpx.RemoteProtocolError("Server disconnected", request=request)
            return httpx.Response(500)
        return serve(request)

    route = router.get("/api/v1/kinerja").mock(side_effect=flaky)
    attempts: list[int] = []

    def call(request: Any) -> httpx.Response:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RetriableError),
            stop=tenacity.stop_after_attempt(4),
            wait=tenacity.wait_none(),
            reraise=True,
        )
        response = retrying(request)
        assert isinstance(response, httpx.Response)
        attempts.append(retrying.statistics["attempt_number"])
        return response

    records = list(make_client(http, call=call).performance_records("2025-1"))
    assert [r["id"] for r in records] == ["rec-1", "rec-2", "rec-3"]
    assert attempts == [1, 3, 1]
    assert [c.request.url.params.get("cursor") for c in route.calls] == [
        None,
        "c1",
        "c1",
        "c1",
        "c2",
    ]


def test_timeout_is_retriable(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/sekolah").mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(RetriableError) as info:
        list(make_client(http).schools())
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_repeated_cursor_is_fatal(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/kinerja").mock(
        return_value=httpx.Response(200, json={"data": [record(1)], "next_cursor": "same"})
    )
    with pytest.raises(FatalError, match="next_cursor"):
        list(make_client(http).performance_records("2025-1"))


@pytest.mark.parametrize(
    "body", [{"data": {"id": "x"}, "next_cursor": None}, {"data": ["x"]}, {"items": []}]
)
def test_malformed_page_is_fatal(
    router: respx.MockRouter, http: httpx.Client, body: dict[str, Any]
) -> None:
    router.get("/api/v1/kinerja").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(FatalError, match="'data'"):
        list(make_client(http).performance_records("2025-1"))


def test_token_refused_is_auth_error_without_secret(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router["token"].mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
    with pytest.raises(FatalError) as info:
        make_client(http).periods()
    assert str(info.value).startswith(
        f"client credentials refused by {BASE} (error=invalid_client)"
    )
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_repr_hides_secret(router: respx.MockRouter, http: httpx.Client) -> None:
    router.get("/api/v1/periode").mock(return_value=httpx.Response(200, json={"data": []}))
    client = make_client(http)
    client.periods()
    assert "client_id='sync'" in repr(client)
    assert SECRET not in repr(client)
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(
    "kwargs", [{"schema_version": 3}, {"page_size": 0}, {"page_size": 1001}, {"client_secret": ""}]
)
def test_bad_settings_are_refused(http: httpx.Client, kwargs: dict[str, Any]) -> None:
    settings: dict[str, Any] = {"client_id": "sync", "client_secret": SECRET, **kwargs}
    with pytest.raises(ValueError):  # noqa: PT011 - the message differs per setting
        PmmClient(http, **settings)
