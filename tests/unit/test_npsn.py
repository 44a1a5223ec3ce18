"""sync.npsn.check_format: 8 digits or capital letters, nothing more assumed."""

from __future__ import annotations

import pytest

from sync.operations.npsn import NpsnError, check_format


@pytest.mark.parametrize("npsn", ["20212345", "P1234567", "K7654321", "70001234", "ABCDEFGH"])
def test_eight_digits_or_capitals_are_npsns(npsn: str) -> None:
    check_format([npsn])


@pytest.mark.parametrize("npsn", ["2021234", "202123456", "p1234567", "2021 345", "", "2021234Ä"])
def test_anything_else_is_named(npsn: str) -> None:
    with pytest.raises(NpsnError) as caught:
        check_format(["20212345", npsn], "sync.schools")
    assert repr(npsn) in str(caught.value)
    assert str(caught.value).startswith("sync.schools:")
