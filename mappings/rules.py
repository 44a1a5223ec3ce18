"""The regulations as pure functions: the predicate matrix and angka kredit.

PermenPANRB No. 6/2022 (predikat kinerja) and No. 1/2023 (angka kredit); see
docs/domain.md, "Predikat matrix" and docs/domain.md, "Angka kredit".
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

__all__ = [
    "PREDICATE_MATRIX",
    "Grade",
    "Predicate",
    "Rating",
    "credit_points",
    "expected_predicate",
]


class Rating(StrEnum):
    """A rating of work results (hasil kerja) or of work behaviour (perilaku kerja)."""

    ABOVE = "above"  # DIATAS_EKSPEKTASI
    MEETS = "meets"  # SESUAI_EKSPEKTASI
    BELOW = "below"  # DIBAWAH_EKSPEKTASI


class Predicate(StrEnum):
    """The predikat kinerja that the two ratings give."""

    VERY_GOOD = "very_good"  # SANGAT_BAIK
    GOOD = "good"  # BAIK
    NEEDS_IMPROVEMENT = "needs_improvement"  # BUTUH_PERBAIKAN
    POOR = "poor"  # KURANG
    VERY_POOR = "very_poor"  # SANGAT_KURANG


class Grade(StrEnum):
    """The jenjang of a jabatan fungsional (keahlian)."""

    FIRST = "first"  # ahli_pertama
    JUNIOR = "junior"  # ahli_muda
    MIDDLE = "middle"  # ahli_madya
    MAIN = "main"  # ahli_utama


# (result rating, behaviour rating) -> predicate
PREDICATE_MATRIX: dict[tuple[Rating, Rating], Predicate] = {
    (Rating.ABOVE, Rating.BELOW): Predicate.POOR,
    (Rating.ABOVE, Rating.MEETS): Predicate.GOOD,
    (Rating.ABOVE, Rating.ABOVE): Predicate.VERY_GOOD,
    (Rating.MEETS, Rating.BELOW): Predicate.POOR,
    (Rating.MEETS, Rating.MEETS): Predicate.GOOD,
    (Rating.MEETS, Rating.ABOVE): Predicate.GOOD,
    (Rating.BELOW, Rating.BELOW): Predicate.VERY_POOR,
    (Rating.BELOW, Rating.MEETS): Predicate.NEEDS_IMPROVEMENT,
    (Rating.BELOW, Rating.ABOVE): Predicate.NEEDS_IMPROVEMENT,
}

_PREDICATE_PERCENT: dict[Predicate, Decimal] = {
    Predicate.VERY_GOOD: Decimal(150),
    Predicate.GOOD: Decimal(100),
    Predicate.NEEDS_IMPROVEMENT: Decimal(75),
    Predicate.POOR: Decimal(50),
    Predicate.VERY_POOR: Decimal(25),
}

_ANNUAL_COEFFICIENT: dict[Grade, Decimal] = {
    Grade.FIRST: Decimal("12.5"),
    Grade.JUNIOR: Decimal(25),
    Grade.MIDDLE: Decimal("37.5"),
    Grade.MAIN: Decimal(50),
}


def expected_predicate(result: Rating, behaviour: Rating) -> Predicate:
    """The predicate the official matrix gives for the two ratings."""
    return PREDICATE_MATRIX[(result, behaviour)]


def credit_points(
    grade: Grade, predicate: Predicate, months: int = 6, *, places: int = 2
) -> Decimal:
    """Angka kredit for ``months`` of a period: koefisien x % x months / 12, rounded half up
    to ``places`` decimals (the released semester mappings keep 2; annual periods use 3, as
    BKN's own conversion examples do).

    >>> credit_points(Grade.MIDDLE, Predicate.NEEDS_IMPROVEMENT)
    Decimal('14.06')
    >>> credit_points(Grade.FIRST, Predicate.GOOD, 3, places=3)
    Decimal('3.125')
    """
    if not 1 <= months <= 12:
        raise ValueError(f"months must be 1..12, got {months}")
    if places not in (2, 3):
        raise ValueError(f"places must be 2 or 3, got {places}")
    raw = _ANNUAL_COEFFICIENT[grade] * _PREDICATE_PERCENT[predicate] / 100 * months / 12
    return raw.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
