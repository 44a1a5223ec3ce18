"""Issue 13: the attacks that got through the console, each one refused.

1. A cookie made from what a copy of the database holds (the signing key used to be kept in
   it): signed with any value read from a ``.backup`` copy (SQLite) or through a read-only
   database account (PostgreSQL), or written into the store by hand, it is nobody.
2. A parallel burst of logins for one name: at most the limit is checked, the rest wait.
3. ``X-Forwarded-For`` from a peer that is not a trusted proxy is ignored (over real uvicorn,
   which believes it from 127.0.0.1 by default); from a trusted proxy the client it names is
   the one counted, so clients behind one proxy do not share a budget.
4. A cookie replayed after logout (``test_web_http``), and here: backoff, not a lock for good.
Also: extreme dates, CSV cells a spreadsheet would run, secret-looking reasons, the key's
file and the refusal to serve beyond loopback without a key.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from itsdangerous import URLSafeSerializer
from sqlmodel import Session
from starlette.testclient import TestClient
from typer.testing import CliRunner

from state import ledger
from state.login_throttle import login_throttles
from state.models import DeliveryKind, RecordStatus
from state.store import StateStore
from state.users import Role, add_user
from sync.bootstrap import build_store
from sync.cli import app as cli_app
from sync.operations.ledger_export import safe_cell
from sync.secrets_guard import secret_problem
from sync.settings import ConfigError, Settings, load_settings
from sync.web.app import create_web_app
from sync.web.auth import COOKIE, DEVICE_COOKIE, LoginPolicy
from sync.web.keys import ConsoleKey, console_key, require_lasting_key
from sync.web.server import start_in_thread
from tests.web.conftest import (
    AUDITOR,
    OPERATOR,
    PERIOD,
    TEST_KEY,
    FakeClock,
    Synced,
    cheap_passwords,
    client_for,
    csrf_in,
    login,
    synced,
)

WRONG = "bukan-kata-sandinya"


def _head(store: StateStore) -> tuple[str, int]:
    with Session(store.engine) as session:
        return ledger.head(session)


def _status(state: Synced) -> RecordStatus:
    record = state.store.reports.record(PERIOD, state.failing_nip, DeliveryKind.SKP)
    assert record is not None
    return record.status


@contextmanager
def _bare(tmp_path: Path, **web: Any) -> Iterator[tuple[Settings, StateStore]]:
    """An empty store with the operator and the auditor; ``web`` settings as given."""
    settings = load_settings(
        None, overrides={"state": {"url": f"sqlite:///{tmp_path / 's.db'}"}, "web": web}
    )
    store = build_store(settings)
    passwords = cheap_passwords()
    for (name, password), role in ((OPERATOR, Role.OPERATOR), (AUDITOR, Role.AUDITOR)):
        add_user(store.engine, name, role, passwords.hash(password))
    try:
        yield settings, store
    finally:
        store.engine.dispose()


# -- 1. a copy of the database forges nothing ------------------------------------------------------


def _all_strings(engine: sa.Engine) -> set[str]:
    """Every text value in every table, as someone holding a copy would read them."""
    found: set[str] = set()
    with engine.connect() as connection:
        for name in sa.inspect(connection).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=connection)
            for row in connection.execute(sa.select(table)):
                found.update(v for v in row if isinstance(v, str) and v)
    return found


@contextmanager
def _database_copy(state_url: str, tmp_path: Path) -> Iterator[sa.Engine]:
    """SQLite: a ``.backup`` copy of the file. PostgreSQL: the live database through an
    account that may only read (what an auditor would be given)."""
    if state_url.startswith("sqlite"):
        source = sqlite3.connect(state_url.removeprefix("sqlite:///"))
        copy_path = tmp_path / "copy.db"
        target = sqlite3.connect(copy_path)
        source.backup(target)
        source.close()
        target.close()
        engine = sa.create_engine(f"sqlite:///{copy_path}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    import psycopg

    role = f"ekinerja_ro_{uuid.uuid4().hex[:10]}"
    admin = state_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    engine = sa.create_engine(state_url.replace("//postgres@", f"//{role}@", 1))
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.ProgrammingError):
            connection.execute(sa.text("DELETE FROM console_session"))  # it only reads
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def _forgeries(value: str, now: float) -> list[tuple[str, str]]:
    """(cookie, csrf token) an attacker could make from one value read from the store."""
    token = "a-token-of-my-own"
    signed = URLSafeSerializer(value, salt="ekinerja-sync.web.session").dumps(
        {"u": OPERATOR[0], "c": token, "t": now}
    )
    mac = hmac.new(value.encode(), token.encode(), hashlib.sha256).hexdigest()
    return [(str(signed), token), ("s." + value, token), (value, token), ("s." + mac, token)]


def test_a_copy_of_the_database_forges_no_session(
    state_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    """Issue 13, 1: a cookie signed with the key read from a database copy got past login
    and CSRF as an operator. Now nothing read from the store makes a cookie: not the
    session rows (only keyed hashes), not any other value."""
    with synced(state_url) as state:
        app = create_web_app(
            state.settings, state.store, clock=clock, passwords=state.passwords, key=TEST_KEY
        )
        operator = client_for(app)
        login(operator, *OPERATOR)  # a live operator session is in the store
        with _database_copy(state_url, tmp_path) as copy:
            values = _all_strings(copy)
            assert "console_session" in sa.inspect(copy).get_table_names()
        assert operator.cookies[COOKIE][2:] not in "".join(values)  # the id is not kept
        head = _head(state.store)
        attacker = client_for(app)
        now = clock().timestamp()
        for value in sorted(values):
            for cookie, _token in _forgeries(value, now):
                attacker.cookies.clear()
                attacker.cookies.set(COOKIE, cookie)
                assert attacker.get("/").status_code == 303, value[:80]
        # The values that look like keys or ids (hex, 32+), each tried on a discard too.
        keyish = [v for v in values if len(v) >= 32 and all(c in "0123456789abcdef" for c in v)]
        for value in keyish[:300]:
            for cookie, token in _forgeries(value, now):
                attacker.cookies.clear()
                attacker.cookies.set(COOKIE, cookie)
                answer = attacker.post(
                    "/actions/discard",
                    data={"csrf_token": token, "id": state.failure_id, "why": "forged"},
                )
                assert answer.status_code == 403, value[:80]
        assert _status(state) is RecordStatus.FAILED
        assert _head(state.store) == head
        assert operator.get("/").status_code == 200  # the real session is untouched


def test_a_session_row_written_into_the_store_by_hand_is_nobody(
    shared_bare: tuple[Settings, StateStore], clock: FakeClock
) -> None:
    """Even with write access: a row needs HMAC(key, id), and the key is not in the store."""
    settings, store = shared_bare
    user = next(iter(store.engine.connect().execute(sa.text("SELECT id FROM console_user"))))[0]
    session_id = "my-own-session-id-" + "x" * 30
    now = clock()
    with store.engine.begin() as connection:
        for id_hash in (
            hashlib.sha256(session_id.encode()).hexdigest(),
            hmac.new(b"", session_id.encode(), hashlib.sha256).hexdigest(),
        ):
            connection.execute(
                sa.text(
                    "INSERT INTO console_session (id_hash, user_id, created_at, last_seen_at) "
                    "VALUES (:h, :u, :t, :t)"
                ),
                {"h": id_hash, "u": user, "t": now},
            )
    client = client_for(create_web_app(settings, store, clock=clock, key=TEST_KEY))
    client.cookies.set(COOKIE, "s." + session_id)
    assert client.get("/").status_code == 303


@pytest.fixture
def shared_bare(tmp_path: Path) -> Iterator[tuple[Settings, StateStore]]:
    with _bare(tmp_path) as pair:
        yield pair


def test_no_key_is_kept_in_the_store(shared_bare: tuple[Settings, StateStore]) -> None:
    _, store = shared_bare
    tables = set(sa.inspect(store.engine).get_table_names())
    assert "console_secret" not in tables
    assert {"console_session", "console_login_throttle"} <= tables


# -- the key: environment, or a file made 0600; refused beyond loopback without one ---------------


def test_the_key_file_is_made_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "console.key"
    settings = load_settings(None, overrides={"web": {"secret_key_file": str(path)}})
    first = console_key(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.lasting
    assert console_key(settings).value == first.value
    assert first.value.decode() not in repr(first)
    path.chmod(0o644)
    with pytest.raises(ConfigError) as raised:
        console_key(settings)
    assert "web.secret_key_file" in str(raised.value)
    assert str(path) in str(raised.value)
    path.chmod(0o600)
    path.write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        console_key(settings)
    assert "short" not in str(raised.value)


def test_a_short_key_or_an_odd_proxy_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_WEB__SECRET_KEY", "tiny-secret")
    with pytest.raises(ConfigError) as raised:
        load_settings(None)
    assert "EKINERJA_SYNC_WEB__SECRET_KEY" in str(raised.value)
    assert "tiny-secret" not in str(raised.value)
    monkeypatch.delenv("EKINERJA_SYNC_WEB__SECRET_KEY")
    config = tmp_path / "c.toml"
    config.write_text('[web]\ntrusted_proxies = ["10.0.0.0/8", "not-an-ip"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "web.trusted_proxies" in str(raised.value)
    assert str(config) in str(raised.value)


ANY_ADDRESS = "0.0.0.0"  # noqa: S104  (nothing binds to it: the point is the refusal)


def test_no_serving_beyond_loopback_without_a_key(tmp_path: Path) -> None:
    with _bare(tmp_path) as (settings, store):
        with pytest.raises(ConfigError, match="beyond this machine"):
            start_in_thread(settings, store, host=ANY_ADDRESS, port=0)
        config = tmp_path / "c.toml"
        config.write_text(f'[state]\nurl = "{settings.state.url}"\n', encoding="utf-8")
        result = CliRunner().invoke(
            cli_app, ["--config", str(config), "web", "--host", ANY_ADDRESS, "--port", "0"]
        )
        assert result.exit_code == 2
        assert "EKINERJA_SYNC_WEB__SECRET_KEY" in " ".join(result.stderr.split())
        # With a key (here from a file), it is allowed.
        keyed = settings.model_copy(
            update={"web": settings.web.model_copy(update={"secret_key_file": str(tmp_path / "k")})}
        )
        require_lasting_key(console_key(keyed), ANY_ADDRESS)
        with pytest.raises(ConfigError):
            require_lasting_key(ConsoleKey(b"x" * 32, "process", lasting=False), "10.1.2.3")


# -- 2. login limits that hold under concurrency ---------------------------------------------------


def _burst(apps: list[Any], name: str, passwords: list[str], client: str) -> list[int]:
    """Every password posted at once for ``name`` (spread over ``apps``: consoles on one
    store), from the address ``client``; the status codes."""

    async def run() -> list[int]:
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(client, 4000)),
                base_url="http://console",
            )
            for app in apps
        ]
        try:
            page = await clients[0].get("/login")
            token = csrf_in(page.text)
            for other in clients[1:]:
                other.cookies.set(COOKIE, clients[0].cookies[COOKIE])
            answers = await asyncio.gather(
                *(
                    clients[i % len(clients)].post(
                        "/login",
                        data={"csrf_token": token, "username": name, "password": password},
                    )
                    for i, password in enumerate(passwords)
                )
            )
            return [answer.status_code for answer in answers]
        finally:
            for c in clients:
                await c.aclose()

    return asyncio.run(run())


def test_a_parallel_login_burst_checks_no_more_than_the_limit(
    state_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """Issue 13, 2: 60 parallel logins for one name (59 wrong, then the right one) gave
    59 x 401 and a 303, never 429. Counted before the check, atomically, across two consoles
    on one store: at most 5 passwords are checked, and then even the right one waits."""
    settings = load_settings(None, overrides={"state": {"url": state_url}})
    store = build_store(settings)
    try:
        passwords = cheap_passwords()
        add_user(store.engine, OPERATOR[0], Role.OPERATOR, passwords.hash(OPERATOR[1]))
        apps = [
            create_web_app(settings, store, clock=clock, passwords=passwords, key=TEST_KEY)
            for _ in range(2)
        ]
        codes = _burst(apps, OPERATOR[0], [WRONG] * 59, "198.51.100.7")
        assert codes.count(401) <= 5, codes
        assert codes.count(429) >= 54, codes
        assert set(codes) <= {401, 429}
        # The right password, now: refused without being checked.
        codes = _burst(apps, OPERATOR[0], [OPERATOR[1]], "198.51.100.8")
        assert codes == [429]
        throttle = login_throttles(store.engine, [f"user:{OPERATOR[0]}"])[f"user:{OPERATOR[0]}"]
        assert throttle.attempts == 5
    finally:
        store.engine.dispose()


def test_backoff_not_a_lock_for_good(tmp_path: Path, clock: FakeClock) -> None:
    """A stranger's wrong passwords make the name wait, doubling up to a cap; the refused
    attempts do not lengthen it, and once the wait is over the user gets in. ``users list``
    shows the name backing off. At a browser where they logged in before (a device cookie)
    the user gets in even while the name waits."""
    policy = LoginPolicy(max_per_user=3, window_s=3600, base_delay_s=60, max_delay_s=240)
    with _bare(tmp_path) as (settings, store):
        app = create_web_app(
            settings,
            store,
            clock=clock,
            passwords=cheap_passwords(),
            key=TEST_KEY,
            login_policy=policy,
        )
        stranger, user = TestClient(app, client=("203.0.113.66", 1)), client_for(app)
        elsewhere = client_for(app)  # the user at another browser
        token = login(user, *OPERATOR)  # the user's own browser gets a device cookie
        assert user.post("/logout", data={"csrf_token": token}).status_code == 303
        device = user.cookies[DEVICE_COOKIE]

        def post(client: TestClient, password: str) -> Any:  # TestClient's own response type
            token = csrf_in(client.get("/login").text)
            return client.post(
                "/login",
                data={"csrf_token": token, "username": OPERATOR[0], "password": password},
                follow_redirects=False,
            )

        assert [post(stranger, WRONG).status_code for _ in range(3)] == [401] * 3
        waits = []
        for expected_wait in (60, 120, 240, 240):  # doubling, capped
            refused = post(stranger, WRONG)
            assert refused.status_code == 429
            waits.append(int(refused.headers["retry-after"]))
            for _ in range(10):  # hammering while it waits changes nothing
                assert post(stranger, WRONG).status_code == 429
            assert post(elsewhere, OPERATOR[1]).status_code == 429
            clock.advance(expected_wait + 1)
            assert post(stranger, WRONG).status_code == 401
        assert waits == [61, 121, 241, 241]
        config = tmp_path / "c.toml"
        config.write_text(f'[state]\nurl = "{settings.state.url}"\n', encoding="utf-8")
        listed = CliRunner().invoke(cli_app, ["--config", str(config), "users", "list"])
        assert "backing off until" in " ".join(listed.output.split())
        # While the name waits: the user's own browser gets in; a forged or another name's
        # device cookie does not help anyone else.
        assert post(stranger, WRONG).status_code == 429
        answer = post(user, OPERATOR[1])
        assert answer.status_code == 303
        assert user.get("/").status_code == 200
        for forged in (device[:-2] + "xx", device.replace(OPERATOR[0], AUDITOR[0], 1)):
            stranger.cookies.set(DEVICE_COOKIE, forged, path="/login")
            assert post(stranger, WRONG).status_code == 429
        stranger.cookies.set(DEVICE_COOKIE, device, path="/login")  # stolen: its own budget
        assert [post(stranger, WRONG).status_code for _ in range(4)] == [401] * 3 + [429]
        clock.advance(241)
        assert post(elsewhere, OPERATOR[1]).status_code == 303


# -- 3. the client's address: X-Forwarded-For only from trusted proxies ----------------------------


def _login_posts(url: str, count: int, *, forwarded: list[str]) -> list[int]:
    """``count`` wrong logins, each for another name (only the address budget applies) and
    with the next ``X-Forwarded-For`` value."""
    codes = []
    with httpx.Client(base_url=url, timeout=10) as client:
        token = csrf_in(client.get("/login").text)
        for i in range(count):
            answer = client.post(
                "/login",
                data={"csrf_token": token, "username": f"nama{i}", "password": WRONG},
                headers={"x-forwarded-for": forwarded[i % len(forwarded)]},
            )
            codes.append(answer.status_code)
    return codes


def _serve(settings: Settings, store: StateStore, policy: LoginPolicy) -> Any:
    app = create_web_app(
        settings, store, passwords=cheap_passwords(), key=TEST_KEY, login_policy=policy
    )
    return start_in_thread(settings, store, host="127.0.0.1", port=0, app=app)


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    """Issue 13, 3: uvicorn believed X-Forwarded-For from 127.0.0.1, so a new value per guess
    was a new address budget. Over real uvicorn, with no trusted proxy: one budget."""
    policy = LoginPolicy(max_per_client=5)
    with _bare(tmp_path) as (settings, store):
        running = _serve(settings, store, policy)
        try:
            spoofed = [f"192.0.2.{i}" for i in range(1, 30)]
            codes = _login_posts(running.url, 12, forwarded=spoofed)
        finally:
            running.stop()
        assert codes[:5] == [401] * 5
        assert codes[5:] == [429] * 7
        assert "addr:127.0.0.1" in login_throttles(store.engine, ["addr:127.0.0.1"])


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(tmp_path: Path) -> None:
    """From a trusted proxy the client is the right-most address it did not add itself:
    two clients behind it do not share a budget, and a client spoofing the left of the
    header (the proxy appends the real address) still has only its own."""
    policy = LoginPolicy(max_per_client=5)
    with _bare(tmp_path, trusted_proxies=["127.0.0.1/32"]) as (settings, store):
        running = _serve(settings, store, policy)
        try:
            first = _login_posts(running.url, 7, forwarded=["198.51.100.1"])
            second = _login_posts(running.url, 3, forwarded=["198.51.100.2"])
            spoofing = _login_posts(
                running.url,
                7,
                forwarded=[f"192.0.2.{i}, 198.51.100.3" for i in range(1, 30)],
            )
        finally:
            running.stop()
        assert first == [401] * 5 + [429] * 2
        assert second == [401] * 3
        assert spoofing == [401] * 5 + [429] * 2
        known = login_throttles(
            store.engine, ["addr:127.0.0.1", "addr:198.51.100.3", "addr:192.0.2.1"]
        )
        assert set(known) == {"addr:198.51.100.3"}


def test_a_trusted_proxy_tells_the_scheme(tmp_path: Path) -> None:
    with _bare(tmp_path, trusted_proxies=["10.0.0.0/8"]) as (settings, store):
        app = create_web_app(settings, store, passwords=cheap_passwords(), key=TEST_KEY)
        behind = TestClient(app, client=("10.1.2.3", 1))
        answer = behind.get("/login", headers={"x-forwarded-proto": "https"})
        assert "secure" in answer.headers["set-cookie"].lower()
        direct = TestClient(app, client=("192.0.2.9", 1))
        answer = direct.get("/login", headers={"x-forwarded-proto": "https"})
        assert "secure" not in answer.headers["set-cookie"].lower()


# -- extreme dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "/ledger?until=9999-12-31",
        "/ledger?since=0001-01-01",
        "/ledger/export?until=9999-12-31",
        "/ledger/export?format=jsonl&since=0001-01-01",
    ],
)
def test_dates_beyond_what_the_ledger_holds_get_a_400(
    shared_bare: tuple[Settings, StateStore], clock: FakeClock, query: str
) -> None:
    settings, store = shared_bare
    client = client_for(
        create_web_app(settings, store, clock=clock, passwords=cheap_passwords(), key=TEST_KEY)
    )
    login(client, *AUDITOR)
    answer = client.get(query)
    assert answer.status_code == 400
    assert "di luar rentang" in answer.text
    assert "0001-01-02" in answer.text
    assert "9999-12-30" in answer.text
    edge = query.replace("9999-12-31", "9999-12-30").replace("0001-01-01", "0001-01-02")
    assert client.get(edge).status_code == 200


# -- CSV cells a spreadsheet would run -------------------------------------------------------------

_ATTACKS = [
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    ' =HYPERLINK("http://x")',
    "  \u00a0=1",
    "\u3000=1",
    "\uff1d1+1",  # full-width =
    "\uff0bcmd",
    "\uff20SUM(A1)",
    "|calc!A0",
    "\uff5ccalc",
    "%0A=1",
    "\u200b=1",  # a zero-width space first
    "\x00=1",
]
_HARMLESS = ["pegawai pensiun", "2025-1", "198503152010012003", "", "a=b", "Rp 1.000"]


def test_csv_cells_are_neutralised_per_owasp() -> None:
    for cell in _ATTACKS:
        assert safe_cell(cell) == "'" + cell, repr(cell)
    for cell in _HARMLESS:
        assert safe_cell(cell) == cell
    assert safe_cell(-5) == -5


def test_the_csv_export_neutralises_every_attack(
    shared_bare: tuple[Settings, StateStore], clock: FakeClock
) -> None:
    settings, store = shared_bare
    with Session(store.engine) as session:
        for cell in _ATTACKS:
            ledger.append(
                session,
                ledger.LedgerEvent(actor="cli", action="test", outcome="done", detail=cell),
                at=clock(),
            )
        session.commit()
    client = client_for(
        create_web_app(settings, store, clock=clock, passwords=cheap_passwords(), key=TEST_KEY)
    )
    login(client, *AUDITOR)
    answer = client.get("/ledger/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"), newline="")))
    details = [row["detail"] for row in rows if row["action"] == "test"]
    assert details == ["'" + cell for cell in _ATTACKS]


# -- secret-looking text -------------------------------------------------------------------------

_SECRETS = [
    "password=rahasia-sekali",
    "lupa, PASSWORD: hunter2hunter2",
    "kata sandi: rahasia",
    "token=abc123",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJl",
    "lihat eyJhbGciOiJIUzI1NiJ9",
    "Bearer abc",
    "Authorization: Basic YW5hOnJhaGFzaWE=",
    "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff1dx",  # full-width password=x
    "https://ana:rahasia@pmm.example/",
    "-----BEGIN RSA PRIVATE KEY-----",
    "kunci AKIAABCDEFGHIJKLMNOP",
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
]
_PLAIN = [
    "pegawai pensiun Juni 2025",
    "NIP 198503152010012003 pindah ke NPSN 20100101",
    "sudah dibatalkan di PMM, lihat tiket #123",
    "token habis, akan diulang",
    "kata sandinya salah di PMM",
    "basic gaji belum ada",
]


def test_the_secret_detector() -> None:
    for text in _SECRETS:
        problem = secret_problem(text)
        assert problem is not None, text
        assert text not in problem
    for text in _PLAIN:
        assert secret_problem(text) is None, text


def test_a_discard_reason_that_looks_secret_is_refused(state_url: str, clock: FakeClock) -> None:
    """Issue 13: a reason holding ``password=...`` or a JWT was written to the ledger."""
    with synced(state_url) as state:
        client = client_for(
            create_web_app(
                state.settings, state.store, clock=clock, passwords=state.passwords, key=TEST_KEY
            )
        )
        token = login(client, *OPERATOR)
        head = _head(state.store)
        for why in ("password=rahasia-sekali", _SECRETS[4], "ok, token: 123456"):
            answer = client.post(
                "/actions/discard", data={"csrf_token": token, "id": state.failure_id, "why": why}
            )
            assert answer.status_code == 400, why
            assert "tampak berisi rahasia" in answer.text
            assert why not in answer.text
        assert _head(state.store) == head
        assert _status(state) is RecordStatus.FAILED
        with Session(state.store.engine) as session:
            text = " ".join(str(e.model_dump()) for e in ledger.query(session))
        assert "rahasia-sekali" not in text
        assert "eyJhbGci" not in text


# -- the users command: passwd, role, and their ledger lines ---------------------------------------


def test_user_changes_are_in_the_ledger_without_passwords(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{tmp_path / "s.db"}"\n', encoding="utf-8")
    runner = CliRunner()

    def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
        result = runner.invoke(cli_app, ["--config", str(config), *args], input=stdin)
        return result.exit_code, result.output

    assert cli("db", "upgrade")[0] == 0  # users go into a store made on purpose
    assert cli("users", "add", "dewi", "--role", "auditor", "--password-stdin",
               stdin="kata-sandi-pertama\n")[0] == 0  # fmt: skip
    assert cli("users", "passwd", "dewi", "--password-stdin", stdin="kata-sandi-kedua\n")[0] == 0
    assert cli("users", "passwd", "dewi", "--password-stdin", stdin="pendek\n")[0] == 1
    assert cli("users", "passwd", "nobody", "--password-stdin", stdin="kata-sandi-x12\n")[0] == 1
    assert cli("users", "passwd", "dewi", stdin="kata-sandi-ketiga\nlain-sekali-3\n")[0] == 1
    assert cli("users", "role", "dewi", "--role", "operator")[0] == 0
    assert cli("users", "disable", "dewi")[0] == 0
    assert cli("users", "enable", "dewi")[0] == 0
    assert cli("users", "role", "nobody", "--role", "operator")[0] == 1
    store = build_store(load_settings(config))
    try:
        from sync.web.auth import Passwords

        user = (
            store.engine.connect()
            .execute(sa.text("SELECT password_hash, role FROM console_user WHERE name = 'dewi'"))
            .one()
        )
        assert Passwords().verify(user[0], "kata-sandi-kedua")
        assert user[1] == "OPERATOR"
        with Session(store.engine) as session:
            entries = list(ledger.query(session))
            assert ledger.verify(session).ok
        assert [(e.actor, e.action) for e in entries] == [
            ("cli", "user_add"),
            ("cli", "user_passwd"),
            ("cli", "user_role"),
            ("cli", "user_disable"),
            ("cli", "user_enable"),
        ]
        everything = " ".join(str(e.model_dump()) for e in entries)
        for secret in ("kata-sandi", "argon2", user[0]):
            assert secret not in everything
        assert "role of user dewi changed from auditor to operator" in everything
    finally:
        store.engine.dispose()


def test_old_login_counts_are_swept_but_waits_are_kept(
    shared_bare: tuple[Settings, StateStore], clock: FakeClock
) -> None:
    """A flood of made-up names does not fill the store: counts older than the window go,
    unless the key is still waiting."""
    from state.login_throttle import count_login_attempt

    _, store = shared_bare
    options = {"window_s": 60.0, "base_delay_s": 600.0, "max_delay_s": 600.0}
    for i in range(50):
        assert (
            count_login_attempt(store.engine, [(f"user:made-up-{i}", 5)], clock(), **options) == 0
        )
    assert count_login_attempt(store.engine, [("user:waiting", 1)], clock(), **options) == 0
    clock.advance(120)
    assert count_login_attempt(store.engine, [("user:now", 5)], clock(), **options) == 0
    keys = [f"user:made-up-{i}" for i in range(50)] + ["user:waiting", "user:now"]
    assert set(login_throttles(store.engine, keys)) == {"user:waiting", "user:now"}
