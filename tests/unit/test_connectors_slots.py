"""EkinerjaClient's ``before_request`` (the engine's rate limit, ``RateLimiter.confirm``) is
called right before every request goes on the wire: the token request, each write and read,
and the repeat after a 401, and nowhere else. Against a respx-mocked target."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import respx

from connectors import EkinerjaClient

BASE = "https://ekinerja.example"
BODY = {"nip": "198503152010012003"}


class Events:
    """What happened, in order: ``slot`` (before_request) and each request e-Kinerja got."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def slot(self) -> None:
        self.seen.append("slot")

    def answer(self, name: str, *answers: httpx.Response) -> object:
        queue = list(answers)

        def respond(request: httpx.Request) -> httpx.Response:
            self.seen.append(name)
            return queue.pop(0) if len(queue) > 1 else queue[0]

        return respond


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def client(events: Events) -> Iterator[EkinerjaClient]:
    with (
        respx.mock(base_url=BASE, assert_all_called=False) as mock,
        httpx.Client(base_url=BASE, timeout=5) as http,
    ):
        mock.post("/oauth/token").mock(
            side_effect=events.answer(
                "token",
                httpx.Response(200, json={"access_token": "t1", "expires_in": 600}),
                httpx.Response(200, json={"access_token": "t2", "expires_in": 600}),
            )
        )
        mock.post("/api/v1/skp").mock(
            side_effect=events.answer("POST", httpx.Response(201, json={"id_skp": "S"}))
        )
        mock.get("/api/v1/skp").mock(
            side_effect=events.answer("GET", httpx.Response(200, json={"data": []}))
        )
        yield EkinerjaClient(http, client_id="c", client_secret="s", before_request=events.slot)


def test_each_write_and_its_token_request_use_a_slot(
    client: EkinerjaClient, events: Events
) -> None:
    client.create_skp(BODY, idempotency_key="a")
    assert events.seen == ["slot", "token", "slot", "POST"]
    events.seen.clear()
    client.create_skp(BODY, idempotency_key="b")  # a token at hand
    assert events.seen == ["slot", "POST"]


def test_each_read_and_its_token_request_use_a_slot(client: EkinerjaClient, events: Events) -> None:
    client.find_skps("198503152010012003", 2025, 1)
    assert events.seen == ["slot", "token", "slot", "GET"]
    events.seen.clear()
    client.find_skps("198503152010012003", 2025, 1)
    assert events.seen == ["slot", "GET"]


def test_the_repeat_after_a_401_takes_a_slot(events: Events) -> None:
    with (
        respx.mock(base_url=BASE, assert_all_called=False) as mock,
        httpx.Client(base_url=BASE, timeout=5) as http,
    ):
        mock.post("/oauth/token").mock(
            side_effect=events.answer("token", httpx.Response(200, json={"access_token": "t"}))
        )
        mock.post("/api/v1/skp").mock(
            side_effect=events.answer(
                "POST",
                httpx.Response(201, json={"id_skp": "S"}),
                httpx.Response(401),
                httpx.Response(201, json={"id_skp": "S"}),
            )
        )
        client = EkinerjaClient(http, client_id="c", client_secret="s", before_request=events.slot)
        client.create_skp(BODY, idempotency_key="a")
        events.seen.clear()
        client.create_skp(BODY, idempotency_key="b")
    assert events.seen == ["slot", "POST", "slot", "token", "slot", "POST"]
