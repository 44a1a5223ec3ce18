"""connectors._http (status and exception classification, Retry-After) and connectors._auth."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import tenacity

from connectors import _http
from connectors._auth import ClientCredentialsAuth
from connectors.errors import (
    AuthError,
    Conflict,
    FatalError,
    PreconditionFailed,
    RecordRejected,
    RetriableError,
    SyncError,
    TargetPaused,
    Unreachable,
)

BASE = "https://api.example"
SECRET = "s3cr3t-do-not-leak"
TOKEN = "tok-abc-123-very-secret"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_answer(token: str = TOKEN, expires_in: Any = 3600) -> httpx.Response:
    return httpx.Response(
        200, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    )


def make_response(
    status: int, *, json: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("PUT", f"{BASE}/api/v1/skp/X")
    if json is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=json, headers=headers, request=request)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, timeout=5) as client:
        yield client


def make_auth(clock: FakeClock | None = None, scope: str | None = None) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        BASE,
        client_id="cid",
        client_secret=SECRET,
        scope=scope,
        clock=clock or FakeClock(),
    )


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), repr(getattr(exc, "answer", {}))):
        assert SECRET not in text
        assert TOKEN not in text


# --- status classification --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, AuthError),
        (403, AuthError),
        (408, RetriableError),
        (429, RetriableError),
        (500, RetriableError),
        (502, RetriableError),
        (504, RetriableError),
        (503, RetriableError),
        (507, RetriableError),
        (409, Conflict),
        (412, PreconditionFailed),
        (400, RecordRejected),
        (404, RecordRejected),
        (422, RecordRejected),
        (428, RecordRejected),
        (501, FatalError),
        (302, FatalError),
    ],
)
def test_status_classes(status: int, expected: type[SyncError]) -> None:
    answer = {"kode": "SOME_CODE", "pesan": "something went wrong"}
    with pytest.raises(SyncError) as info:
        _http.check(make_response(status, json=answer), "PUT", "/api/v1/skp/X")
    assert type(info.value) is expected
    assert info.value.status == status
    assert info.value.answer == answer
    assert info.value.retry_after_s is None
    message = str(info.value)
    assert "PUT /api/v1/skp/X" in message
    assert str(status) in message
    assert "kode=SOME_CODE" in message
    assert "pesan=something went wrong" in message


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_is_returned_unchanged(status: int) -> None:
    response = make_response(status)
    assert _http.check(response, "PUT", "/x") is response


def test_503_with_retry_after_is_target_paused() -> None:
    response = make_response(503, json={"kode": "PEMELIHARAAN"}, headers={"Retry-After": "300"})
    with pytest.raises(TargetPaused) as info:
        _http.check(response, "POST", "/api/v1/skp")
    assert info.value.retry_after_s == 300.0
    assert isinstance(info.value, RetriableError)


def test_412_carries_current_versi() -> None:
    response = make_response(412, json={"kode": "VERSI_USANG", "versi": 4})
    with pytest.raises(PreconditionFailed) as info:
        _http.check(response, "PUT", "/api/v1/skp/X")
    assert info.value.answer["versi"] == 4
    assert "versi=4" in str(info.value)


def test_409_code_and_message() -> None:
    response = make_response(409, json={"kode": "SKP_SUDAH_ADA", "id_skp": "SKP-1", "versi": 2})
    with pytest.raises(Conflict) as info:
        _http.check(response, "POST", "/api/v1/skp")
    assert info.value.code == "SKP_SUDAH_ADA"
    assert "id_skp=SKP-1" in str(info.value)


def test_source_error_detail_in_message() -> None:
    response = make_response(400, json={"error": "bad_cursor", "detail": "cursor expired"})
    with pytest.raises(RecordRejected, match=r"error=bad_cursor, detail=cursor expired"):
        _http.check(response, "GET", "/api/v1/kinerja")


def test_field_errors_in_message() -> None:
    answer = {
        "kode": "VALIDASI",
        "pesan": "tidak valid",
        "errors": [{"field": f"f{i}", "pesan": f"p{i}"} for i in range(5)],
    }
    with pytest.raises(RecordRejected) as info:
        _http.check(make_response(422, json=answer), "POST", "/api/v1/skp")
    message = str(info.value)
    assert "f0: p0; f1: p1; f2: p2" in message
    assert "f3" not in message
    assert "(+2 more)" in message


def test_non_json_error_body_gives_empty_answer() -> None:
    request = httpx.Request("GET", f"{BASE}/x")
    response = httpx.Response(502, text="<html>Bad gateway</html>", request=request)
    with pytest.raises(RetriableError) as info:
        _http.check(response, "GET", "/x")
    assert info.value.answer == {}
    assert str(info.value) == "GET /x -> 502 Bad Gateway"


# --- Retry-After ------------------------------------------------------------------------


def test_retry_after_seconds_on_429() -> None:
    response = make_response(429, json={}, headers={"Retry-After": "7"})
    with pytest.raises(RetriableError) as info:
        _http.check(response, "GET", "/x")
    assert type(info.value) is RetriableError
    assert info.value.retry_after_s == 7.0


def test_retry_after_http_date_against_the_date_header() -> None:
    headers = {
        "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
        "Retry-After": "Wed, 21 Oct 2026 07:30:00 GMT",
    }
    response = make_response(429, json={}, headers=headers)
    # The local clock is far off: the server's own Date is the reference.
    with pytest.raises(RetriableError) as info:
        _http.check(response, "GET", "/x", now=lambda: datetime(2000, 1, 1, tzinfo=UTC))
    assert info.value.retry_after_s == 120.0


def test_retry_after_http_date_without_date_header_uses_now() -> None:
    response = make_response(503, json={}, headers={"Retry-After": "Wed, 21 Oct 2026 07:30:00 GMT"})
    with pytest.raises(TargetPaused) as info:
        _http.check(
            response, "GET", "/x", now=lambda: datetime(2026, 10, 21, 7, 29, 15, tzinfo=UTC)
        )
    assert info.value.retry_after_s == 45.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("Wed, 21 Oct 2026 07:00:00 GMT", 0.0),  # in the past: go now
        ("Wed, 21 Oct 2026 08:00:00 -0000", 1800.0),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    reference = datetime(2026, 10, 21, 7, 30, tzinfo=UTC)
    assert _http.parse_retry_after(value, reference=reference) == expected


def test_unreadable_retry_after_on_503_is_plain_retriable() -> None:
    response = make_response(503, json={}, headers={"Retry-After": "later"})
    with pytest.raises(RetriableError) as info:
        _http.check(response, "GET", "/x")
    assert type(info.value) is RetriableError
    assert info.value.retry_after_s is None


# --- exceptions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "error_type"),
    [
        (httpx.ConnectTimeout("connect timed out"), Unreachable),
        (httpx.ReadTimeout("read timed out"), Unreachable),
        (httpx.PoolTimeout("pool"), RetriableError),
        (httpx.ConnectError("[Errno 111] Connection refused"), Unreachable),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            RetriableError,
        ),
        (httpx.ReadError("connection reset"), RetriableError),
    ],
)
def test_transport_errors_are_retriable(
    router: respx.MockRouter,
    http: httpx.Client,
    exc: httpx.RequestError,
    error_type: type[RetriableError],
) -> None:
    """Connections that cannot be made and timeouts are outages (Unreachable): the delivery's
    circuit breaker counts them; a dropped connection is only retriable."""
    router.post("/oauth/token").mock(return_value=token_answer())
    route = router.get("/api/v1/thing").mock(side_effect=exc)
    with pytest.raises(RetriableError) as info:
        _http.send(http, "GET", "/api/v1/thing", auth=make_auth())
    assert type(info.value) is error_type
    assert info.value.__cause__ is exc
    assert info.value.status is None
    assert str(info.value).startswith("GET /api/v1/thing: ")
    assert route.call_count == 1
    assert_no_secret(info.value)


def test_timeout_on_token_request_is_retriable(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post("/oauth/token").mock(side_effect=httpx.ReadTimeout("slow"))
    api = router.get("/api/v1/thing").mock(return_value=httpx.Response(200, json={}))
    with pytest.raises(RetriableError) as info:
        _http.send(http, "GET", "/api/v1/thing", auth=make_auth())
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert api.call_count == 0


def test_unsupported_protocol_is_fatal() -> None:
    with httpx.Client(base_url="ftp://api.example") as client, pytest.raises(FatalError) as info:
        _http.send(
            client,
            "GET",
            "/x",
            auth=ClientCredentialsAuth("ftp://api.example", client_id="c", client_secret=SECRET),
        )
    assert isinstance(info.value.__cause__, httpx.UnsupportedProtocol)


def test_call_wrapper_retries_one_request(router: respx.MockRouter, http: httpx.Client) -> None:
    token = router.post("/oauth/token").mock(return_value=token_answer())
    route = router.get("/api/v1/thing").mock(
        side_effect=[
            httpx.Response(502),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetriableError),
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_none(),
        reraise=True,
    )
    response = _http.send(http, "GET", "/api/v1/thing", auth=make_auth(), call=retrying)
    assert response.json() == {"ok": True}
    assert route.call_count == 3
    assert token.call_count == 1


def test_call_wrapper_does_not_retry_rejections(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post("/oauth/token").mock(return_value=token_answer())
    route = router.get("/api/v1/thing").mock(return_value=httpx.Response(422, json={}))
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetriableError),
        stop=tenacity.stop_after_attempt(5),
        wait=tenacity.wait_none(),
        reraise=True,
    )
    with pytest.raises(RecordRejected):
        _http.send(http, "GET", "/api/v1/thing", auth=make_auth(), call=retrying)
    assert route.call_count == 1


def test_json_object_rejects_non_objects() -> None:
    request = httpx.Request("GET", f"{BASE}/x")
    with pytest.raises(FatalError, match="not a JSON object"):
        _http.json_object(httpx.Response(200, json=[1], request=request), "GET", "/x")
    with pytest.raises(FatalError, match="not JSON"):
        _http.json_object(httpx.Response(200, text="<html>", request=request), "GET", "/x")
    assert _http.json_object(httpx.Response(204, request=request), "GET", "/x") == {}


def test_endpoint_url_keeps_base_path_and_display_drops_userinfo() -> None:
    base = httpx.Client(base_url="https://u:pw@api.example/gw").base_url
    assert (
        str(_http.endpoint_url(base, "/oauth/token")) == "https://u:pw@api.example/gw/oauth/token"
    )
    assert _http.display_url(base) == "https://api.example/gw"
    with pytest.raises(ValueError, match="absolute base_url"):
        _http.endpoint_url(httpx.URL(""), "/oauth/token")


# --- auth -------------------------------------------------------------------------------


def test_token_request_form_and_bearer_header(router: respx.MockRouter, http: httpx.Client) -> None:
    token = router.post("/oauth/token").mock(return_value=token_answer())
    api = router.get("/api/v1/thing").mock(return_value=httpx.Response(200, json={}))
    _http.send(http, "GET", "/api/v1/thing", auth=make_auth(scope="skp.write"))
    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": [SECRET],
        "scope": ["skp.write"],
    }
    assert token.calls.last.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert api.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_token_without_scope_sends_no_scope(router: respx.MockRouter, http: httpx.Client) -> None:
    token = router.post("/oauth/token").mock(return_value=token_answer())
    router.get("/x").mock(return_value=httpx.Response(200))
    _http.send(http, "GET", "/x", auth=make_auth())
    assert "scope" not in parse_qs(token.calls.last.request.content.decode())


def test_token_reused_until_shortly_before_expiry(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    clock = FakeClock(1000.0)
    token = router.post("/oauth/token").mock(
        side_effect=[token_answer("tok-1", 60), token_answer("tok-2", 60)]
    )
    api = router.get("/x").mock(return_value=httpx.Response(200))
    auth = make_auth(clock)
    _http.send(http, "GET", "/x", auth=auth)
    clock.now = 1053.0  # 60 s lifetime, refreshed 6 s early: still valid
    _http.send(http, "GET", "/x", auth=auth)
    assert token.call_count == 1
    clock.now = 1055.0
    _http.send(http, "GET", "/x", auth=auth)
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in api.calls] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_long_token_refreshed_30s_early(router: respx.MockRouter, http: httpx.Client) -> None:
    clock = FakeClock(0.0)
    token = router.post("/oauth/token").mock(return_value=token_answer(expires_in="3600"))
    router.get("/x").mock(return_value=httpx.Response(200))
    auth = make_auth(clock)
    _http.send(http, "GET", "/x", auth=auth)
    clock.now = 3569.0
    _http.send(http, "GET", "/x", auth=auth)
    assert token.call_count == 1
    clock.now = 3571.0
    _http.send(http, "GET", "/x", auth=auth)
    assert token.call_count == 2


def test_401_refreshes_once_and_repeats(router: respx.MockRouter, http: httpx.Client) -> None:
    token = router.post("/oauth/token").mock(
        side_effect=[token_answer("tok-1"), token_answer("tok-2")]
    )
    api = router.post("/api/v1/skp").mock(
        side_effect=[httpx.Response(401), httpx.Response(201, json={"id_skp": "S"})]
    )
    response = _http.send(http, "POST", "/api/v1/skp", auth=make_auth(), json_body={"a": "é"})
    assert response.status_code == 201
    assert token.call_count == 2
    assert api.call_count == 2
    first, second = (c.request for c in api.calls)
    assert first.headers["Authorization"] == "Bearer tok-1"
    assert second.headers["Authorization"] == "Bearer tok-2"
    assert second.content == first.content == '{"a":"é"}'.encode()


def test_second_401_is_auth_error(router: respx.MockRouter, http: httpx.Client) -> None:
    token = router.post("/oauth/token").mock(
        side_effect=[token_answer("tok-1"), token_answer(TOKEN)]
    )
    api = router.get("/x").mock(return_value=httpx.Response(401, json={"error": "invalid_token"}))
    with pytest.raises(AuthError) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert token.call_count == 2
    assert api.call_count == 2
    assert info.value.status == 401
    assert "GET /x -> 401" in str(info.value)
    assert_no_secret(info.value)


def test_token_endpoint_401_is_auth_error_without_secret(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post("/oauth/token").mock(
        return_value=httpx.Response(
            401, json={"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
        )
    )
    api = router.get("/x").mock(return_value=httpx.Response(200))
    with pytest.raises(AuthError) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert str(info.value).startswith(f"client credentials refused by {BASE} ")
    assert "error=invalid_client" in str(info.value)
    assert info.value.status == 401
    assert info.value.answer["error_description"] == "bad secret ***"
    assert api.call_count == 0
    assert_no_secret(info.value)


def test_token_endpoint_5xx_is_retriable(router: respx.MockRouter, http: httpx.Client) -> None:
    router.post("/oauth/token").mock(
        return_value=httpx.Response(503, headers={"Retry-After": "30"})
    )
    with pytest.raises(TargetPaused) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert info.value.retry_after_s == 30.0
    assert "POST /oauth/token -> 503" in str(info.value)


def test_token_endpoint_500_masks_an_echoed_secret(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    router.post("/oauth/token").mock(
        return_value=httpx.Response(500, json={"error": "oops", "detail": f"got {SECRET}"})
    )
    with pytest.raises(RetriableError) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert "detail=got ***" in str(info.value)
    assert info.value.answer == {"error": "oops", "detail": "got ***"}
    assert_no_secret(info.value)


def test_token_endpoint_404_is_fatal(router: respx.MockRouter, http: httpx.Client) -> None:
    router.post("/oauth/token").mock(return_value=httpx.Response(404))
    with pytest.raises(FatalError) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert not isinstance(info.value, RecordRejected)
    assert info.value.status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "Bearer", "expires_in": 60},
        {"access_token": "", "expires_in": 60},
        {"access_token": TOKEN, "token_type": "mac"},
    ],
)
def test_broken_token_answer_is_fatal_and_hides_token(
    router: respx.MockRouter, http: httpx.Client, body: dict[str, Any]
) -> None:
    router.post("/oauth/token").mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(FatalError) as info:
        _http.send(http, "GET", "/x", auth=make_auth())
    assert "POST /oauth/token -> 200" in str(info.value)
    assert_no_secret(info.value)


def test_auth_repr_hides_secret_and_token(router: respx.MockRouter, http: httpx.Client) -> None:
    router.post("/oauth/token").mock(return_value=token_answer())
    router.get("/x").mock(return_value=httpx.Response(200))
    auth = make_auth()
    _http.send(http, "GET", "/x", auth=auth)
    text = repr(auth)
    assert "client_id='cid'" in text
    assert "client_secret='***'" in text
    assert SECRET not in text
    assert TOKEN not in text
    assert SECRET not in repr(vars(auth))
    assert TOKEN not in repr(vars(auth))


def test_token_fetch_is_single_flight_across_threads(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    def slow_token(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)  # keep the fetch open while the other threads arrive
        return token_answer()

    token = router.post("/oauth/token").mock(side_effect=slow_token)
    api = router.get("/x").mock(return_value=httpx.Response(200))
    auth = make_auth()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            _http.send(http, "GET", "/x", auth=auth)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert token.call_count == 1
    assert api.call_count == 8


def test_401_after_another_thread_refreshed_reuses_new_token(
    router: respx.MockRouter, http: httpx.Client
) -> None:
    # The 401 was for tok-1, but by then the cache holds tok-2: no third fetch.
    auth = make_auth()
    token = router.post("/oauth/token").mock(
        side_effect=[token_answer("tok-1"), token_answer("tok-2")]
    )
    router.get("/warm").mock(return_value=httpx.Response(200))
    _http.send(http, "GET", "/warm", auth=auth)  # caches tok-1

    def refresh_then_refuse(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok-1":
            # Simulate another thread's refresh landing while this request was in flight.
            flow = auth._valid_token(stale=auth._token.value if auth._token else None)
            token_request = next(flow)
            with pytest.raises(StopIteration):
                flow.send(http.send(token_request))
            return httpx.Response(401)
        return httpx.Response(200)

    api = router.get("/x").mock(side_effect=refresh_then_refuse)
    _http.send(http, "GET", "/x", auth=auth)
    assert token.call_count == 2
    assert [c.request.headers["Authorization"] for c in api.calls] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]
