"""connectors.ekinerja.EkinerjaClient against a respx-mocked target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors import (
    AuthError,
    Conflict,
    EkinerjaClient,
    FatalError,
    PreconditionFailed,
    RecordRejected,
    RetriableError,
    SyncError,
    TargetAnswer,
    TargetPaused,
    ekinerja,
)

BASE = "https://ekinerja.example"
SECRET = "ek-secret-value"
TOKEN = "ek-token-value"
SKP_BODY: dict[str, Any] = {
    "nip": "198503152010012003",
    "periode": {"tahun": 2025, "semester": 1},
    "jabatan": "Guru Ahli Muda",
    "unit_kerja": {"npsn": "20212345", "nama": "SDN 1 Contoh – Cabang Ñ"},
}


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        mock.post("/oauth/token", name="token").mock(
            return_value=httpx.Response(
                200, json={"access_token": TOKEN, "token_type": "Bearer", "expires_in": 60}
            )
        )
        yield mock


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, timeout=5) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(http: httpx.Client, clock: FakeClock) -> EkinerjaClient:
    return EkinerjaClient(http, client_id="sync", client_secret=SECRET, clock=clock)


def test_create_skp(router: respx.MockRouter, client: EkinerjaClient, clock: FakeClock) -> None:
    answer = {"id_skp": "SKP-2025-1-198503152010012003", "status": "diterima", "versi": 1}

    def created(request: httpx.Request) -> httpx.Response:
        clock.now += 1.25  # the request takes 1.25 s on the fake clock
        return httpx.Response(201, json=answer)

    route = router.post("/api/v1/skp").mock(side_effect=created)
    result = client.create_skp(SKP_BODY, idempotency_key="skp-key-1")
    assert result == TargetAnswer(status=201, body=answer, duration_s=1.25)
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "skp-key-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content.decode("utf-8")) == SKP_BODY
    assert "Cabang Ñ".encode() in request.content  # UTF-8, not \\u escapes
    assert "If-Match" not in request.headers


def test_without_httpx_s_transport_choice_a_write_goes_through_the_client_alike(
    router: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean path calls a private method of httpx's (the transport for the base URL); a
    release without it falls back to ``Client.send``: the same request, the same answer."""
    answer = {"id_skp": "SKP-1", "status": "diterima", "versi": 1}
    route = router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json=answer))
    sends: list[str] = []
    original_send = httpx.Client.send

    def counting_send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
        sends.append(request.url.path)
        return original_send(self, request, **kw)

    def sent(*, lean: bool) -> tuple[TargetAnswer, httpx.Request]:
        with monkeypatch.context() as m:
            m.setattr(httpx.Client, "send", counting_send)
            if not lean:
                m.setattr(ekinerja, "_transport_for", lambda http: None)
            with httpx.Client(base_url=BASE, timeout=5) as http:
                client = EkinerjaClient(http, client_id="sync", client_secret=SECRET)
                result = client.create_skp(SKP_BODY, idempotency_key="skp-key-1")
        return result, route.calls.last.request

    lean, lean_request = sent(lean=True)
    assert sends == ["/oauth/token"]  # the write went to the transport itself
    public, public_request = sent(lean=False)
    assert sends[1:] == ["/oauth/token", "/api/v1/skp"]  # the write went through the Client
    assert (public.status, public.body) == (lean.status, lean.body) == (201, answer)
    assert public_request.method == lean_request.method
    assert public_request.url == lean_request.url
    assert public_request.headers.multi_items() == lean_request.headers.multi_items()
    assert public_request.content == lean_request.content


def test_token_scope_and_reuse(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={"id_skp": "S"}))
    for i in range(3):
        client.create_skp(SKP_BODY, idempotency_key=f"k{i}")
    token = router["token"]
    assert token.call_count == 1
    form = parse_qs(token.calls.last.request.content.decode())
    assert form["scope"] == ["skp.write"]
    assert form["grant_type"] == ["client_credentials"]


def test_short_lived_token_is_refreshed_before_expiry(
    router: respx.MockRouter, client: EkinerjaClient, clock: FakeClock
) -> None:
    router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={}))
    client.create_skp(SKP_BODY, idempotency_key="a")
    clock.now += 55  # expires_in 60, refreshed a little early
    client.create_skp(SKP_BODY, idempotency_key="b")
    assert router["token"].call_count == 2


def test_update_skp(router: respx.MockRouter, client: EkinerjaClient) -> None:
    route = router.put("/api/v1/skp/SKP-2025-1-1").mock(
        return_value=httpx.Response(200, json={"id_skp": "SKP-2025-1-1", "versi": 4})
    )
    result = client.update_skp("SKP-2025-1-1", SKP_BODY, version=3, idempotency_key="upd-1")
    assert result.status == 200
    assert result.body["versi"] == 4
    request = route.calls.last.request
    assert request.headers["If-Match"] == "3"
    assert request.headers["Idempotency-Key"] == "upd-1"
    assert json.loads(request.content) == SKP_BODY


def test_skp_id_is_escaped_in_the_path(router: respx.MockRouter, client: EkinerjaClient) -> None:
    route = router.route(method="POST").mock(return_value=httpx.Response(201, json={}))
    client.create_assessment("a/b c?#", {"predikat_kinerja": "BAIK"}, idempotency_key="p")
    assert route.calls.last.request.url.raw_path == b"/api/v1/skp/a%2Fb%20c%3F%23/penilaian"


def test_create_assessment(router: respx.MockRouter, client: EkinerjaClient) -> None:
    body = {"predikat_kinerja": "BAIK", "angka_kredit": 12.5, "catatan": None}
    route = router.post("/api/v1/skp/SKP-1/penilaian").mock(
        return_value=httpx.Response(201, json={"id_penilaian": "PN-1", "status": "final"})
    )
    result = client.create_assessment("SKP-1", body, idempotency_key="pen-1")
    assert result.status == 201
    assert result.body == {"id_penilaian": "PN-1", "status": "final"}
    assert route.calls.last.request.headers["Idempotency-Key"] == "pen-1"
    assert json.loads(route.calls.last.request.content) == body


def test_find_skps(router: respx.MockRouter, client: EkinerjaClient) -> None:
    skp = {"id_skp": "SKP-1", "versi": 2, "nip": "198503152010012003"}
    route = router.get("/api/v1/skp").mock(return_value=httpx.Response(200, json={"data": [skp]}))
    assert client.find_skps("198503152010012003", 2025, 2) == [skp]
    assert dict(route.calls.last.request.url.params) == {
        "nip": "198503152010012003",
        "tahun": "2025",
        "jenis": "semester",
        "semester": "2",
    }
    assert "Idempotency-Key" not in route.calls.last.request.headers


def test_find_skps_of_a_year_sends_no_semester(
    router: respx.MockRouter, client: EkinerjaClient
) -> None:
    route = router.get("/api/v1/skp").mock(return_value=httpx.Response(200, json={"data": []}))
    assert client.find_skps("198503152010012003", 2026, None, jenis="tahunan") == []
    assert dict(route.calls.last.request.url.params) == {
        "nip": "198503152010012003",
        "tahun": "2026",
        "jenis": "tahunan",
    }
    with pytest.raises(ValueError, match="no semester"):
        client.find_skps("198503152010012003", 2026, 1, jenis="tahunan")


def test_school_skps_walks_every_page_with_the_filters(
    router: respx.MockRouter, client: EkinerjaClient
) -> None:
    pages = {
        None: {"data": [{"id_skp": "SKP-2026-1"}], "next_cursor": "c1"},
        "c1": {"data": [{"id_skp": "SKP-2026-2"}], "next_cursor": None},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["npsn"] == "P1234567"
        assert request.url.params["jenis"] == "tahunan"
        assert "semester" not in request.url.params
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    router.get("/api/v1/skp").mock(side_effect=answer)
    found = list(client.school_skps("P1234567", 2026, None, jenis="tahunan", page_size=1))
    assert [s["id_skp"] for s in found] == ["SKP-2026-1", "SKP-2026-2"]


def test_school_skps_stops_on_a_repeated_cursor(
    router: respx.MockRouter, client: EkinerjaClient
) -> None:
    router.get("/api/v1/skp").mock(
        return_value=httpx.Response(200, json={"data": [], "next_cursor": "same"})
    )
    with pytest.raises(FatalError, match="repeated next_cursor"):
        list(client.school_skps("20212345", 2024, 2))


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (400, {}, RecordRejected),
        (403, {}, AuthError),
        (404, {}, RecordRejected),
        (408, {}, RetriableError),
        (409, {}, Conflict),
        (412, {}, PreconditionFailed),
        (422, {}, RecordRejected),
        (428, {}, RecordRejected),
        (429, {"Retry-After": "3"}, RetriableError),
        (500, {}, RetriableError),
        (502, {}, RetriableError),
        (503, {}, RetriableError),
        (503, {"Retry-After": "120"}, TargetPaused),
        (504, {}, RetriableError),
    ],
)
def test_status_mapping_and_no_retry(
    router: respx.MockRouter,
    client: EkinerjaClient,
    status: int,
    headers: dict[str, str],
    expected: type[SyncError],
) -> None:
    answer = {"kode": "KODE_X", "pesan": "pesan x", "versi": 5}
    route = router.put("/api/v1/skp/SKP-1").mock(
        return_value=httpx.Response(status, json=answer, headers=headers)
    )
    with pytest.raises(SyncError) as info:
        client.update_skp("SKP-1", SKP_BODY, version=4, idempotency_key="k")
    error = info.value
    assert type(error) is expected
    assert error.status == status
    assert error.answer == answer
    assert error.retry_after_s == (float(headers["Retry-After"]) if headers else None)
    assert f"PUT /api/v1/skp/SKP-1 -> {status}" in str(error)
    assert "kode=KODE_X, pesan=pesan x" in str(error)
    assert route.call_count == 1  # the target client never retries by itself
    assert SECRET not in str(error) + repr(error)
    assert TOKEN not in str(error) + repr(error)


def test_409_conflict_code(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.post("/api/v1/skp").mock(
        return_value=httpx.Response(
            409, json={"kode": "SKP_SUDAH_ADA", "id_skp": "SKP-9", "versi": 2}
        )
    )
    with pytest.raises(Conflict) as info:
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert info.value.code == "SKP_SUDAH_ADA"
    assert info.value.answer["id_skp"] == "SKP-9"


def test_412_answer_carries_current_versi(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.put("/api/v1/skp/SKP-1").mock(return_value=httpx.Response(412, json={"versi": 7}))
    with pytest.raises(PreconditionFailed) as info:
        client.update_skp("SKP-1", SKP_BODY, version=6, idempotency_key="k")
    assert info.value.answer["versi"] == 7


def test_429_with_http_date(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.post("/api/v1/skp").mock(
        return_value=httpx.Response(
            429,
            headers={
                "Date": "Tue, 01 Jul 2025 03:00:00 GMT",
                "Retry-After": "Tue, 01 Jul 2025 03:00:09 GMT",
            },
        )
    )
    with pytest.raises(RetriableError) as info:
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert info.value.retry_after_s == 9.0


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_dropped_connection_is_retriable_and_not_retried(
    router: respx.MockRouter, client: EkinerjaClient, exc: httpx.RequestError
) -> None:
    route = router.post("/api/v1/skp").mock(side_effect=exc)
    with pytest.raises(RetriableError) as info:
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert info.value.__cause__ is exc
    assert route.call_count == 1


def test_401_refresh_once_then_success(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router["token"].mock(
        side_effect=[
            httpx.Response(200, json={"access_token": "old", "expires_in": 60}),
            httpx.Response(200, json={"access_token": "new", "expires_in": 60}),
        ]
    )
    route = router.post("/api/v1/skp").mock(
        side_effect=[httpx.Response(401), httpx.Response(201, json={"id_skp": "S"})]
    )
    result = client.create_skp(SKP_BODY, idempotency_key="k")
    assert result.status == 201
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer old",
        "Bearer new",
    ]
    # The repeat is the same request: same key, same body.
    assert {c.request.headers["Idempotency-Key"] for c in route.calls} == {"k"}
    assert route.calls[0].request.content == route.calls[1].request.content


def test_second_401_is_auth_error(router: respx.MockRouter, client: EkinerjaClient) -> None:
    route = router.post("/api/v1/skp").mock(return_value=httpx.Response(401))
    with pytest.raises(AuthError) as info:
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert route.call_count == 2
    assert router["token"].call_count == 2
    assert info.value.status == 401
    assert TOKEN not in str(info.value)


def test_insufficient_scope_is_auth_error(router: respx.MockRouter, client: EkinerjaClient) -> None:
    route = router.post("/api/v1/skp").mock(
        return_value=httpx.Response(403, json={"error": "insufficient_scope"})
    )
    with pytest.raises(AuthError, match="error=insufficient_scope"):
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert route.call_count == 1
    assert router["token"].call_count == 1


def test_token_endpoint_refusal(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router["token"].mock(return_value=httpx.Response(401, json={"error": "invalid_client"}))
    route = router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={}))
    with pytest.raises(AuthError) as info:
        client.create_skp(SKP_BODY, idempotency_key="k")
    assert "client credentials refused by https://ekinerja.example" in str(info.value)
    assert SECRET not in str(info.value)
    assert route.call_count == 0


def test_non_json_success_is_fatal(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.post("/api/v1/skp").mock(return_value=httpx.Response(201, text="OK"))
    with pytest.raises(FatalError, match="not JSON"):
        client.create_skp(SKP_BODY, idempotency_key="k")


@pytest.mark.parametrize("key", ["", "x" * 129, "kunci dengan spasi ", "kunci-é"])
def test_bad_idempotency_key_is_refused_before_sending(
    router: respx.MockRouter, client: EkinerjaClient, key: str
) -> None:
    route = router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={}))
    with pytest.raises(ValueError, match="idempotency_key"):
        client.create_skp(SKP_BODY, idempotency_key=key)
    assert route.call_count == 0


def test_longest_idempotency_key_is_sent(router: respx.MockRouter, client: EkinerjaClient) -> None:
    route = router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={}))
    client.create_skp(SKP_BODY, idempotency_key="k" * 128)
    assert route.calls.last.request.headers["Idempotency-Key"] == "k" * 128


@pytest.mark.parametrize("version", [0, -1, True])
def test_bad_version_is_refused(client: EkinerjaClient, version: int) -> None:
    with pytest.raises(ValueError, match="version"):
        client.update_skp("SKP-1", SKP_BODY, version=version, idempotency_key="k")


def test_repr_hides_secret(router: respx.MockRouter, client: EkinerjaClient) -> None:
    router.post("/api/v1/skp").mock(return_value=httpx.Response(201, json={}))
    client.create_skp(SKP_BODY, idempotency_key="k")
    text = repr(client)
    assert "client_id='sync'" in text
    assert SECRET not in text
    assert TOKEN not in text
