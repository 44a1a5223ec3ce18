"""Fixtures of the web console tests: a sandbox world with one failure (a NIP e-Kinerja does
not know) and a school whose name is an HTML attack, synced for real; console users; a clock
the tests move."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from connectors.sandbox import Faults, Sandbox, SandboxWorld, generate_world, running_sandbox
from state.login_throttle import LoginThrottle
from state.store import StateStore
from state.users import Role, add_user
from sync.bootstrap import build_app, build_store
from sync.settings import Settings, load_settings
from sync.web.auth import Passwords
from sync.web.keys import ConsoleKey
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"
SCRIPT_NAME = '<script>alert("x")</script> SD Negeri'
OPERATOR = ("ana", "kata-sandi-operator")
AUDITOR = ("budi", "kata-sandi-auditor")
# The console key of the tests (configured keys come from the environment or a file).
TEST_KEY = ConsoleKey.for_tests("test-console-key-" + "0123456789abcdef" * 2)


class FakeClock:
    """Now is whatever the test says (starts at the real now: the ledger's times are real)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def cheap_passwords() -> Passwords:
    """Argon2id with small costs: the tests log in often; production uses the defaults."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@dataclass
class Synced:
    world: SandboxWorld
    box: Sandbox
    faults: Faults
    settings: Settings
    store: StateStore
    failing_nip: str
    script_npsn: str
    passwords: Passwords

    @property
    def failure_id(self) -> str:
        return f"{PERIOD}/{self.failing_nip}/skp"


def _world() -> tuple[SandboxWorld, str, str]:
    world = generate_world(schools=3, teachers_per_school=5, seed=12, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    guru = next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    )
    npsn = guru["sekolah"]["npsn"]
    for record in world.records(PERIOD):
        if record["sekolah"]["npsn"] == npsn:
            world.update_record(record["id"], lambda r: r["sekolah"].update(nama=SCRIPT_NAME))
    return world, guru["pegawai"]["nip"], npsn


@contextmanager
def synced(state_url: str) -> Iterator[Synced]:
    """The sandbox up, a semester synced into ``state_url`` (one SKP refused with
    NIP_TIDAK_DITEMUKAN), an operator and an auditor; the sandbox stays up for replays."""
    world, nip, npsn = _world()
    faults = Faults(unknown_nips={nip})
    with running_sandbox(world, faults=faults) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": state_url},
                "source": {"base_url": box.pmm_url, "page_size": 50},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
                "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.1, "max_attempts": 3},
            },
        )
        with build_app(settings, actor="cli") as app:
            app.engine.run(PERIOD)
        store = build_store(settings)
        passwords = cheap_passwords()
        for (name, password), role in ((OPERATOR, Role.OPERATOR), (AUDITOR, Role.AUDITOR)):
            add_user(store.engine, name, role, passwords.hash(password))
        try:
            yield Synced(world, box, faults, settings, store, nip, npsn, passwords)
        finally:
            store.engine.dispose()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_in(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match[1]


def login(client: TestClient, name: str, password: str) -> str:
    """Log in through the form; returns the session's CSRF token (from a page after login)."""
    token = csrf_in(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"csrf_token": token, "username": name, "password": password, "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_in(client.get("/").text)


def client_for(app: Any) -> TestClient:
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def clear_throttle(store: StateStore) -> None:
    """Forget every counted login attempt (tests sharing one store start afresh)."""
    from sqlalchemy import delete
    from sqlmodel import Session

    with Session(store.engine) as session:
        session.connection().execute(delete(LoginThrottle))
        session.commit()


# -- issue 27: a busy year -----------------------------------------------------------------------

BUSY_PERIOD = "2026"  # the running year, synced
UNSYNCED_PERIOD = "2025"  # listed by PMM, never synced


@dataclass
class Busy:
    """A year synced against the sandbox with every kind of open problem: one school's unit
    kerja inactive (its 19 SKPs failed with UNOR_TIDAK_AKTIF), one kepala sekolah whose NIP
    BKN does not know (their SKP failed, their gurus' SKPs held behind it), quarantined
    records, records waiting on the schools; 2025 listed by PMM but never synced."""

    world: SandboxWorld
    box: Sandbox
    faults: Faults
    settings: Settings
    store: StateStore
    passwords: Passwords
    inactive_npsn: str
    blocked_npsn: str
    principal_nip: str


@contextmanager
def busy(state_url: str) -> Iterator[Busy]:
    world = generate_world(
        schools=3, teachers_per_school=20, seed=3, periods=[UNSYNCED_PERIOD, BUSY_PERIOD]
    )
    npsns = sorted(school["npsn"] for school in world.schools)
    principal = next(
        r["pegawai"]["nip"]
        for r in world.records(BUSY_PERIOD)
        if r["sekolah"]["npsn"] == npsns[1] and r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
    )
    faults = Faults(inactive_npsns={npsns[0]}, unknown_nips={principal})
    with running_sandbox(world, faults=faults) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": state_url},
                "source": {"base_url": box.pmm_url, "page_size": 50},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
                "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.1, "max_attempts": 3},
            },
        )
        with build_app(settings, actor="cli") as app:
            app.engine.run(BUSY_PERIOD)
        store = build_store(settings)
        passwords = cheap_passwords()
        for (name, password), role in ((OPERATOR, Role.OPERATOR), (AUDITOR, Role.AUDITOR)):
            add_user(store.engine, name, role, passwords.hash(password))
        try:
            yield Busy(
                world, box, faults, settings, store, passwords, npsns[0], npsns[1], principal
            )
        finally:
            store.engine.dispose()
