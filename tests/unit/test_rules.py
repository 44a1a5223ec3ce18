"""mappings.rules: the predikat matrix and angka kredit, checked against docs/domain.md."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from mappings.rules import Grade, Predicate, Rating, credit_points, expected_predicate

# The names docs/domain.md uses, translated once to the code's English enums.
RATING = {
    "DIATAS_EKSPEKTASI": Rating.ABOVE,
    "SESUAI_EKSPEKTASI": Rating.MEETS,
    "DIBAWAH_EKSPEKTASI": Rating.BELOW,
}
PREDIKAT = {
    "SANGAT_BAIK": Predicate.VERY_GOOD,
    "BAIK": Predicate.GOOD,
    "BUTUH_PERBAIKAN": Predicate.NEEDS_IMPROVEMENT,
    "KURANG": Predicate.POOR,
    "SANGAT_KURANG": Predicate.VERY_POOR,
}
JENJANG = {
    "ahli_pertama": Grade.FIRST,
    "ahli_muda": Grade.JUNIOR,
    "ahli_madya": Grade.MIDDLE,
    "ahli_utama": Grade.MAIN,
}

# docs/domain.md, "Predikat matrix": rows hasil kerja, columns perilaku kerja
# (DIBAWAH, SESUAI, DIATAS).
MATRIX_TABLE = """
DIATAS_EKSPEKTASI  | KURANG        | BAIK            | SANGAT_BAIK
SESUAI_EKSPEKTASI  | KURANG        | BAIK            | BAIK
DIBAWAH_EKSPEKTASI | SANGAT_KURANG | BUTUH_PERBAIKAN | BUTUH_PERBAIKAN
"""
COLUMNS = ("DIBAWAH_EKSPEKTASI", "SESUAI_EKSPEKTASI", "DIATAS_EKSPEKTASI")


def _matrix_cells() -> list[tuple[str, str, str]]:
    cells = []
    for line in MATRIX_TABLE.strip().splitlines():
        hasil, *predikats = (part.strip() for part in line.split("|"))
        cells.extend((hasil, perilaku, p) for perilaku, p in zip(COLUMNS, predikats, strict=True))
    return cells


CELLS = _matrix_cells()

# docs/domain.md, "Angka kredit": percentage per predikat, koefisien tahunan per jenjang.
PERCENT = {
    "SANGAT_BAIK": "150",
    "BAIK": "100",
    "BUTUH_PERBAIKAN": "75",
    "KURANG": "50",
    "SANGAT_KURANG": "25",
}
KOEFISIEN = {"ahli_pertama": "12.5", "ahli_muda": "25", "ahli_madya": "37.5", "ahli_utama": "50"}


def expected_credit(jenjang: str, predikat: str, months: int) -> Decimal:
    raw = Decimal(KOEFISIEN[jenjang]) * Decimal(PERCENT[predikat]) / Decimal(100)
    raw = raw * Decimal(months) / Decimal(12)
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_matrix_table_has_nine_distinct_cells() -> None:
    assert len({(h, p) for h, p, _ in CELLS}) == 9


@pytest.mark.parametrize(("hasil", "perilaku", "predikat"), CELLS)
def test_predicate_matrix_cell(hasil: str, perilaku: str, predikat: str) -> None:
    assert expected_predicate(RATING[hasil], RATING[perilaku]) is PREDIKAT[predikat]


def test_misconduct_gives_kurang_even_with_results_above_expectations() -> None:
    # Perilaku DIBAWAH is misconduct: it caps the predikat at KURANG unless hasil is also low.
    assert expected_predicate(Rating.ABOVE, Rating.BELOW) is Predicate.POOR
    assert expected_predicate(Rating.BELOW, Rating.BELOW) is Predicate.VERY_POOR


@pytest.mark.parametrize("predikat", sorted(PERCENT))
@pytest.mark.parametrize("jenjang", sorted(KOEFISIEN))
def test_credit_points_for_a_semester(jenjang: str, predikat: str) -> None:
    got = credit_points(JENJANG[jenjang], PREDIKAT[predikat], 6)
    assert got == expected_credit(jenjang, predikat, 6)
    assert isinstance(got, Decimal)
    assert got.as_tuple().exponent == -2


@pytest.mark.parametrize("predikat", sorted(PERCENT))
@pytest.mark.parametrize("jenjang", sorted(KOEFISIEN))
def test_default_months_is_a_semester(jenjang: str, predikat: str) -> None:
    assert credit_points(JENJANG[jenjang], PREDIKAT[predikat]) == expected_credit(
        jenjang, predikat, 6
    )


@pytest.mark.parametrize(
    ("jenjang", "predikat", "expected"),
    [
        ("ahli_muda", "BAIK", "12.50"),  # 25 x 100% x 6/12
        ("ahli_madya", "BUTUH_PERBAIKAN", "14.06"),  # 37.5 x 75% x 6/12 = 14.0625
        ("ahli_madya", "SANGAT_BAIK", "28.13"),  # 37.5 x 150% x 6/12 = 28.125, half up
        ("ahli_pertama", "SANGAT_KURANG", "1.56"),  # 12.5 x 25% x 6/12 = 1.5625
        ("ahli_utama", "SANGAT_BAIK", "37.50"),  # 50 x 150% x 6/12
    ],
)
def test_worked_examples(jenjang: str, predikat: str, expected: str) -> None:
    got = credit_points(JENJANG[jenjang], PREDIKAT[predikat], 6)
    assert got == Decimal(expected)
    assert str(got) == expected


def test_half_up_not_bankers_rounding() -> None:
    # 28.125 would become 28.12 under ROUND_HALF_EVEN (and under float arithmetic, often).
    assert credit_points(Grade.MIDDLE, Predicate.VERY_GOOD, 6) == Decimal("28.13")


@pytest.mark.parametrize("months", range(1, 13))
@pytest.mark.parametrize("predikat", sorted(PERCENT))
@pytest.mark.parametrize("jenjang", sorted(KOEFISIEN))
def test_proration_by_months(jenjang: str, predikat: str, months: int) -> None:
    got = credit_points(JENJANG[jenjang], PREDIKAT[predikat], months)
    assert got == expected_credit(jenjang, predikat, months)
    assert got.as_tuple().exponent == -2


def test_a_full_year_earns_the_annual_coefficient_times_percentage() -> None:
    assert credit_points(Grade.JUNIOR, Predicate.GOOD, 12) == Decimal("25.00")
    assert credit_points(Grade.FIRST, Predicate.VERY_GOOD, 12) == Decimal("18.75")


def test_one_month_rounds_a_repeating_fraction() -> None:
    # 12.5 x 25% / 12 = 0.260416... -> 0.26 ; 37.5 x 75% / 12 = 2.34375 -> 2.34
    assert credit_points(Grade.FIRST, Predicate.VERY_POOR, 1) == Decimal("0.26")
    assert credit_points(Grade.MIDDLE, Predicate.NEEDS_IMPROVEMENT, 1) == Decimal("2.34")


@pytest.mark.parametrize("months", [0, 13, -6, 24])
def test_months_outside_a_year_are_rejected(months: int) -> None:
    with pytest.raises(ValueError, match="months"):
        credit_points(Grade.JUNIOR, Predicate.GOOD, months)
