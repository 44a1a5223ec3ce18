"""The web console in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against the console served by uvicorn on loopback
over a state store filled by a real sync against the sandbox.

Journeys: an auditor logs in, opens the overview, follows a failure to its teacher page, sees
no replay button, and is refused when posting a replay anyway; an operator does the same,
fixes the cause on the sandbox's side, replays in the browser and sees the record delivered;
wrong passwords make a name wait, and a session cookie put back after logout opens nothing.

Screenshots of the main pages go to ``test-artifacts/`` (the README's overview is taken by
``test_console_browser``, of the running year). Without Chromium the tests are
skipped with the reason, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox import Faults, generate_world, running_sandbox
from state.models import DeliveryKind, RecordStatus
from state.users import Role, add_user
from sync.bootstrap import build_app, build_store
from sync.settings import load_settings
from sync.web.app import create_web_app
from sync.web.auth import COOKIE, LoginPolicy
from sync.web.server import RunningConsole, start_in_thread
from tests.web.conftest import (
    AUDITOR,
    OPERATOR,
    PERIOD,
    TEST_KEY,
    Synced,
    cheap_passwords,
    synced,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
WIDTH, HEIGHT = 1366, 768  # a small laptop screen
_WAIT_S = 15


def _binaries() -> tuple[str, str] | str:
    """(chromium, chromedriver) or why they cannot be used."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[dev]')"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return (
            "no chromium / chromedriver on PATH (Debian: apt-get install chromium "
            "chromium-driver; .ci/run installs them)"
        )
    return browser, driver


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    found = _binaries()
    if isinstance(found, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {found}")
        pytest.skip(found)
    browser, chromedriver = found
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    profile = tempfile.mkdtemp(prefix="ekinerja-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--lang=id-ID",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(chromedriver), options=options)
    chrome.set_page_load_timeout(_WAIT_S)
    try:
        yield chrome
    finally:
        chrome.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Synced, RunningConsole]]:
    with synced(f"sqlite:///{tmp_path / 'state.db'}") as state:
        app = create_web_app(
            state.settings,
            state.store,
            passwords=state.passwords,
            key=TEST_KEY,
            login_policy=LoginPolicy(max_per_user=3),
        )
        running = start_in_thread(state.settings, state.store, port=0, app=app)
        try:
            yield state, running
        finally:
            running.stop()


# -- helpers ---------------------------------------------------------------------------------------


def _wait(chrome: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(chrome, _WAIT_S).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def _find(chrome: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(chrome.find_elements(By.CSS_SELECTOR, css))


def _screenshot(chrome: Any, name: str) -> Path:
    """The whole page (the window is stretched to it), then the window is set back."""
    ARTIFACTS.mkdir(exist_ok=True)
    height = int(chrome.execute_script("return document.documentElement.scrollHeight"))
    chrome.set_window_size(WIDTH, min(max(height + 100, HEIGHT), 4000))
    path = ARTIFACTS / f"console-{name}.png"
    chrome.save_screenshot(str(path))
    chrome.set_window_size(WIDTH, HEIGHT)
    return path


def _login(chrome: Any, base: str, who: tuple[str, str]) -> None:
    chrome.delete_all_cookies()
    chrome.get(base + "/login")
    _wait(chrome, "#username").send_keys(who[0])
    _find(chrome, "#password")[0].send_keys(who[1])
    _find(chrome, "#login")[0].click()
    _wait(chrome, "#who")
    assert who[0] in _find(chrome, "#who")[0].text


def _open_overview_and_follow_the_failure(chrome: Any, base: str, state: Synced) -> None:
    chrome.get(base + "/")
    _wait(chrome, "#progress-chart")
    assert "Ringkasan periode" in chrome.page_source
    # Fits a small laptop screen: nothing scrolls sideways.
    overflow = chrome.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the overview is {overflow}px wider than the window"
    _find(chrome, 'nav a[href="/failures"]')[0].click()
    row = _wait(chrome, f'tr[data-id="{state.failure_id}"]')
    assert "BKN tidak mengenal NIP ini" in row.text
    row.find_element("css selector", "a.teacher-link").click()
    _wait(chrome, "#teacher-name")
    assert state.failing_nip in chrome.page_source
    assert "NIP_TIDAK_DITEMUKAN" in chrome.page_source


def _status(state: Synced) -> RecordStatus:
    record = state.store.reports.record(PERIOD, state.failing_nip, DeliveryKind.SKP)
    assert record is not None
    return record.status


# -- journeys --------------------------------------------------------------------------------------


def test_auditor_reads_but_cannot_replay(
    driver: Any, console: tuple[Synced, RunningConsole]
) -> None:
    state, running = console
    _login(driver, running.url, AUDITOR)
    driver.get(running.url + "/")
    _wait(driver, "#progress-chart")
    _screenshot(driver, "overview-auditor")
    _open_overview_and_follow_the_failure(driver, running.url, state)
    assert _find(driver, "button.replay") == []
    assert _find(driver, 'form[action="/actions/discard"]') == []
    assert "Hanya operator yang dapat" in driver.page_source
    _screenshot(driver, "teacher-auditor")

    # Posting a replay anyway (a hand-made form with the session's valid CSRF token): 403.
    state.faults.update({"unknown_nips": []})  # it would succeed if it were let through
    driver.execute_script(
        """
        const token = document.querySelector('input[name="csrf_token"]').value;
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/actions/replay';
        for (const [name, value] of [['csrf_token', token], ['id', arguments[0]]]) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """,
        state.failure_id,
    )
    error = _wait(driver, "#error")
    assert "Tidak diizinkan" in error.text
    assert "HTTP 403" in error.text
    _screenshot(driver, "auditor-refused")
    assert _status(state) is RecordStatus.FAILED

    # The auditor's own pages: the ledger (with exports) and its verification.
    driver.get(running.url + "/ledger")
    _wait(driver, "#ledger")
    assert _find(driver, "#export-csv")
    assert _find(driver, "#export-jsonl")
    exported = driver.execute_script(
        "return fetch('/ledger/export?format=csv').then(r => r.text())"
    )
    assert exported.lstrip("\ufeff").startswith("seq,at,time_wib,")
    _screenshot(driver, "ledger")
    driver.get(running.url + "/ledger/verify")
    assert "Ledger utuh (OK)" in _wait(driver, "#verdict").text
    _screenshot(driver, "verify")


def test_operator_follows_a_failure_replays_it_and_sees_it_delivered(
    driver: Any, console: tuple[Synced, RunningConsole]
) -> None:
    state, running = console
    _login(driver, running.url, OPERATOR)
    _open_overview_and_follow_the_failure(driver, running.url, state)
    button = _find(driver, f"#replay-{PERIOD}-skp")
    assert button, "the operator sees a replay button on a failed record"
    _screenshot(driver, "teacher-failed")

    state.faults.update({"unknown_nips": []})  # BKN's register was corrected
    button[0].click()
    result = _wait(driver, "#replay-result")
    assert result.find_elements("css selector", '[data-status="delivered"]')
    assert "terkirim" in result.text
    _screenshot(driver, "replay-result")
    assert _status(state) is RecordStatus.DELIVERED
    assert state.box.target.stats()["creates"]["skp"][f"{state.failing_nip}/{PERIOD}"] == 1

    result.find_element("css selector", "a").click()
    _wait(driver, "#teacher-name")
    record = _find(driver, f"#record-{PERIOD}-skp")[0]
    assert record.find_elements("css selector", '[data-status="delivered"]')
    assert "operator:ana" in driver.page_source  # the replay, in the ledger, with the name
    assert _find(driver, "button.replay") == []
    driver.get(running.url + "/failures")
    assert _wait(driver, "#no-failures")
    driver.get(running.url + f"/schools/{state.script_npsn}?period={PERIOD}")
    _wait(driver, "#teachers")
    assert "<script>" in _find(driver, "#school-name")[0].text  # shown as text, not run
    _screenshot(driver, "school")


def test_overview_of_a_semester_in_progress(driver: Any, tmp_path: Path) -> None:
    """The overview of a bigger semester synced school by school (the README's screenshot)."""
    world = generate_world(schools=8, teachers_per_school=8, seed=5, periods=[PERIOD])
    guru = next(r for r in world.records(PERIOD) if r["pegawai"]["jenis_ptk"] == "guru")
    with running_sandbox(world, faults=Faults(unknown_nips={guru["pegawai"]["nip"]})) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
            },
        )
        npsns = sorted(school["npsn"] for school in world.schools)
        with build_app(settings) as app:
            for upto in (2, 5, 8):  # three runs, a few schools more each time
                app.engine.run(PERIOD, schools=npsns[:upto])
        store = build_store(settings)
        passwords = cheap_passwords()
        add_user(store.engine, AUDITOR[0], Role.AUDITOR, passwords.hash(AUDITOR[1]))
        app = create_web_app(settings, store, passwords=passwords, key=TEST_KEY)
        running = start_in_thread(settings, store, port=0, app=app)
        try:
            _login(driver, running.url, AUDITOR)
            driver.get(running.url + "/")
            chart = _wait(driver, "#progress-chart")
            lines = chart.find_elements("css selector", "polyline")
            assert len(lines) == len(npsns) + 1  # one per school and one for all
            rows = _find(driver, "#schools tbody tr")
            assert len(rows) == len(npsns)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0
            # The README's screenshot is the running year's (test_console_browser).
            _screenshot(driver, "overview")
        finally:
            running.stop()
            store.engine.dispose()


def test_login_limit_and_logout_in_the_browser(
    driver: Any, console: tuple[Synced, RunningConsole]
) -> None:
    """Issue 13 in the browser: wrong passwords until the console makes the name wait (even
    the right password then), and a session cookie put back after logout opens nothing."""
    _, running = console  # at most 3 attempts per name (the fixture's policy)
    driver.delete_all_cookies()
    for _ in range(3):
        driver.get(running.url + "/login")
        _wait(driver, "#username").send_keys(OPERATOR[0])
        _find(driver, "#password")[0].send_keys("bukan-kata-sandinya")
        _find(driver, "#login")[0].click()
        assert "salah" in _wait(driver, "#login-error").text
    driver.get(running.url + "/login")
    _wait(driver, "#username").send_keys(OPERATOR[0])
    _find(driver, "#password")[0].send_keys(OPERATOR[1])
    _find(driver, "#login")[0].click()
    error = _wait(driver, "#error")
    assert "Terlalu banyak percobaan" in error.text
    assert "HTTP 429" in error.text
    _screenshot(driver, "login-limit")

    _login(driver, running.url, AUDITOR)
    kept = driver.get_cookie(COOKIE)
    assert kept is not None
    assert kept["value"].startswith("s.")
    assert kept["httpOnly"] is True
    _find(driver, "#logout")[0].click()
    _wait(driver, "#username")
    now = driver.get_cookie(COOKIE)
    assert now is None or now["value"] != kept["value"]
    # The old cookie, put back by hand: the console does not know it any more.
    driver.delete_all_cookies()
    driver.add_cookie({"name": COOKIE, "value": kept["value"], "path": "/"})
    driver.get(running.url + "/failures")
    _wait(driver, "#username")
    assert "/login" in driver.current_url
    assert _find(driver, "#who") == []
