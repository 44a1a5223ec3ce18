"""A school's action list from the waiting rows (sync/operations/school_actions.py): grouped
by who acts, the dinas's items apart, the days left, and a content hash that changes with the
list and only with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from mappings.model import ListedPeriod, Period
from state.waiting import WaitingRow
from sync.operations.school_actions import build_report
from sync.who_acts import Actor

PERIOD = ListedPeriod(Period.parse("2026"), dt.date(2027, 1, 31), running=True)
SINCE = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)


def _body(name: str, *, role: str = "guru", penilai: str = "kepala_sekolah") -> dict[str, Any]:
    return {
        "versi_skema": 2,
        "pegawai": {"nama": name, "jenis_ptk": role},
        "penilai": {"peran": penilai},
        "sekolah": {"npsn": "20100001", "nama": "SDN 1 Contoh"},
    }


def _row(
    nip: str,
    status: str,
    *,
    kind: str = "assessment",
    code: str | None = None,
    reason: str | None = None,
    npsn: str = "20100001",
    assessor_role: str | None = "principal",
    body: dict[str, Any] | None = None,
) -> WaitingRow:
    return WaitingRow(
        period="2026",
        npsn=npsn,
        nip=nip,
        kind=kind,
        status=status,
        reason_code=code,
        reason=reason,
        assessor_role=assessor_role,
        since=SINCE,
        source_id=f"src-{nip}",
        body=body if body is not None else _body(f"Guru {nip[-2:]}"),
    )


ROWS = [
    _row("198503152010012003", "waiting", reason="penilaian is draf in PMM, not final"),
    _row("198503152010012011", "quarantined", kind="record", code="indicator_role_mismatch"),
    _row("198503152010012029", "failed", kind="skp", code="NIP_TIDAK_DITEMUKAN", reason="x"),
    # The kepala sekolah's own penilaian waits on the pengawas: the dinas's.
    _row(
        "197001012000011001",
        "waiting",
        reason="penilaian is belum in PMM, not final",
        assessor_role="supervisor",
        body=_body("Kepala", role="kepala_sekolah", penilai="pengawas_sekolah"),
    ),
    _row("198503152010012037", "held", code="PENILAI_BELUM_ADA_SKP", reason="held: ..."),
    _row("198503152010012045", "waiting", reason="waiting for its SKP (perencanaan)"),
    _row("198503152010012053", "quarantined", kind="record", code="no_assessor", npsn="20100002"),
]


def test_items_are_grouped_by_who_acts_and_the_dinas_keeps_its_own() -> None:
    report = build_report(ROWS, PERIOD, dt.date(2026, 11, 20))
    assert report.days_left == 72
    assert [s.npsn for s in report.schools] == ["20100001"]
    school = report.schools[0]
    assert school.school_name == "SDN 1 Contoh"
    groups = {actor: [i.nip[-2:] for i in items] for actor, items in school.groups()}
    assert groups == {Actor.TEACHER: ["11"], Actor.ASSESSOR: ["03"], Actor.SCHOOL_OPERATOR: ["29"]}
    assert [a for a, _ in school.groups()] == [
        Actor.TEACHER,
        Actor.ASSESSOR,
        Actor.SCHOOL_OPERATOR,
    ]
    assert {(i.nip[-2:], i.code) for i in report.dinas} == {
        ("01", "assessment_not_started"),
        ("37", "held"),
        ("53", "no_assessor"),
    }
    assert all(i.todo == "" for i in report.dinas)
    assert all(i.todo and i.name for i in school.items)
    assert school.items[0].since == SINCE


def test_the_hash_follows_the_list_not_the_day_or_the_order() -> None:
    first = build_report(ROWS, PERIOD, dt.date(2026, 11, 20)).schools[0]
    later = build_report(list(reversed(ROWS)), PERIOD, dt.date(2027, 1, 10)).schools[0]
    assert later.days_left == 21
    assert first.content_hash == later.content_hash
    fixed = build_report(ROWS[1:], PERIOD, dt.date(2026, 11, 20)).schools[0]
    assert fixed.content_hash != first.content_hash
    assert "198503152010012003" not in {i.nip for i in fixed.items}


def test_a_school_with_nothing_to_fix_has_no_list() -> None:
    report = build_report(ROWS, PERIOD, dt.date(2026, 11, 20))
    empty = report.school("20100002")  # only the dinas's item there
    assert empty.empty
    assert empty.content_hash != report.schools[0].content_hash


def test_as_dict_says_who_and_what_in_words() -> None:
    data = build_report(ROWS, PERIOD, dt.date(2027, 2, 2)).as_dict()
    assert data["days_left"] == -2
    item = data["schools"][0]["items"][0]
    assert item["who"] == "teacher"
    assert "PMM" in item["todo"]
