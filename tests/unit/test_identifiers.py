"""mappings.identifiers: NIP / NI PPPK, NUPTK and NPSN (docs/domain.md, "Identifiers")."""

from __future__ import annotations

import datetime as dt

import pytest

from mappings.identifiers import (
    check_birth_date,
    check_nip,
    check_npsn,
    check_nuptk,
    check_tmt_cpns_age,
    check_tmt_cpns_period,
)


def pns_nip(birth: str = "19850315", tmt: str = "201001", sex: str = "2", seq: str = "003") -> str:
    """PNS: birth date YYYYMMDD + TMT CPNS YYYYMM + sex + sequence."""
    return birth + tmt + sex + seq


def pppk_ni(
    birth: str = "19900101", year: str = "2022", code: str = "15", sex: str = "1", seq: str = "001"
) -> str:
    """PPPK: birth date YYYYMMDD + appointment year YYYY + 2-digit code + sex + sequence."""
    return birth + year + code + sex + seq


# --- NIP of a PNS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "nip",
    [
        pns_nip(),
        pns_nip(birth="19600229", tmt="198512", sex="1", seq="999"),  # leap day, December
        pns_nip(tmt="201101", seq="001"),
    ],
)
def test_valid_pns_nip(nip: str) -> None:
    assert len(nip) == 18
    assert check_nip(nip, "PNS") is None


@pytest.mark.parametrize(
    ("nip", "mentions"),
    [
        (pns_nip()[:-1], "18 digits"),  # 17 digits
        (pns_nip() + "1", "18 digits"),  # 19 digits
        ("", "18 digits"),
        (pns_nip()[:10] + "A" + pns_nip()[11:], "18 digits"),
        (pns_nip()[:8] + " " + pns_nip()[9:], "18 digits"),
        (pns_nip(birth="19850230"), "19850230"),  # 30 February
        (pns_nip(birth="19851301"), "19851301"),  # month 13
        (pns_nip(birth="19850100"), "19850100"),  # day 0
        (pns_nip(birth="19610229"), "19610229"),  # not a leap year
        (pns_nip(tmt="201000"), "00"),
        (pns_nip(tmt="201013"), "13"),
        (pns_nip(sex="3"), "sex"),
        (pns_nip(sex="0"), "sex"),
        (pns_nip(seq="000"), "000"),
    ],
)
def test_invalid_pns_nip(nip: str, mentions: str) -> None:
    reason = check_nip(nip, "PNS")
    assert reason is not None
    assert mentions in reason


@pytest.mark.parametrize("value", [None, 198503152010012003, ["198503152010012003"], b"1" * 18])
def test_nip_that_is_not_a_string_is_invalid(value: object) -> None:
    assert check_nip(value, "PNS") is not None


@pytest.mark.parametrize(
    "nip",
    [
        # Arabic-Indic and full-width digits are "digits" to Python's \d, but not to BKN.
        "١٩٨٥٠٣١٥٢٠١٠٠١2003",
        "１９８５０３１５２０１００１2００３",
    ],
)
def test_nip_with_non_ascii_digits_is_invalid(nip: str) -> None:
    assert len(nip) == 18
    assert check_nip(nip, "PNS") is not None
    assert check_nip(nip, "PPPK") is not None


def test_unknown_employment_status_is_reported() -> None:
    reason = check_nip(pns_nip(), "HONORER")
    assert reason is not None
    assert "HONORER" in reason


# --- NI PPPK ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["13", "15", "21", "99", "00"])
def test_pppk_code_that_is_not_a_month_is_valid_for_pppk_only(code: str) -> None:
    ni = pppk_ni(code=code)
    assert len(ni) == 18
    assert check_nip(ni, "PPPK") is None
    reason = check_nip(ni, "PNS")
    assert reason is not None
    assert code in reason


def test_pppk_with_a_month_like_code_is_valid_either_way() -> None:
    ni = pppk_ni(code="07")
    assert check_nip(ni, "PPPK") is None
    assert check_nip(ni, "PNS") is None


@pytest.mark.parametrize(
    "ni",
    [
        pppk_ni(birth="19900230"),
        pppk_ni(sex="3"),
        pppk_ni(seq="000"),
        pppk_ni()[:-1],
        pppk_ni()[:5] + "x" + pppk_ni()[6:],
    ],
)
def test_invalid_pppk_ni(ni: str) -> None:
    assert check_nip(ni, "PPPK") is not None


# --- NUPTK -----------------------------------------------------------------------------------


def test_nuptk_of_16_digits_or_none_is_valid() -> None:
    assert check_nuptk("1234567890123456") is None
    assert check_nuptk("0000000000000000") is None
    assert check_nuptk(None) is None
    assert check_nuptk("") is None  # empty, as many Dapodik exports have it: absent


@pytest.mark.parametrize(
    "nuptk",
    [
        "123456789012345",  # 15
        "12345678901234567",  # 17
        " ",
        "123456789012345A",
        "1234 67890123456",
        "١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦",  # 16 Arabic-Indic digits
        1234567890123456,
    ],
)
def test_invalid_nuptk(nuptk: object) -> None:
    reason = check_nuptk(nuptk)
    assert reason is not None
    assert "16 digits" in reason


# --- NPSN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "npsn", ["20212345", "10000001", "3ABCDEFG", "4Z9Y8X7W", "59999999", "6P000001", "90000000"]
)
def test_valid_npsn(npsn: str) -> None:
    assert check_npsn(npsn) is None


@pytest.mark.parametrize("npsn", ["2abcdefg", "2021234a", "3Abcdefg"])
def test_npsn_with_lowercase_is_invalid(npsn: str) -> None:
    assert check_npsn(npsn) is not None


@pytest.mark.parametrize("first", list("0123456789"))
def test_npsn_with_any_first_digit_is_valid(first: str) -> None:
    # Madrasah and newer schools start with 6, 7, 8, ...: the first digit is no region code
    # anyone can check here (docs/domain.md, "Identifiers"); guessing one dropped whole schools.
    assert check_npsn(first + "0212345") is None


@pytest.mark.parametrize("npsn", ["P9876543", "K1234567", "P0000001"])
def test_pkbm_skb_and_lkp_npsn_are_valid(npsn: str) -> None:
    assert check_npsn(npsn) is None


@pytest.mark.parametrize("npsn", ["2021234", "202123456", "", "2021-234", None, 20212345])
def test_npsn_of_wrong_shape_is_invalid(npsn: object) -> None:
    assert check_npsn(npsn) is not None


# --- the NIP's own dates -------------------------------------------------------------------


def test_birth_date_after_the_day_the_record_was_written_is_impossible() -> None:
    nip = pns_nip(birth="20250621", tmt="204306")
    assert "2025-06-21 is in the future" in (check_birth_date(nip, dt.date(2025, 6, 20)) or "")
    assert check_birth_date(nip, dt.date(2025, 6, 21)) is None  # the day itself: allowed


@pytest.mark.parametrize(
    ("birth", "tmt", "possible"),
    [
        ("19850315", "200303", True),  # the month of the 18th birthday
        ("19850315", "200302", False),  # the month before it
        ("19850301", "200302", False),
        ("19850331", "200303", True),
        ("20000229", "201802", True),  # a leap-day birth: 18 in February 2018
        ("20000229", "201801", False),
        ("19601231", "198512", True),
    ],
)
def test_tmt_cpns_before_the_18th_birthday_is_impossible(
    birth: str, tmt: str, possible: bool
) -> None:
    reason = check_tmt_cpns_age(pns_nip(birth=birth, tmt=tmt))
    assert (reason is None) is possible, reason


@pytest.mark.parametrize(
    ("tmt", "end", "possible"),
    [
        ("202506", dt.date(2025, 6, 30), True),  # the period's last month
        ("202507", dt.date(2025, 6, 30), False),
        ("202601", dt.date(2025, 12, 31), False),
        ("201001", dt.date(2024, 6, 30), True),
    ],
)
def test_tmt_cpns_after_the_period_is_impossible(tmt: str, end: dt.date, possible: bool) -> None:
    reason = check_tmt_cpns_period(pns_nip(tmt=tmt), end)
    assert (reason is None) is possible, reason
