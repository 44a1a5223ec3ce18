"""A school's action list in a real browser (issue 25): followed from the school table, the
teacher waiting on the school's operator listed with what to do, and printable on one A4
sheet without the console's menu and buttons."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from sync.web.server import RunningConsole
from tests.web.conftest import AUDITOR, Synced
from tests.web.test_web_browser import (  # the browser and the console, as the journeys use
    _find,
    _login,
    _screenshot,
    _wait,
    console,
    driver,
)

pytestmark = pytest.mark.browser

__all__ = ["console", "driver"]


def test_the_school_page_lists_what_to_do_and_prints_on_a4(
    driver: Any, console: tuple[Synced, RunningConsole]
) -> None:
    state, running = console
    _login(driver, running.url, AUDITOR)
    driver.get(running.url + "/")
    _wait(driver, "#schools")
    links = [
        a
        for a in _find(driver, "#schools a.action-list")
        if f"/schools/{state.script_npsn}/actions" in (a.get_attribute("href") or "")
    ]
    assert len(links) == 1
    links[0].click()
    sheet = _wait(driver, "#action-list")
    assert state.failing_nip in sheet.text
    assert "Operator sekolah (data Dapodik)" in sheet.text
    assert "tidak mengenal NIP ini" in sheet.text
    assert "Batas penilaian" in sheet.text or "batas penilaian" in sheet.text
    assert "belum pernah diberi tahu" in _find(driver, "#told")[0].text
    assert _find(driver, "#print")[0].is_displayed()
    _screenshot(driver, "school-actions")

    # On paper: the menu and the buttons are gone, the list stays.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not _find(driver, "header.top")[0].is_displayed()
        assert not _find(driver, "#print")[0].is_displayed()
        assert _find(driver, "#action-list")[0].is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    from selenium.webdriver.common.print_page_options import PrintOptions

    options = PrintOptions()
    options.page_width, options.page_height = 21.0, 29.7  # A4, in centimetres
    pdf = base64.b64decode(driver.print_page(options))
    assert pdf.startswith(b"%PDF")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert pages == 1
    # A4 is 595.28 x 841.89 points: the MediaBox of the page says so.
    box = re.search(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf)
    assert box is not None
    assert abs(float(box[1]) - 595.3) < 1.5
    assert abs(float(box[2]) - 841.9) < 1.5
