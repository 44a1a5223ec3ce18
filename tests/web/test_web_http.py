"""The web console over HTTP (Starlette's TestClient): who may do what, CSRF, sessions, the
login rate limit, escaping, and hostile or odd input. State comes from a real sync against
the sandbox (one SKP refused, one school named ``<script>...``)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from starlette.testclient import TestClient
from typer.testing import CliRunner

from state import ledger
from state.models import DeliveryKind, RecordStatus
from state.users import Role, add_user, get_user, set_disabled
from sync.cli import app as cli_app
from sync.web.app import create_web_app
from sync.web.auth import COOKIE, LoginPolicy
from sync.web.keys import ConsoleKey
from tests.web.conftest import (
    AUDITOR,
    OPERATOR,
    PERIOD,
    SCRIPT_NAME,
    TEST_KEY,
    FakeClock,
    Synced,
    clear_throttle,
    client_for,
    csrf_in,
    login,
    synced,
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """One synced store for the tests that only read (SQLite)."""
    path = tmp_path_factory.mktemp("web") / "state.db"
    with synced(f"sqlite:///{path}") as state:
        yield state


@pytest.fixture(autouse=True)
def _fresh_throttle(request: pytest.FixtureRequest) -> None:
    """Tests on the shared store do not inherit each other's failed logins."""
    if "shared" in request.fixturenames:
        clear_throttle(request.getfixturevalue("shared").store)


def _app(state: Synced, clock: FakeClock, **options: object) -> TestClient:
    options.setdefault("key", TEST_KEY)
    app = create_web_app(
        state.settings,
        state.store,
        clock=clock,
        passwords=state.passwords,
        **options,  # type: ignore[arg-type]
    )
    return client_for(app)


def _pages(state: Synced) -> list[str]:
    return [
        "/",
        f"/?period={PERIOD}",
        f"/schools/{state.script_npsn}?period={PERIOD}",
        f"/teachers/{state.failing_nip}",
        f"/teachers/{state.failing_nip}?period={PERIOD}",
        "/failures",
        f"/failures?period={PERIOD}&reason=NIP_TIDAK_DITEMUKAN&status=failed",
        "/quarantine",
        f"/quarantine?period={PERIOD}",
        "/ledger",
        f"/ledger?nip={state.failing_nip}&q=rejected",
        "/ledger/export?format=csv",
        "/ledger/export?format=jsonl&redact=1",
        "/ledger/verify",
    ]


def _record_status(state: Synced) -> RecordStatus:
    record = state.store.reports.record(PERIOD, state.failing_nip, DeliveryKind.SKP)
    assert record is not None
    return record.status


def _head(state: Synced) -> tuple[str, int]:
    with Session(state.store.engine) as session:
        return ledger.head(session)


# -- who may do what ---------------------------------------------------------------------------


def test_every_page_needs_a_login(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    for path in _pages(shared):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login"), path
    head = _head(shared)
    for path in ("/actions/replay", "/actions/discard", "/logout"):
        answer = client.post(path, data={"id": shared.failure_id, "why": "x"})
        assert answer.status_code == 403, path
        assert "Sesi tidak berlaku" in answer.text
    assert _record_status(shared) is RecordStatus.FAILED
    assert _head(shared) == head


@pytest.mark.parametrize("who", [OPERATOR, AUDITOR], ids=["operator", "auditor"])
def test_both_roles_read_every_page(shared: Synced, clock: FakeClock, who: tuple[str, str]) -> None:
    client = _app(shared, clock)
    login(client, *who)
    for path in _pages(shared):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
    overview = client.get("/").text
    assert 'id="progress-chart"' in overview
    assert "<polyline" in overview
    assert "Batas penilaian" in overview
    assert 'id="drift-never"' in overview  # no reconciliation of the period yet


def test_only_the_operator_sees_replay_and_discard(shared: Synced, clock: FakeClock) -> None:
    operator, auditor = _app(shared, clock), _app(shared, clock)
    login(operator, *OPERATOR)
    login(auditor, *AUDITOR)
    for path in (f"/teachers/{shared.failing_nip}", "/failures"):
        assert 'action="/actions/replay"' in operator.get(path).text
        page = auditor.get(path).text
        assert 'action="/actions/replay"' not in page
        assert 'action="/actions/discard"' not in page
    assert 'action="/actions/discard"' in operator.get(f"/teachers/{shared.failing_nip}").text


def test_an_auditor_posting_to_replay_or_discard_gets_403(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    token = login(client, *AUDITOR)
    head = _head(shared)
    shared.faults.update({"unknown_nips": []})  # a replay would succeed: it must not happen
    try:
        requests_before = shared.box.target.stats()
        for path, data in (
            ("/actions/replay", {"csrf_token": token, "id": shared.failure_id}),
            ("/actions/discard", {"csrf_token": token, "id": shared.failure_id, "why": "no"}),
        ):
            answer = client.post(path, data=data)
            assert answer.status_code == 403
            assert "Hanya operator" in answer.text
        assert shared.box.target.stats() == requests_before
    finally:
        shared.faults.update({"unknown_nips": [shared.failing_nip]})
    assert _record_status(shared) is RecordStatus.FAILED
    assert _head(shared) == head


# -- CSRF ------------------------------------------------------------------------------------------


def test_missing_or_forged_csrf_is_refused_and_changes_nothing(
    shared: Synced, clock: FakeClock
) -> None:
    client, other = _app(shared, clock), _app(shared, clock)
    login(client, *OPERATOR)
    foreign = login(other, *OPERATOR)  # a valid token, of another session
    head = _head(shared)
    for token in (None, "", "forged-token", foreign, "x" * 5000):
        data = {"id": shared.failure_id, "why": "test"}
        if token is not None:
            data["csrf_token"] = token
        for path in ("/actions/replay", "/actions/discard"):
            answer = client.post(path, data=data)
            assert answer.status_code in (403, 400), (path, token)
            assert "Tidak ada yang diubah" in answer.text or "terlalu panjang" in answer.text
    assert _record_status(shared) is RecordStatus.FAILED
    assert _head(shared) == head
    # Logging out needs the token too.
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200


def test_login_form_needs_its_csrf_token(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    client.get("/login")
    answer = client.post("/login", data={"username": OPERATOR[0], "password": OPERATOR[1]})
    assert answer.status_code == 403
    assert client.get("/").status_code == 303  # not logged in


# -- logins and sessions ---------------------------------------------------------------------------


def test_wrong_password_then_rate_limit(shared: Synced, clock: FakeClock) -> None:
    policy = LoginPolicy(max_per_user=3, window_s=600, base_delay_s=60)
    client = _app(shared, clock, login_policy=policy)
    token = csrf_in(client.get("/login").text)
    for _ in range(3):
        answer = client.post(
            "/login", data={"csrf_token": token, "username": "ana", "password": "wrong-password"}
        )
        assert answer.status_code == 401
        assert "salah" in answer.text
    # Now even the right password is refused, without being checked, until the window moves.
    right = {"csrf_token": token, "username": OPERATOR[0], "password": OPERATOR[1]}
    answer = client.post("/login", data=right)
    assert answer.status_code == 429
    assert "Terlalu banyak percobaan" in answer.text
    assert 0 < int(answer.headers["retry-after"]) <= 61
    clock.advance(61)
    answer = client.post("/login", data=right)
    assert answer.status_code == 303
    assert client.get("/").status_code == 200


def test_unknown_user_and_odd_names_are_just_wrong(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    token = csrf_in(client.get("/login").text)
    for name in ("nobody", "<b>x</b>", "a" * 500, ""):
        answer = client.post(
            "/login", data={"csrf_token": token, "username": name, "password": "whatever-1234"}
        )
        assert answer.status_code == 401
        assert "<b>x</b>" not in answer.text


def test_session_expires(shared: Synced, clock: FakeClock) -> None:
    """The absolute timeout: a session in use all along still ends ``session_max_age_s``
    after login."""
    client = _app(shared, clock)
    token = login(client, *OPERATOR)
    max_age = shared.settings.web.session_max_age_s
    step = shared.settings.web.session_idle_s - 60
    used = 0
    while used + step < max_age - 5:
        clock.advance(step)
        used += step
        assert client.get("/").status_code == 200, used
    clock.advance(max_age - 5 - used)
    assert client.get("/").status_code == 200
    clock.advance(10)
    answer = client.get("/failures")
    assert answer.status_code == 303
    assert "expired=1" in answer.headers["location"]
    assert "next=%2Ffailures" in answer.headers["location"]
    answer = client.post("/actions/replay", data={"csrf_token": token, "id": shared.failure_id})
    assert answer.status_code == 403
    assert _record_status(shared) is RecordStatus.FAILED
    assert "sudah berakhir" in client.get("/login?expired=1").text


def test_a_disabled_user_is_out_at_once(tmp_path: Path, clock: FakeClock, shared: Synced) -> None:
    client = _app(shared, clock)
    add_user(shared.store.engine, "citra", Role.AUDITOR, shared.passwords.hash("sandi-rahasia-c1"))
    login(client, "citra", "sandi-rahasia-c1")
    set_disabled(shared.store.engine, "citra")
    assert client.get("/").status_code == 303
    token = csrf_in(client.get("/login").text)
    answer = client.post(
        "/login", data={"csrf_token": token, "username": "citra", "password": "sandi-rahasia-c1"}
    )
    assert answer.status_code == 401


def test_session_ends_when_idle(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    clock.advance(shared.settings.web.session_idle_s - 10)
    assert client.get("/").status_code == 200  # a request: the idle time starts again
    clock.advance(shared.settings.web.session_idle_s - 10)
    assert client.get("/").status_code == 200
    clock.advance(shared.settings.web.session_idle_s + 1)
    answer = client.get("/")
    assert answer.status_code == 303
    assert "expired=1" in answer.headers["location"]


def test_logout_ends_the_session(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    token = login(client, *AUDITOR)
    answer = client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert client.get("/").status_code == 303


def test_a_cookie_replayed_after_logout_is_worth_nothing(shared: Synced, clock: FakeClock) -> None:
    """Issue 13, 4: logout only deleted the cookie; a copy of it still worked."""
    client = _app(shared, clock)
    token = login(client, *OPERATOR)
    kept = client.cookies[COOKIE]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    head = _head(shared)
    replay = _app(shared, clock)
    replay.cookies.set(COOKIE, kept)
    assert replay.get("/").status_code == 303
    answer = replay.post(
        "/actions/discard", data={"csrf_token": token, "id": shared.failure_id, "why": "replayed"}
    )
    assert answer.status_code == 403
    assert "Sesi tidak berlaku" in answer.text
    assert _record_status(shared) is RecordStatus.FAILED
    assert _head(shared) == head


def test_a_new_password_role_or_disabling_ends_sessions_at_once(
    shared: Synced, clock: FakeClock
) -> None:
    from state.users import set_password, set_role

    passwords = shared.passwords
    add_user(shared.store.engine, "dian", Role.OPERATOR, passwords.hash("sandi-rahasia-d1"))
    client = _app(shared, clock)
    login(client, "dian", "sandi-rahasia-d1")
    set_password(shared.store.engine, "dian", passwords.hash("kata-sandi-baru"))
    assert client.get("/").status_code == 303
    login(client, "dian", "kata-sandi-baru")
    set_role(shared.store.engine, "dian", Role.AUDITOR)
    assert client.get("/").status_code == 303
    token = login(client, "dian", "kata-sandi-baru")
    answer = client.post(
        "/actions/discard", data={"csrf_token": token, "id": shared.failure_id, "why": "x"}
    )
    assert answer.status_code == 403  # an auditor now
    set_disabled(shared.store.engine, "dian")
    assert client.get("/").status_code == 303


def test_a_forged_session_cookie_is_nobody(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    cookie = client.cookies[COOKIE]
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"))
    assert client.get("/").status_code == 303


def test_sessions_survive_a_restart_with_the_same_key(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    again = _app(shared, clock)  # another console process on the same store and key
    again.cookies.set(COOKIE, client.cookies[COOKIE])
    assert again.get("/").status_code == 200
    other = _app(shared, clock, key=ConsoleKey.for_tests("another-key-" + "x" * 32))
    other.cookies.set(COOKIE, client.cookies[COOKIE])
    assert other.get("/").status_code == 303


def test_login_does_not_redirect_elsewhere(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    token = csrf_in(client.get("/login?next=//evil.example/x").text)
    for target, expected in (
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
        ("/failures?period=2025-1", "/failures?period=2025-1"),
    ):
        client.cookies.clear()
        token = csrf_in(client.get("/login").text)
        answer = client.post(
            "/login",
            data={
                "csrf_token": token,
                "username": AUDITOR[0],
                "password": AUDITOR[1],
                "next": target,
            },
        )
        assert answer.headers["location"] == expected


def test_cookies_and_headers(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    answer = client.get("/login")
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


def test_passwords_are_argon2id_by_default() -> None:
    from sync.web.auth import Passwords

    passwords = Passwords()
    digest = passwords.hash("kata-sandi-panjang")
    assert digest.startswith("$argon2id$")
    assert passwords.verify(digest, "kata-sandi-panjang")
    assert not passwords.verify(digest, "kata-sandi-lain")
    assert not passwords.verify(None, "kata-sandi-panjang")


# -- what the pages show ---------------------------------------------------------------------------


def test_html_in_the_data_is_escaped(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; SD Negeri"
    for path in (
        "/",
        f"/schools/{shared.script_npsn}?period={PERIOD}",
        f"/teachers/{shared.failing_nip}",
        "/failures",
    ):
        page = client.get(path).text
        assert SCRIPT_NAME not in page, path
        assert "<script" not in page, path
        assert escaped in page, path
    # Reflected input is escaped too.
    page = client.get("/ledger", params={"q": '"><script>alert(1)</script>'}).text
    assert "<script>" not in page
    assert "&#34;&gt;&lt;script&gt;" in page


def test_a_failure_reads_in_plain_words(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    page = client.get("/failures", params={"reason": "nip_tidak_ditemukan"}).text
    assert shared.failure_id in page
    assert "BKN tidak mengenal NIP ini" in page
    teacher = client.get(f"/teachers/{shared.failing_nip}").text
    assert "NIP_TIDAK_DITEMUKAN" in teacher  # the answer as received
    assert "Kunci idempotensi" in teacher
    assert "rejected" in teacher
    assert "Hanya operator yang dapat" in teacher
    empty = client.get("/failures", params={"npsn": "00000000"}).text
    assert "Tidak ada kegagalan" in empty


def test_unknown_ids_get_a_404_page(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    token = login(client, *OPERATOR)
    for path in (
        "/schools/99999999",
        "/schools/%3Cb%3E",
        "/teachers/199001012020121001",
        "/teachers/not-a-nip",
        "/no/such/page",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "tidak ditemukan" in answer.text.lower(), path
    head = _head(shared)
    answer = client.post(
        "/actions/replay", data={"csrf_token": token, "id": f"{PERIOD}/199001012020121001/skp"}
    )
    assert answer.status_code == 404
    answer = client.post(
        "/actions/discard",
        data={"csrf_token": token, "id": f"{PERIOD}/199001012020121001/skp", "why": "x"},
    )
    assert answer.status_code == 404
    answer = client.post("/actions/replay", data={"csrf_token": token, "id": "../../etc/passwd"})
    assert answer.status_code == 400
    assert _head(shared) == head


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ledger?q=" + "a" * 3000, 414),
        ("/" + "a" * 600, 414),
        ("/ledger?q=%ff%fe", 400),
        ("/ledger?q=%00", 400),
        ("/failures?period=2025-3", 400),
        ("/failures?period=<script>", 400),
        ("/ledger?q=" + "a" * 150, 400),
        ("/ledger?since=2025-13-45", 400),
        ("/ledger?before=-1", 400),
        ("/ledger/verify?against=nothex@1", 400),
        ("/ledger?" + "&".join(f"p{i}=1" for i in range(40)), 400),
    ],
)
def test_odd_or_over_long_requests_get_a_clear_page(
    shared: Synced, clock: FakeClock, path: str, status: int
) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    answer = client.get(path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert "<h1>" in answer.text
    assert "<script" not in answer.text


def test_ledger_export_is_the_same_as_the_cli(
    shared: Synced, clock: FakeClock, tmp_path: Path
) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "{shared.settings.state.url}"\n', encoding="utf-8")
    runner = CliRunner()
    for fmt, extra in (("csv", []), ("jsonl", []), ("csv", ["--redact"])):
        out = tmp_path / f"export.{fmt}"
        result = runner.invoke(
            cli_app,
            [
                "--config",
                str(config),
                "ledger",
                "export",
                "--format",
                fmt,
                "--output",
                str(out),
                "--nip",
                shared.failing_nip,
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        params = {"format": fmt, "nip": shared.failing_nip}
        if extra:
            params["redact"] = "1"
        answer = client.get("/ledger/export", params=params)
        assert answer.status_code == 200
        assert "attachment" in answer.headers["content-disposition"]
        assert answer.content == out.read_bytes(), (fmt, extra)
    everything = client.get("/ledger/export", params={"format": "jsonl"}).text
    lines = [json.loads(line) for line in io.StringIO(everything)]
    assert len(lines) == _head(shared)[1]


def test_ledger_verify_page(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    digest, count = _head(shared)
    page = client.get("/ledger/verify").text
    assert "Ledger utuh (OK)" in page
    assert f"{digest}@{count}" in page
    wrong = client.get("/ledger/verify", params={"against": f"{'0' * 64}@{count}"}).text
    # A mistyped head is the head's problem, not the chain's (issue 27).
    assert f"head yang dimasukkan tidak cocok dengan entri #{count}" in wrong
    assert "Ledger utuh (OK)" in wrong


def test_ledger_search_and_paging(shared: Synced, clock: FakeClock) -> None:
    client = _app(shared, clock)
    login(client, *AUDITOR)
    page = client.get("/ledger", params={"q": "rejected"}).text
    assert shared.failing_nip in page
    assert "1 entri cocok" in page
    assert "Tidak ada entri" in client.get("/ledger", params={"q": "100%_"}).text


# -- operator actions (SQLite and PostgreSQL) ------------------------------------------------------


def test_operator_replays_a_failure_and_it_is_delivered(state_url: str, clock: FakeClock) -> None:
    with synced(state_url) as state:
        client = _app(state, clock)
        token = login(client, *OPERATOR)
        state.faults.update({"unknown_nips": []})  # BKN's register was corrected
        answer = client.post("/actions/replay", data={"csrf_token": token, "id": state.failure_id})
        assert answer.status_code == 200, answer.text
        assert 'data-status="delivered"' in answer.text
        assert _record_status(state) is RecordStatus.DELIVERED
        stats = state.box.target.stats()
        assert stats["creates"]["skp"][f"{state.failing_nip}/{PERIOD}"] == 1
        with Session(state.store.engine) as session:
            replays = [
                e for e in ledger.query(session, nip=state.failing_nip) if e.action == "replay"
            ]
            assert ledger.verify(session).ok
        assert [e.actor for e in replays] == ["operator:ana"]
        # Replaying what is no longer failed is refused, and says so.
        again = client.post("/actions/replay", data={"csrf_token": token, "id": state.failure_id})
        assert again.status_code == 409
        assert "bukan gagal" in again.text


def test_operator_discards_a_failure(state_url: str, clock: FakeClock) -> None:
    with synced(state_url) as state:
        client = _app(state, clock)
        token = login(client, *OPERATOR)
        head = _head(state)
        empty = client.post(
            "/actions/discard", data={"csrf_token": token, "id": state.failure_id, "why": "  "}
        )
        assert empty.status_code == 400
        secret = client.post(
            "/actions/discard",
            data={"csrf_token": token, "id": state.failure_id, "why": "Bearer abc"},
        )
        assert secret.status_code == 400
        assert _head(state) == head
        why = "pegawai pensiun <b>Juni</b>"
        answer = client.post(
            "/actions/discard", data={"csrf_token": token, "id": state.failure_id, "why": why}
        )
        assert answer.status_code == 200, answer.text
        assert "<b>Juni</b>" not in answer.text
        record = state.store.reports.record(PERIOD, state.failing_nip, DeliveryKind.SKP)
        assert record is not None
        assert record.status is RecordStatus.CANCELLED
        assert record.reason == f"discarded by ana: {why}"
        with Session(state.store.engine) as session:
            entries = list(ledger.query(session, nip=state.failing_nip))
            assert ledger.verify(session).ok
        assert entries[-1].action == "discard"
        assert entries[-1].actor == "operator:ana"
        assert entries[-1].detail is not None
        assert why in entries[-1].detail
        assert _head(state)[1] == head[1] + 1
        assert state.store.reports.failures(period=PERIOD) == []
        again = client.post(
            "/actions/discard", data={"csrf_token": token, "id": state.failure_id, "why": "x"}
        )
        assert again.status_code == 409


def test_an_empty_store_says_so(tmp_path: Path, clock: FakeClock) -> None:
    from sync.bootstrap import build_store
    from sync.settings import load_settings
    from tests.web.conftest import cheap_passwords

    settings = load_settings(None, overrides={"state": {"url": f"sqlite:///{tmp_path / 's.db'}"}})
    store = build_store(settings)
    passwords = cheap_passwords()
    add_user(store.engine, "budi", Role.AUDITOR, passwords.hash(AUDITOR[1]))
    client = client_for(
        create_web_app(settings, store, clock=clock, passwords=passwords, key=TEST_KEY)
    )
    login(client, *AUDITOR)
    assert "Belum ada data" in client.get("/").text
    assert client.get("/failures").status_code == 200
    assert "Ledger utuh (OK)" in client.get("/ledger/verify").text
    store.engine.dispose()


# -- the users command -----------------------------------------------------------------------------


def test_users_command(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    runner = CliRunner()

    def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
        result = runner.invoke(cli_app, ["--config", str(config), *args], input=stdin)
        return result.exit_code, result.output

    assert cli("db", "upgrade")[0] == 0  # users go into an existing store (issue 12, item 4)
    code, out = cli(
        "users", "add", "dewi", "--role", "operator", "--password-stdin", stdin="sandi-rahasia-d2\n"
    )
    assert code == 0, out
    code, out = cli(
        "users", "add", "eko", "--role", "auditor", stdin="sandi-rahasia-e1\nsandi-rahasia-e1\n"
    )
    assert code == 0, out
    assert (
        cli(
            "users",
            "add",
            "dewi",
            "--role",
            "auditor",
            "--password-stdin",
            stdin="kata-sandi-lain\n",
        )[0]
        == 1
    )
    assert (
        cli("users", "add", "fajar", "--role", "auditor", "--password-stdin", stdin="pendek\n")[0]
        == 1
    )
    assert (
        cli("users", "add", "gita", "--role", "auditor", stdin="kata-sandi-1\nlain-lagi-2\n")[0]
        == 1
    )
    assert (
        cli(
            "users",
            "add",
            "Bad Name",
            "--role",
            "auditor",
            "--password-stdin",
            stdin="sandi-rahasia-d2\n",
        )[0]
        == 1
    )
    assert (
        cli(
            "users",
            "add",
            "hadi",
            "--role",
            "admin",
            "--password-stdin",
            stdin="sandi-rahasia-d2\n",
        )[0]
        == 2
    )
    code, out = cli("users", "list")
    assert code == 0
    assert "dewi" in out
    assert "operator" in out
    assert "eko" in out
    assert "fajar" not in out
    assert "gita" not in out
    assert cli("users", "disable", "eko")[0] == 0
    assert "disabled" in cli("users", "list")[1]
    assert cli("users", "disable", "nobody")[0] == 1
    from sync.bootstrap import build_store
    from sync.settings import load_settings

    store = build_store(load_settings(config))
    user = get_user(store.engine, "dewi")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert "sandi-rahasia-d2" not in repr(user)
    store.engine.dispose()


def test_the_overview_shows_the_last_reconciliations_drift_per_school(
    shared: Synced, clock: FakeClock
) -> None:
    import datetime as dt
    import uuid

    from state.models import Run
    from sync.operations.reconcile import RECONCILE_OUTCOME

    client = _app(shared, clock)
    login(client, *AUDITOR)
    when = dt.datetime(2026, 11, 29, 19, 0, tzinfo=dt.UTC)  # 30 November, 02:00 WIB
    shared.store.save_run(
        Run(
            id=str(uuid.uuid4()),
            period=PERIOD,
            started_at=when,
            finished_at=when,
            outcome=RECONCILE_OUTCOME,
            summary={"schools_listed": 3, "untracked_by_school": {"P1234567": 2}},
        )
    )
    page = client.get(f"/?period={PERIOD}").text
    assert 'id="drift-schools"' in page
    assert "P1234567" in page
    assert "3 sekolah diperiksa" in page
    assert "30 Nov" in page or "2026-11-30" in page
