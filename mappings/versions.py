"""The mapping versions this release knows, by name, and the period kinds each can map."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mappings import v2025_1, v2026_1, v2026_2
from mappings.model import PerformanceRecord, PeriodKind

__all__ = [
    "DEFAULT_VERSIONS",
    "FIRST_VERSION",
    "MAPPING_VERSIONS",
    "MappingVersion",
    "get_mapping",
]

Payload = dict[str, Any]


@dataclass(frozen=True)
class MappingVersion:
    name: str
    description: str
    skp: Callable[[PerformanceRecord], Payload]
    assessment: Callable[[PerformanceRecord], Payload]
    period_kinds: frozenset[PeriodKind]  # the kinds of period it can map

    def maps(self, kind: PeriodKind) -> bool:
        return kind in self.period_kinds

    @property
    def kinds_label(self) -> str:
        """``semester``, ``tahunan`` or ``semester, tahunan``."""
        return ", ".join(k.value for k in PeriodKind if k in self.period_kinds)


_SEMESTER = frozenset({PeriodKind.SEMESTER})

MAPPING_VERSIONS: dict[str, MappingVersion] = {
    v2025_1.VERSION: MappingVersion(
        name=v2025_1.VERSION,
        description="PMM schema v1/v2 to e-Kinerja SKP + penilaian; one rencana hasil kerja",
        skp=v2025_1.skp_payload,
        assessment=v2025_1.assessment_payload,
        period_kinds=_SEMESTER,
    ),
    v2026_1.VERSION: MappingVersion(
        name=v2026_1.VERSION,
        description=(
            "as 2025.1, plus: one rencana hasil kerja per indicator (two for a kepala sekolah"
            " with two); the indicator target states the training hours (JP); catatan trimmed"
        ),
        skp=v2026_1.skp_payload,
        assessment=v2026_1.assessment_payload,
        period_kinds=_SEMESTER,
    ),
    v2026_2.VERSION: MappingVersion(
        name=v2026_2.VERSION,
        description=(
            "as 2026.1, plus: periode.jenis; angka kredit over the months from tmt_jabatan, "
            "3 decimals, with bulan_dinilai; tanggal_penilaian in the offset PMM wrote; "
            "targets for a year"
        ),
        skp=v2026_2.skp_payload,
        assessment=v2026_2.assessment_payload,
        period_kinds=frozenset(PeriodKind),
    ),
}
# The version of each period kind for a period planned for the first time when the config
# names none: 2026.2 for both, the one that counts months from tmt_jabatan, rounds to 3
# decimals and keeps the local date (docs/domain.md, "Angka kredit": a new installation
# uses it for a semester too). A period keeps the version it was first planned with
# (``period.mapping_version``), and one already delivered before that was recorded keeps the
# version its records went out with (2025.1, this default's predecessor for semesters): a
# default that changed must never remap a delivered SKP (sync.pipeline.periods.period_mapping).
DEFAULT_VERSIONS: dict[PeriodKind, str] = {
    PeriodKind.SEMESTER: v2026_2.VERSION,
    PeriodKind.ANNUAL: v2026_2.VERSION,
}
# The first released version: every later one answers for its golden cases (tests/golden).
FIRST_VERSION = v2025_1.VERSION


def get_mapping(name: str) -> MappingVersion:
    try:
        return MAPPING_VERSIONS[name]
    except KeyError:
        known = ", ".join(sorted(MAPPING_VERSIONS))
        raise KeyError(f"unknown mapping version {name!r}; known: {known}") from None
