"""Issue 27 over HTTP (no browser): the console speaks Indonesian only. Every page, in both
roles, over a year with failures, quarantine, waiting and held records, is read as a person
reads it (the text, without the folded "detail teknis", attributes or scripts) and must hold
no English word of a known list, no raw code and no shell command. Also: the overview's
groups, every code's Indonesian name, the period names, the status badges' contrast."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from state.models import DeliveryKind, RecordStatus
from sync.advice import QUARANTINE_CODES, TARGET_CODES
from sync.web._labels import CAUSE_LABELS, LEDGER_ACTIONS, period_label
from sync.web.app import create_web_app
from sync.who_acts import CODES
from tests.web.conftest import (
    AUDITOR,
    BUSY_PERIOD,
    OPERATOR,
    TEST_KEY,
    UNSYNCED_PERIOD,
    Busy,
    FakeClock,
    busy,
    client_for,
    login,
)

ENGLISH = (
    "dead",
    "failed",
    "pending",
    "rejected",
    "delivered",
    "create_skp",
    "update_skp",
    "create_assessment",
    "user_add",
    "discarded by",
    "discard",
    "retry",
    "replay",
    "reconcile",
    "ekinerja-sync",
    "waiting for",
    "not final",
    "not approved",
    "held",
    "locked",
    "quarantined",
    "cancelled",
    "penilaian is",
    "NIP_TIDAK_DITEMUKAN",
    "UNOR_TIDAK_AKTIF",
    "PENILAI_BELUM_ADA_SKP",
    "invalid_nip",
    "waiting",
    "rate_limit",
    "worker",
)
_WORDS = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(w) for w in ENGLISH) + r")(?![\w-])", re.IGNORECASE
)


class _Visible(HTMLParser):
    """The text a person reads: no <details class="tech">, <script> or <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self._hidden: list[str] = []  # the tags that hide what is inside them

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if self._hidden or tag in ("script", "style") or (tag == "details" and "tech" in classes):
            self._hidden.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._hidden and self._hidden[-1] == tag:
            self._hidden.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text.append(data)


def visible_text(html: str) -> str:
    parser = _Visible()
    parser.feed(html)
    return " ".join(parser.text)


def english_in(html: str) -> list[str]:
    return sorted({m[1] for m in _WORDS.finditer(visible_text(html))})


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Busy]:
    path = tmp_path_factory.mktemp("busy") / "state.db"
    with busy(f"sqlite:///{path}") as state:
        yield state


def _client(state: Busy) -> TestClient:
    app = create_web_app(
        state.settings, state.store, clock=FakeClock(), passwords=state.passwords, key=TEST_KEY
    )
    return client_for(app)


def _pages(state: Busy) -> list[str]:
    failed = state.store.reports.failures(period=BUSY_PERIOD)
    held = state.store.reports.failures(period=BUSY_PERIOD, statuses=(RecordStatus.HELD,))
    quarantined = state.store.reports.quarantine(period=BUSY_PERIOD)
    waiting = [
        r for r in state.store.reports.records(BUSY_PERIOD) if r.status is RecordStatus.WAITING
    ]
    nips = {failed[0].nip, held[0].nip, quarantined[0].nip, waiting[0].nip, state.principal_nip}
    return [
        "/",
        f"/?period={BUSY_PERIOD}",
        f"/?period={UNSYNCED_PERIOD}",
        "/?period=2031",
        "/failures",
        f"/failures?period={BUSY_PERIOD}&status=held",
        f"/failures?period={BUSY_PERIOD}&status=locked",
        f"/failures?period={BUSY_PERIOD}&code=UNOR_TIDAK_AKTIF",
        "/quarantine",
        "/periods",
        "/ledger",
        f"/ledger?period={BUSY_PERIOD}&q=rejected",
        "/ledger?since=2026-02-31",
        "/ledger/verify",
        "/ledger/verify?against=" + "a" * 64 + "@3",
        "/ledger/verify?against=nonsense",
        *(
            f"/schools/{npsn}?period={BUSY_PERIOD}"
            for npsn in sorted(s["npsn"] for s in state.world.schools)
        ),
        *(
            f"/schools/{npsn}/actions?period={BUSY_PERIOD}"
            for npsn in sorted(s["npsn"] for s in state.world.schools)
        ),
        *(f"/teachers/{nip}?period={BUSY_PERIOD}" for nip in sorted(nips)),
        f"/actions/bulk?period={BUSY_PERIOD}&code=UNOR_TIDAK_AKTIF&npsn={state.inactive_npsn}",
        f"/actions/bulk?period={BUSY_PERIOD}",
        "/no/such/page",
    ]


def test_the_word_check_sees_what_a_person_reads() -> None:
    html = (
        '<p data-status="failed">Gagal: <b>retry</b></p><details class="tech"><summary>x'
        "</summary><p>dead <details><p>pending</p></details></p></details><script>held</script>"
    )
    assert english_in(html) == ["retry"]
    assert english_in("<p>ekinerja-sync reconcile --period 2026</p>") == [
        "ekinerja-sync",
        "reconcile",
    ]


@pytest.mark.parametrize("who", [OPERATOR, AUDITOR], ids=["operator", "auditor"])
def test_every_page_in_both_roles_is_in_indonesian(year: Busy, who: tuple[str, str]) -> None:
    client = _client(year)
    login_page = client.get("/login").text
    assert english_in(login_page) == []
    login(client, *who)
    found = {}
    for path in _pages(year):
        answer = client.get(path)
        assert answer.status_code in (200, 400, 403, 404), (path, answer.status_code)
        assert "Sinkronisasi e-Kinerja" in visible_text(answer.text), path
        words = english_in(answer.text)
        if words:
            found[path] = words
    assert found == {}


def test_what_an_operator_posts_comes_back_in_indonesian(tmp_path: Path) -> None:
    """The results and the refusals of the actions: a bulk discard refused (empty reason),
    a bulk replay, a teacher's discard refused, a change request refused."""
    with busy(f"sqlite:///{tmp_path / 'state.db'}") as state:
        client = _client(state)
        token = login(client, *OPERATOR)
        group = {"period": BUSY_PERIOD, "code": "NIP_TIDAK_DITEMUKAN"}
        refused = client.post(
            "/actions/bulk/discard", data={**group, "csrf_token": token, "expect": "1", "why": " "}
        )
        assert refused.status_code == 400
        assert 'id="error-why"' in refused.text
        assert english_in(refused.text) == []
        record_id = f"{BUSY_PERIOD}/{state.principal_nip}/skp"
        kept = client.post(
            "/actions/discard",
            data={"csrf_token": token, "id": record_id, "why": "x" * 600},
        )
        assert kept.status_code == 400
        assert "x" * 600 in kept.text  # what was typed comes back
        assert english_in(kept.text) == []
        replayed = client.post(
            "/actions/bulk/replay", data={**group, "csrf_token": token, "expect": "1"}
        )
        assert replayed.status_code == 200, replayed.text
        assert english_in(replayed.text) == []
        discarded = client.post(
            "/actions/bulk/discard",
            data={
                "period": BUSY_PERIOD,
                "code": "UNOR_TIDAK_AKTIF",
                "npsn": state.inactive_npsn,
                "csrf_token": token,
                "expect": "19",
                "why": "unit kerja ditutup BKPSDM",
            },
        )
        assert discarded.status_code == 200, discarded.text
        assert english_in(discarded.text) == []
        for page in ("/ledger", f"/teachers/{state.principal_nip}?period={BUSY_PERIOD}"):
            assert english_in(client.get(page).text) == []


def test_the_overview_groups_by_cause_and_desk(year: Busy) -> None:
    client = _client(year)
    login(client, *OPERATOR)
    page = client.get(f"/?period={BUSY_PERIOD}").text
    unit = re.search(
        r'<li class="group" id="g-bkd-unor-tidak-aktif-(\w+)" data-code="UNOR_TIDAK_AKTIF" '
        r'data-count="(\d+)"',
        page,
    )
    assert unit is not None
    assert unit[2] == "19"
    assert unit[1] == year.inactive_npsn.lower()
    assert page.count('data-code="UNOR_TIDAK_AKTIF"') == 1
    held = state_held(year)
    assert f'data-code="held" data-count="{held}"' in page
    assert (
        f'class="blocker-link" href="/teachers/{year.principal_nip}?period={BUSY_PERIOD}"' in page
    )
    assert 'id="desk-school"' in page
    assert 'id="desk-bkd"' in page
    assert 'id="desk-auto"' in page
    assert "Berjalan otomatis" in page


def state_held(state: Busy) -> int:
    return len(state.store.reports.failures(period=BUSY_PERIOD, statuses=(RecordStatus.HELD,)))


def test_an_unsynced_listed_period_and_an_unknown_one(year: Busy) -> None:
    client = _client(year)
    login(client, *AUDITOR)
    page = client.get(f"/?period={UNSYNCED_PERIOD}").text
    assert "Belum ada data untuk Tahun 2025 (Jan–Des)" in page
    assert "lewat" not in page  # no deadline arithmetic over an empty period
    assert (
        f'<option value="{UNSYNCED_PERIOD}" selected>Tahun 2025 (Jan–Des): belum ada data' in page
    )
    unknown = client.get("/?period=2031").text
    assert "tidak dikenal" in unknown
    ledger = client.get("/ledger").text
    assert '<select name="period"' in ledger
    assert "Tahun 2026 (Jan–Des)" in ledger


def test_every_code_and_ledger_action_has_an_indonesian_name() -> None:
    for code in (*TARGET_CODES, *QUARANTINE_CODES, *CODES):
        assert code in CAUSE_LABELS, code
        assert not _WORDS.search(CAUSE_LABELS[code]), code
    for action in ("create_skp", "update_skp", "create_assessment", "replay", "discard", "reset"):
        assert action in LEDGER_ACTIONS
    assert period_label("2024-2") == "Semester 2 2024 (Jul–Des)"
    assert period_label("2025") == "Tahun 2025 (Jan–Des)"
    assert period_label("2024-1") == "Semester 1 2024 (Jan–Jun)"
    assert DeliveryKind.SKP.value == "skp"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_status_badges_are_distinct_and_readable() -> None:
    css = (Path(__file__).resolve().parents[2] / "sync/web/static/console.css").read_text()
    colours = {}
    for status in ("waiting", "pending", "held", "delivered", "failed", "locked", "quarantined"):
        rule = re.search(r"\.status-" + status + r"\b[^{]*\{([^}]*)\}", css)
        assert rule is not None, status
        background = re.search(r"background:\s*(#[0-9a-f]{6})", rule[1])
        colour = re.search(r"(?<!-)color:\s*(#[0-9a-f]{6})", rule[1])
        assert background, status
        assert colour, status
        assert contrast(background[1], colour[1]) >= 4.5, status
        colours[status] = (background[1], colour[1])
    assert len(set(colours.values())) == len(colours)  # no two share a look
    from sync.web._chart import COLOURS, OTHERS, OVERALL

    for line in (*COLOURS, OTHERS, OVERALL):
        assert contrast(line, "#ffffff") >= 3.0, line


def test_past_the_deadline_the_overview_says_what_still_goes_out(year: Busy) -> None:
    clock = FakeClock()
    clock.now = dt.datetime(2027, 3, 1, 5, tzinfo=dt.UTC)  # the deadline: 31 January 2027
    app = create_web_app(
        year.settings, year.store, clock=clock, passwords=year.passwords, key=TEST_KEY
    )
    client = client_for(app)
    login(client, *AUDITOR)
    page = visible_text(client.get(f"/?period={BUSY_PERIOD}").text)
    assert "lewat 29 hari" in page
    assert "masih disinkronkan otomatis selama PMM menandainya berjalan" in page
    clock.now = dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC)
    before = visible_text(client.get(f"/?period={BUSY_PERIOD}").text)
    assert "sudah lewat" not in before
