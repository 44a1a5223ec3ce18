"""Periods: a semester and a year side by side, as the source lists them (issue #11)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from mappings.choice import MappingChoice, MappingChoiceError
from mappings.model import PerformanceRecord, Period, PeriodKind
from mappings.periods import PeriodListingError, active_periods, find_period, read_periods
from mappings.rules import Grade, Predicate, credit_points
from mappings.source import read_record
from mappings.versions import DEFAULT_VERSIONS, MAPPING_VERSIONS, get_mapping
from sync.settings import ConfigError, load_settings


def _listing() -> list[dict[str, object]]:
    return [
        {
            "kode": "2026",
            "jenis": "tahunan",
            "tahun": 2026,
            "semester": None,
            "tanggal_mulai": "2026-01-01",
            "tanggal_selesai": "2026-12-31",
            "batas_penilaian": "2027-01-31",
            "status": "berjalan",
        },
        {
            "kode": "2025",
            "jenis": "tahunan",
            "tahun": 2025,
            "semester": None,
            "tanggal_mulai": "2025-01-01",
            "tanggal_selesai": "2025-12-31",
            "batas_penilaian": "2026-01-31",
            "status": "ditutup",
        },
        {  # an older deployment: no jenis (a semester), no batas_penilaian (its last day)
            "kode": "2024-2",
            "tahun": 2024,
            "semester": 2,
            "tanggal_mulai": "2024-07-01",
            "tanggal_selesai": "2024-12-31",
            "status": "ditutup",
        },
    ]


def test_codes_of_both_kinds_parse_with_their_dates() -> None:
    year = Period.parse("2026")
    assert (year.kind, year.year, year.semester, year.months) == (PeriodKind.ANNUAL, 2026, None, 12)
    assert (year.start, year.end) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    second = Period.parse("2024-2")
    assert (second.kind, second.semester, second.months) == (PeriodKind.SEMESTER, 2, 6)
    assert (second.start, second.end) == (dt.date(2024, 7, 1), dt.date(2024, 12, 31))


@pytest.mark.parametrize("code", ["2024-3", "24", "2026-", "1999", "2026-1-1", "", " 2026"])
def test_other_codes_are_refused_with_what_a_code_looks_like(code: str) -> None:
    with pytest.raises(ValueError, match="YYYY-1 / YYYY-2 nor a year YYYY"):
        Period.parse(code)


@pytest.mark.parametrize(
    ("code", "start", "months"),
    [
        ("2026", dt.date(2026, 4, 1), 9),  # docs/domain.md, "Angka kredit": 1 April counts 9
        ("2026", dt.date(2026, 4, 15), 8),  # from 15 April: 8
        ("2026", dt.date(2026, 1, 1), 12),
        ("2026", dt.date(2025, 10, 1), 12),  # before the period: changes nothing
        ("2026", None, 12),
        ("2026", dt.date(2026, 12, 1), 1),
        ("2026", dt.date(2026, 12, 2), 0),  # no whole month left
        ("2024-2", dt.date(2024, 9, 1), 4),
        ("2024-2", dt.date(2024, 9, 2), 3),
        ("2024-1", dt.date(2024, 7, 1), 0),  # after the semester
    ],
)
def test_months_counted_from_tmt_jabatan(code: str, start: dt.date | None, months: int) -> None:
    assert Period.parse(code).months_from(start) == months


def test_credit_points_of_annual_periods_keep_three_decimals() -> None:
    # docs/domain.md, "Angka kredit": an Ahli Pertama with BAIK for 3 months earns 3.125
    # (BKN keeps "3,125").
    assert credit_points(Grade.FIRST, Predicate.GOOD, 3, places=3) == Decimal("3.125")
    assert credit_points(Grade.FIRST, Predicate.GOOD, 3) == Decimal("3.13")  # released: 2
    assert credit_points(Grade.FIRST, Predicate.GOOD, 8, places=3) == Decimal("8.333")
    assert credit_points(Grade.JUNIOR, Predicate.GOOD, 6) == Decimal("12.50")


def test_the_listing_gives_kinds_and_deadlines_as_the_source_says() -> None:
    listed = read_periods(_listing())
    assert [p.code for p in listed] == ["2024-2", "2025", "2026"]
    by_code = {p.code: p for p in listed}
    assert by_code["2024-2"].period.kind is PeriodKind.SEMESTER
    assert by_code["2024-2"].deadline == dt.date(2024, 12, 31)
    assert by_code["2026"].period.kind is PeriodKind.ANNUAL
    assert by_code["2026"].deadline == dt.date(2027, 1, 31)
    assert by_code["2026"].running
    assert not by_code["2025"].running


def test_a_jenis_that_contradicts_the_code_is_the_sources_fault() -> None:
    bad = [{**_listing()[0], "kode": "2026-1"}]
    listed = read_periods(bad)
    assert list(listed) == []
    (problem,) = listed.problems
    assert problem.code == "2026-1"
    assert "2026-1 as tahunan" in problem.reason
    assert "PMM helpdesk" in problem.reason


@pytest.mark.parametrize(
    "entry",
    [
        {"kode": "2025-3", "jenis": "semester", "tahun": 2025, "semester": 3},  # no semester 3
        {"kode": "2025", "jenis": "triwulan", "tahun": 2025},  # a kind the contract lacks
        {"kode": "2025", "jenis": "tahunan", "batas_penilaian": "31-01-2026"},  # not a date
        {"jenis": "tahunan", "tahun": 2025},  # no kode
        "2025",  # not an object
    ],
)
def test_one_bad_entry_is_left_out_and_reported_and_the_others_are_listed(entry: object) -> None:
    listed = read_periods([*_listing(), entry])
    assert [p.code for p in listed] == ["2024-2", "2025", "2026"]
    (problem,) = listed.problems
    assert "breaks its contract" in problem.reason
    assert "PMM helpdesk" in problem.reason
    assert str(problem).endswith("the other periods sync")


def test_a_bad_entry_does_not_stop_the_semesters_of_2024() -> None:
    semesters = [
        {"kode": "2024-1", "jenis": "semester", "tahun": 2024, "semester": 1, "status": "ditutup"},
        {"kode": "2024-2", "jenis": "semester", "tahun": 2024, "semester": 2, "status": "ditutup"},
        {"kode": "2026", "jenis": "tahunan", "tahun": 2026, "status": "berjalan"},
        {"kode": "2025-3", "jenis": "semester", "tahun": 2025, "semester": 3, "status": "ditutup"},
    ]
    listed = read_periods(semesters)
    assert [p.code for p in listed] == ["2024-1", "2024-2", "2026"]
    assert find_period(listed, "2024-1").period.kind is PeriodKind.SEMESTER
    # Asked for by name, the broken entry says what is wrong with it, not "not listed".
    with pytest.raises(PeriodListingError, match="'2025-3' that breaks its contract"):
        find_period(listed, "2025-3")


def test_a_period_listed_twice_keeps_its_first_entry() -> None:
    first = _listing()[0]
    listed = read_periods([first, {**first, "status": "ditutup"}])
    assert [(p.code, p.running) for p in listed] == [("2026", True)]
    assert "2026 twice" in listed.problems[0].reason


def test_an_unlisted_period_names_the_listed_ones() -> None:
    with pytest.raises(PeriodListingError) as caught:
        find_period(read_periods(_listing()), "2023")
    assert str(caught.value) == (
        "the source does not list period 2023; it lists: 2024-2, 2025, 2026"
    )


def test_active_periods_are_running_or_inside_their_deadline() -> None:
    listed = read_periods(_listing())
    assert [p.code for p in active_periods(listed, dt.date(2026, 1, 31))] == ["2026", "2025"]
    assert [p.code for p in active_periods(listed, dt.date(2026, 2, 1))] == ["2026"]
    grace = active_periods(listed, dt.date(2026, 2, 5), grace_days=7)
    assert [p.code for p in grace] == ["2026", "2025"]


def test_each_mapping_version_says_which_kinds_it_maps() -> None:
    assert MAPPING_VERSIONS["2025.1"].period_kinds == {PeriodKind.SEMESTER}
    assert MAPPING_VERSIONS["2026.1"].period_kinds == {PeriodKind.SEMESTER}
    assert MAPPING_VERSIONS["2026.2"].period_kinds == set(PeriodKind)


def test_settings_pick_a_version_per_kind_and_the_old_key_means_semester() -> None:
    settings = load_settings(None)
    # The default of a period planned for the first time (each keeps its own afterwards).
    assert settings.sync.mapping_for(PeriodKind.SEMESTER) == "2026.2"
    assert settings.sync.mapping_for(PeriodKind.ANNUAL) == "2026.2"
    old = load_settings(None, overrides={"sync": {"mapping_version": "2026.1"}})
    assert old.sync.mapping_for(PeriodKind.SEMESTER) == "2026.1"
    assert old.sync.mapping_setting(PeriodKind.SEMESTER) == "[sync] mapping_version"
    both = load_settings(
        None, overrides={"sync": {"mapping_versions": {"semester": "2026.2", "tahunan": "2026.2"}}}
    )
    assert both.sync.mapping_for(PeriodKind.SEMESTER) == "2026.2"


def test_a_version_that_cannot_map_the_kind_is_refused_naming_the_key(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "config.toml"
    path.write_text('[sync]\nmapping_versions = { tahunan = "2025.1" }\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "sync.mapping_versions" in message
    assert str(path) in message
    assert "2025.1 maps semester periods only" in message
    assert "2026.2" in message


def test_a_run_with_a_version_that_cannot_map_the_kind_names_the_setting() -> None:
    choice = MappingChoice(
        versions={PeriodKind.ANNUAL: get_mapping("2026.1")},
        settings={PeriodKind.ANNUAL: "[sync] mapping_versions.tahunan"},
    )
    with pytest.raises(MappingChoiceError, match=r"\[sync\] mapping_versions.tahunan"):
        choice.for_period(Period.parse("2026"))
    assert MappingChoice.single(get_mapping("2026.2")).for_period(Period.parse("2024-1")).name == (
        "2026.2"
    )


def test_a_mapping_version_from_the_environment_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EKINERJA_SYNC_SYNC__MAPPING_VERSIONS__TAHUNAN", "2025.1")
    with pytest.raises(ConfigError, match="EKINERJA_SYNC_SYNC__MAPPING_VERSIONS__TAHUNAN"):
        load_settings(None)
    monkeypatch.setenv("EKINERJA_SYNC_SYNC__MAPPING_VERSIONS__TAHUNAN", "2026.2")
    monkeypatch.setenv("EKINERJA_SYNC_SYNC__MAPPING_VERSIONS__SEMESTER", "2026.2")
    assert load_settings(None).sync.mapping_for(PeriodKind.SEMESTER) == "2026.2"


def _golden(name: str) -> PerformanceRecord:
    path = Path(__file__).resolve().parents[1] / "golden" / "2026.2" / f"{name}.source.json"
    record = read_record(json.loads(path.read_text(encoding="utf-8")))
    assert isinstance(record, PerformanceRecord)
    return record


def test_the_default_of_a_new_semester_is_2026_2_which_follows_the_rule() -> None:
    """Issue 23: 2025.1, the semester default before, counts 6 months whatever tmt_jabatan
    says, rounds to 2 decimals and moves a WITA date to the WIB day."""
    assert DEFAULT_VERSIONS == {PeriodKind.SEMESTER: "2026.2", PeriodKind.ANNUAL: "2026.2"}
    old, new = get_mapping("2025.1"), get_mapping("2026.2")
    # Jabatan from 2 December: no whole month of the semester is left, so no angka kredit.
    late = _golden("semester_guru_tmt_in_last_month_no_whole_month")
    assert old.assessment(late)["angka_kredit"] == 1.56  # 12.5 x 25 % x 6/12, 2 decimals
    assert "angka_kredit" not in new.assessment(late)
    # Finalised at 00:30 WITA on 1 December; 37.5 x 75 % x 6/12 = 14.0625.
    wita = _golden("semester_guru_finalised_in_wita_after_midnight")
    before, after = old.assessment(wita), new.assessment(wita)
    assert (before["tanggal_penilaian"], before["angka_kredit"]) == ("2024-11-30", 14.06)
    assert (after["tanggal_penilaian"], after["angka_kredit"]) == ("2024-12-01", 14.063)
    # A new CPNS from 1 April: April to June, 3 months.
    april = new.assessment(_golden("semester_guru_new_cpns_tmt_first_of_april"))
    assert (april["angka_kredit"], april["bulan_dinilai"]) == (3.125, 3)
