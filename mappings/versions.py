"""The mapping versions this release knows, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mappings import v2025_1, v2026_1
from mappings.model import PerformanceRecord

__all__ = ["DEFAULT_VERSION", "MAPPING_VERSIONS", "MappingVersion", "get_mapping"]

Payload = dict[str, Any]


@dataclass(frozen=True)
class MappingVersion:
    name: str
    description: str
    skp: Callable[[PerformanceRecord], Payload]
    assessment: Callable[[PerformanceRecord], Payload]


MAPPING_VERSIONS: dict[str, MappingVersion] = {
    v2025_1.VERSION: MappingVersion(
        name=v2025_1.VERSION,
        description="PMM schema v1/v2 to e-Kinerja SKP + penilaian; one rencana hasil kerja",
        skp=v2025_1.skp_payload,
        assessment=v2025_1.assessment_payload,
    ),
    v2026_1.VERSION: MappingVersion(
        name=v2026_1.VERSION,
        description=(
            "as 2025.1, plus: one rencana hasil kerja per indicator (two for a kepala sekolah"
            " with two); the indicator target states the training hours (JP); catatan trimmed"
        ),
        skp=v2026_1.skp_payload,
        assessment=v2026_1.assessment_payload,
    ),
}
DEFAULT_VERSION = v2025_1.VERSION


def get_mapping(name: str) -> MappingVersion:
    try:
        return MAPPING_VERSIONS[name]
    except KeyError:
        known = ", ".join(sorted(MAPPING_VERSIONS))
        raise KeyError(f"unknown mapping version {name!r}; known: {known}") from None
