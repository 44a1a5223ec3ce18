"""Issue 27 in a real browser (headless Chromium, as ``test_web_browser``), over a busy year
(``conftest.busy``: one school's inactive unit kerja, a kepala sekolah BKN does not know with
their gurus' SKPs held behind them, quarantine, records waiting on the schools, and a year PMM
lists that was never synced):

- the overview groups what needs doing by cause and by who acts, a held group links the
  record that blocks it; its screenshot is the README's (``docs/console-overview.png``, with
  ``UPDATE_SCREENSHOTS=1``);
- the issue's "done when": on a phone (390 px), the 19 failures of the inactive unit are one
  group with one button, and the operator clears them in two clicks with one reason;
- a bulk replay of a group, the filter kept on the way back;
- no page scrolls sideways at 390 px, and a list's action button is on screen;
- the period selector with a listed period that has no data;
- a refused form comes back with the message beside the field and the typed text kept;
- the verify page with a wrong head.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from state import ledger
from state.lifecycle import Lifecycle
from state.models import DISCARDED, RecordStatus
from sync.web.app import create_web_app
from sync.web.auth import LoginPolicy
from sync.web.server import RunningConsole, start_in_thread
from tests.web.conftest import (
    AUDITOR,
    BUSY_PERIOD,
    OPERATOR,
    TEST_KEY,
    UNSYNCED_PERIOD,
    Busy,
    busy,
)
from tests.web.test_web_browser import ARTIFACTS, ROOT, _find, _login, _wait, driver

pytestmark = pytest.mark.browser
__all__ = ["driver"]  # the browser fixture, shared with test_web_browser

PHONE = (390, 844)
LAPTOP = (1366, 768)


def _serve(state: Busy) -> RunningConsole:
    app = create_web_app(
        state.settings,
        state.store,
        passwords=state.passwords,
        key=TEST_KEY,
        login_policy=LoginPolicy(max_per_user=20),
    )
    return start_in_thread(state.settings, state.store, port=0, app=app)


@pytest.fixture(scope="module")
def shared_year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Busy, RunningConsole]]:
    """A busy year the read-only journeys share."""
    path = tmp_path_factory.mktemp("busy-browser") / "state.db"
    with busy(f"sqlite:///{path}") as state:
        running = _serve(state)
        try:
            yield state, running
        finally:
            running.stop()


@pytest.fixture
def fresh_year(tmp_path: Path) -> Iterator[tuple[Busy, RunningConsole]]:
    """A busy year of its own, for a journey that changes it."""
    with busy(f"sqlite:///{tmp_path / 'state.db'}") as state:
        running = _serve(state)
        try:
            yield state, running
        finally:
            running.stop()


@pytest.fixture
def window(driver: Any) -> Iterator[Any]:
    """The browser at a laptop's size afterwards, whatever size a test set."""
    try:
        yield driver
    finally:
        driver.set_window_size(*LAPTOP)


def _size(chrome: Any, size: tuple[int, int]) -> None:
    chrome.set_window_size(*size)
    width = chrome.execute_script("return window.innerWidth")
    assert abs(width - size[0]) <= 16, f"the window is {width}px wide, not {size[0]}"


def _no_sideways_scroll(chrome: Any, where: str) -> None:
    width = chrome.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"{where} is {width}px wide at {PHONE[0]}px"


def _on_screen(chrome: Any, element: Any) -> None:
    """Displayed and within the window's width (nothing to scroll sideways to reach it)."""
    assert element.is_displayed()
    right = chrome.execute_script("return arguments[0].getBoundingClientRect().right", element)
    assert right <= PHONE[0], f"the button ends at {right}px"


def _shot(chrome: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"console-{name}.png"
    chrome.save_screenshot(str(path))
    return path


def _group_id(state: Busy) -> str:
    return f"g-bkd-unor-tidak-aktif-{state.inactive_npsn.lower()}"


# -- journeys ------------------------------------------------------------------------------------


def test_done_when_an_operator_clears_the_inactive_unit_on_a_phone(
    window: Any, fresh_year: tuple[Busy, RunningConsole]
) -> None:
    """The issue's "done when": one group of 19, one button; cleared in two clicks, one
    reason, in Indonesian, at 390 px."""
    state, running = fresh_year
    chrome = window
    _login(chrome, running.url, OPERATOR)
    _size(chrome, PHONE)
    chrome.get(running.url + "/")
    group = _wait(chrome, f"#{_group_id(state)}")
    assert group.get_attribute("data-count") == "19"
    assert "Unit kerja sekolah tidak aktif di BKN" in group.text
    assert "BKD / BKPSDM" in _find(chrome, "#desk-bkd h3")[0].text
    buttons = group.find_elements("css selector", "a.button, button")
    assert len(buttons) == 1
    _on_screen(chrome, buttons[0])
    _no_sideways_scroll(chrome, "the overview")
    _shot(chrome, "phone-overview")

    buttons[0].click()  # click 1
    why = _wait(chrome, "#bulk-why")
    assert "(19 data gagal)" in _find(chrome, "#bulk-title")[0].text
    _no_sideways_scroll(chrome, "the bulk page")
    why.send_keys("Unit kerja sekolah ditutup BKPSDM; guru dipindahkan")
    submit = _find(chrome, "#bulk-discard-submit")[0]
    assert submit.text == "Abaikan 19 data"
    _on_screen(chrome, submit)
    _shot(chrome, "phone-bulk")
    submit.click()  # click 2
    result = _wait(chrome, "#discard-result")
    assert "19 data sekarang dibatalkan" in _find(chrome, "#discarded")[0].text
    assert len(result.find_elements("css selector", "tbody tr")) == 19
    _no_sideways_scroll(chrome, "the result")
    _shot(chrome, "phone-discarded")

    failed = [
        r
        for r in state.store.reports.records(BUSY_PERIOD)
        if r.npsn == state.inactive_npsn and r.reason_code == DISCARDED
    ]
    assert len(failed) == 19
    assert all(r.status is RecordStatus.CANCELLED for r in failed)
    with Session(state.store.engine) as session:
        entries = [e for e in ledger.query(session, period=BUSY_PERIOD) if e.action == "discard"]
        assert ledger.verify(session).ok
    assert len(entries) == 19
    assert {e.actor for e in entries} == {"operator:ana"}
    _find(chrome, "#back-overview")[0].click()
    _wait(chrome, "#perlu-tindakan")
    assert _find(chrome, f"#{_group_id(state)}") == []
    assert _find(chrome, "#period")[0].get_attribute("data-period") == BUSY_PERIOD


def test_a_group_is_replayed_in_bulk_and_the_filter_survives(
    window: Any, fresh_year: tuple[Busy, RunningConsole]
) -> None:
    state, running = fresh_year
    chrome = window
    _login(chrome, running.url, OPERATOR)
    chrome.get(running.url + "/")
    group = _wait(chrome, f"#{_group_id(state)}")
    state.faults.update({"inactive_npsns": []})  # BKPSDM activated the unit kerja
    group.find_element("css selector", "a.bulk").click()
    _wait(chrome, "#bulk-replay-submit").click()
    result = _wait(chrome, "#replay-result")
    rows = result.find_elements("css selector", "tbody tr")
    assert len(rows) == 19
    assert len(result.find_elements("css selector", '[data-status="delivered"]')) == 19
    assert "terkirim" in result.text
    with Session(state.store.engine) as session:
        replays = [e for e in ledger.query(session, period=BUSY_PERIOD) if e.action == "replay"]
    assert len(replays) == 19

    back = _find(chrome, "#back-failures")[0]
    assert "code=UNOR_TIDAK_AKTIF" in back.get_attribute("href")
    assert f"npsn={state.inactive_npsn}" in back.get_attribute("href")
    back.click()
    _wait(chrome, "#no-failures")
    selected = chrome.execute_script("return document.querySelector('select[name=code]').value")
    assert selected == "UNOR_TIDAK_AKTIF"
    assert _find(chrome, 'input[name="npsn"]')[0].get_attribute("value") == state.inactive_npsn
    assert (
        chrome.execute_script("return document.querySelector('#period-select').value")
        == BUSY_PERIOD
    )


def test_the_grouped_overview_of_the_running_year(
    window: Any, shared_year: tuple[Busy, RunningConsole]
) -> None:
    """What needs doing, by cause and by who acts, on a laptop; the README's screenshot."""
    state, running = shared_year
    chrome = window
    _login(chrome, running.url, AUDITOR)
    _size(chrome, LAPTOP)
    chrome.get(running.url + "/")  # no period asked: the running year
    _wait(chrome, "#perlu-tindakan")
    assert _find(chrome, "#period")[0].get_attribute("data-period") == BUSY_PERIOD
    desks = [d.get_attribute("data-desk") for d in _find(chrome, "#perlu-tindakan .desk")]
    assert desks[:3] == ["dinas", "bkd", "school"]
    assert desks[-1] == "auto"
    held = _find(chrome, 'li.group[data-code="held"]')[0]
    blocker = held.find_element("css selector", "a.blocker-link")
    assert blocker.get_attribute("href").endswith(f"/teachers/{state.principal_nip}?period=2026")
    assert "NIP tidak dikenal BKN" in held.text
    assert _find(chrome, "a.bulk") == []  # an auditor gets no action button
    legend = _find(chrome, "#chart-legend li")
    assert 1 <= len(legend) <= 5
    labels = _find(chrome, "#progress-chart text.line-label")
    assert len(labels) == len(legend)
    assert chrome.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    height = int(chrome.execute_script("return document.documentElement.scrollHeight"))
    chrome.set_window_size(LAPTOP[0], min(max(height + 100, LAPTOP[1]), 4000))
    shot = _shot(chrome, "overview-year")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(shot, ROOT / "docs" / "console-overview.png")
    blocker.click()
    _wait(chrome, "#teacher-name")
    assert state.principal_nip in chrome.page_source


def test_no_page_scrolls_sideways_on_a_phone(
    window: Any, shared_year: tuple[Busy, RunningConsole]
) -> None:
    state, running = shared_year
    chrome = window
    _login(chrome, running.url, OPERATOR)
    _size(chrome, PHONE)
    failed = state.store.reports.failures(period=BUSY_PERIOD)
    npsns = sorted(s["npsn"] for s in state.world.schools)
    pages = [
        "/",
        f"/?period={UNSYNCED_PERIOD}",
        "/failures",
        f"/failures?period={BUSY_PERIOD}&status=held",
        "/quarantine",
        "/periods",
        "/ledger",
        "/ledger/verify",
        "/ledger/verify?against=" + "b" * 64 + "@2",
        *(f"/schools/{npsn}?period={BUSY_PERIOD}" for npsn in npsns),
        *(f"/schools/{npsn}/actions?period={BUSY_PERIOD}" for npsn in npsns),
        f"/teachers/{failed[0].nip}?period={BUSY_PERIOD}",
        f"/teachers/{state.principal_nip}",
        f"/actions/bulk?period={BUSY_PERIOD}&code=UNOR_TIDAK_AKTIF&npsn={state.inactive_npsn}",
        "/no/such/page",
    ]
    for path in pages:
        chrome.get(running.url + path)
        _wait(chrome, "main")
        _no_sideways_scroll(chrome, path)
    chrome.get(running.url + f"/failures?period={BUSY_PERIOD}")
    first = _wait(chrome, "#failures tbody tr")
    _on_screen(chrome, first.find_element("css selector", "button.replay"))
    height = chrome.execute_script("return arguments[0].getBoundingClientRect().height", first)
    assert height < 300, f"a failure's card is {height}px tall"
    _shot(chrome, "phone-failures")


def test_the_period_selector_offers_a_listed_period_without_data(
    window: Any, shared_year: tuple[Busy, RunningConsole]
) -> None:
    from selenium.webdriver.support.ui import Select

    _state, running = shared_year
    chrome = window
    _login(chrome, running.url, AUDITOR)
    chrome.get(running.url + "/")
    select = Select(_wait(chrome, "#period-select"))
    options = {o.get_attribute("value"): o.text for o in select.options}
    assert options[BUSY_PERIOD] == "Tahun 2026 (Jan–Des)"
    assert options[UNSYNCED_PERIOD] == "Tahun 2025 (Jan–Des): belum ada data"
    select.select_by_value(UNSYNCED_PERIOD)
    _find(chrome, ".period-picker button")[0].click()
    notice = _wait(chrome, "#no-data")
    assert "Belum ada data untuk Tahun 2025 (Jan–Des)" in notice.text
    assert _find(chrome, "#deadline") == []  # no days counted over a period without data
    assert Select(_find(chrome, "#period-select")[0]).first_selected_option.text.startswith(
        "Tahun 2025"
    )
    chrome.get(running.url + "/ledger")  # the ledger takes the same list, not free text
    ledger_options = [o.text for o in Select(_wait(chrome, "#period-select")).options]
    assert "Tahun 2025 (Jan–Des): belum ada data" in ledger_options


def test_a_refused_form_keeps_what_was_typed(
    window: Any, fresh_year: tuple[Busy, RunningConsole]
) -> None:
    state, running = fresh_year
    chrome = window
    Lifecycle(state.store.engine).close(BUSY_PERIOD, by="dewi", why="uji")
    _login(chrome, running.url, OPERATOR)
    _size(chrome, PHONE)
    chrome.get(running.url + "/periods")
    form = _wait(chrome, "#request-form")
    form.find_element("css selector", 'input[name="target"]').send_keys(
        f"{BUSY_PERIOD}/199001012020121001/skp"
    )
    form.find_element("css selector", "textarea[name=why]").send_keys("BKN sudah memperbaiki NIP")
    _find(chrome, "#request-submit")[0].click()
    error = _wait(chrome, "#error-target")
    assert "Tidak ada data" in error.text
    assert _find(chrome, "#error") == []  # the form again, not an error page
    target = _find(chrome, 'input[name="target"]')[0]
    assert target.get_attribute("value") == f"{BUSY_PERIOD}/199001012020121001/skp"
    assert _find(chrome, "#request-why")[0].get_attribute("value") == "BKN sudah memperbaiki NIP"
    _no_sideways_scroll(chrome, "the refused request")
    _shot(chrome, "phone-refused-form")

    chrome.get(running.url + "/ledger?since=2026-02-31&nip=19900101")
    error = _wait(chrome, "#error-since")
    assert "bukan tanggal" in error.text
    assert _find(chrome, "#since")[0].get_attribute("value") == "2026-02-31"
    assert _find(chrome, 'input[name="nip"]')[0].get_attribute("value") == "19900101"


def test_verify_reports_a_wrong_head_apart_from_the_chain(
    window: Any, shared_year: tuple[Busy, RunningConsole]
) -> None:
    _state, running = shared_year
    chrome = window
    _login(chrome, running.url, AUDITOR)
    _size(chrome, PHONE)
    chrome.get(running.url + "/ledger/verify")
    head = _wait(chrome, "#head").text
    digest, count = head.split("@")
    wrong = ("f" if digest[0] != "f" else "e") + digest[1:] + "@" + count
    field = _find(chrome, "#against")[0]
    field.clear()
    field.send_keys(wrong)
    _find(chrome, "#verify-form button")[0].click()
    check = _wait(chrome, "#head-check")
    assert f"head yang dimasukkan tidak cocok dengan entri #{count}" in check.text
    assert check.get_attribute("data-head") == "mismatch"
    verdict = _find(chrome, "#verdict")[0]
    assert "Ledger utuh (OK)" in verdict.text  # the chain itself checks out
    assert "rusak" not in chrome.find_element("css selector", "main").text.lower()
    _no_sideways_scroll(chrome, "verify")
    _shot(chrome, "phone-verify")
