"""Issue 26 in a real browser (headless Chromium, as ``test_web_browser``): on a closed
period an operator's replay becomes a request that a second operator approves on the periods
page; nobody approves their own; an auditor downloads the period's seal and a teacher's proof,
which the stdlib script accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from state import ledger
from state.lifecycle import Lifecycle
from state.seal import from_json
from state.users import Role, add_user
from sync.web.app import create_web_app
from sync.web.auth import LoginPolicy
from sync.web.server import RunningConsole, start_in_thread
from tests.web.conftest import AUDITOR, OPERATOR, PERIOD, TEST_KEY, Synced, synced
from tests.web.test_web_browser import _find, _login, _screenshot, _status, _wait, driver

pytestmark = pytest.mark.browser

SECOND = ("citra", "kata-sandi-operator-dua")
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "auditors" / "verify_proof.py"
__all__ = ["driver"]  # the browser fixture, shared with test_web_browser


@pytest.fixture
def closed_console(tmp_path: Path) -> Iterator[tuple[Synced, RunningConsole]]:
    with synced(f"sqlite:///{tmp_path / 'state.db'}") as state:
        add_user(state.store.engine, SECOND[0], Role.OPERATOR, state.passwords.hash(SECOND[1]))
        Lifecycle(state.store.engine).close(PERIOD, by="dewi", why="batas penilaian lewat")
        app = create_web_app(
            state.settings,
            state.store,
            passwords=state.passwords,
            key=TEST_KEY,
            login_policy=LoginPolicy(max_per_user=10),
        )
        running = start_in_thread(state.settings, state.store, port=0, app=app)
        try:
            yield state, running
        finally:
            running.stop()


def test_a_replay_in_a_closed_period_is_requested_by_one_and_approved_by_another(
    driver: Any, closed_console: tuple[Synced, RunningConsole]
) -> None:
    from selenium.webdriver.support.ui import Select

    state, running = closed_console
    state.faults.update({"unknown_nips": []})  # BKN's register was corrected
    _login(driver, running.url, OPERATOR)

    # The overview says the period is closed; the replay button alone is refused.
    driver.get(running.url + "/")
    assert "ditutup" in _wait(driver, "#period-state").text
    driver.get(running.url + f"/teachers/{state.failing_nip}?period={PERIOD}")
    _find(driver, f"#replay-{PERIOD}-skp")[0].click()
    error = _wait(driver, "#error")
    assert "perlu dua operator" in error.text
    assert _status(state).value == "failed"

    # The operator asks on the periods page.
    driver.get(running.url + "/periods")
    row = _wait(driver, f'#periods tr[data-period="{PERIOD}"]')
    assert row.get_attribute("data-state") == "closed"
    form = _wait(driver, "#request-form")
    Select(form.find_element("css selector", 'select[name="action"]')).select_by_value("replay")
    form.find_element("css selector", 'input[name="target"]').send_keys(state.failure_id)
    form.find_element("css selector", 'textarea[name="why"]').send_keys("BKN memperbaiki NIP")
    _find(driver, "#request-submit")[0].click()
    assert "Permintaan #1 dibuat" in _wait(driver, "#request-made").text
    pending = _wait(driver, '#pending tr[data-request="1"]')
    assert pending.find_elements("css selector", ".own-request")
    assert _find(driver, "#approve-1") == []  # not one's own
    _screenshot(driver, "periods-request")
    assert _status(state).value == "failed"

    # A second operator approves it: the replay goes.
    _login(driver, running.url, SECOND)
    driver.get(running.url + "/periods")
    _wait(driver, "#approve-1").click()
    result = _wait(driver, "#approve-result")
    assert result.get_attribute("data-state") == "done"
    assert "ana" in result.text
    assert "citra" in result.text
    assert _find(driver, '#replay-result [data-status="delivered"]')
    _screenshot(driver, "periods-approved")
    assert _status(state).value == "delivered"
    assert state.box.target.stats()["creates"]["skp"][f"{state.failing_nip}/{PERIOD}"] == 1
    with Session(state.store.engine) as session:
        approvals = [
            e for e in ledger.query(session, period=PERIOD) if e.action == "change_approve"
        ]
    assert [e.actor for e in approvals] == ["operator:citra"]
    assert "operator:ana" in (approvals[0].detail or "")
    driver.get(running.url + "/periods")
    assert _wait(driver, "#no-pending")
    assert _find(driver, '#decided tr[data-request="1"][data-state="done"]')


def test_an_auditor_downloads_the_seal_and_a_teachers_proof(
    driver: Any, closed_console: tuple[Synced, RunningConsole], tmp_path: Path
) -> None:
    state, running = closed_console
    seal = Lifecycle(state.store.engine).seal(PERIOD, by="dewi")
    with Session(state.store.engine) as session:
        nip = next(
            e.nip
            for e in ledger.query(session, period=PERIOD)
            if e.nip and e.outcome == "delivered" and e.nip != state.failing_nip
        )
    _login(driver, running.url, AUDITOR)
    driver.get(running.url + "/periods")
    row = _wait(driver, f'#periods tr[data-period="{PERIOD}"]')
    assert row.get_attribute("data-state") == "sealed"
    assert _find(driver, "#request-form") == []  # an auditor asks for nothing
    _screenshot(driver, "periods-auditor")

    fetched = driver.execute_script(
        """
        const get = url => fetch(url).then(async r => [r.status,
            r.headers.get('content-disposition'), await r.text()]);
        return Promise.all([get(arguments[0]), get(arguments[1]), get(arguments[2])]);
        """,
        row.find_element("css selector", "a.seal-download").get_attribute("href"),
        f"/periods/proof?period={PERIOD}&nip={nip}",
        f"/periods/proof?period={PERIOD}&nip=199912312020121999",
    )
    (seal_status, seal_name, seal_text), (status, name, text), (missing, _, _) = fetched
    assert (seal_status, status, missing) == (200, 200, 404)
    assert seal_name.startswith(f'attachment; filename="seal-{PERIOD}-')
    assert name.startswith(f'attachment; filename="proof-{PERIOD}-{nip}-')
    assert from_json(seal_text) == seal
    proof = json.loads(text)
    assert proof["nip"] == nip
    assert proof["entries"]
    seal_file, proof_file = tmp_path / "seal.json", tmp_path / "proof.json"
    seal_file.write_text(seal_text, encoding="utf-8")
    proof_file.write_text(text, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, str(SCRIPT), str(proof_file), str(seal_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.startswith("OK:")

    # The proof form on the page leads to the same file.
    form = _wait(driver, "#proof-form")
    form.find_element("css selector", 'input[name="nip"]').send_keys(nip)
    assert form.get_attribute("action").endswith("/periods/proof")
