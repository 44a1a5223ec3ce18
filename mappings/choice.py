"""Which mapping version maps each period kind, and the setting that chose it (for errors).

Built from the settings by ``sync.bootstrap.mapping_choice``; a period's own version (the one
it was first planned with) is kept by ``sync.pipeline.periods.period_mapping``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mappings.model import Period, PeriodKind
from mappings.versions import MappingVersion

__all__ = ["MappingChoice", "MappingChoiceError"]


class MappingChoiceError(Exception):
    """The mapping version set for a period kind cannot map that kind; names the setting."""


@dataclass(frozen=True)
class MappingChoice:
    """The mapping version of each period kind, and the setting that chose it (for errors).

    ``configured``: the kinds whose version the config names (the operator's choice, for
    every period of the kind). For the others, each period keeps the version it was first
    planned with (``sync.pipeline.periods.period_mapping``), and ``versions`` holds the
    default for a period planned for the first time. None: every kind is as ``versions``
    says (tests, benchmarks).
    """

    versions: dict[PeriodKind, MappingVersion]
    settings: dict[PeriodKind, str] = field(default_factory=dict)
    configured: frozenset[PeriodKind] | None = None

    def fixed(self, kind: PeriodKind) -> bool:
        """Whether every period of ``kind`` uses ``versions[kind]``, whatever it was
        planned with before."""
        return self.configured is None or kind in self.configured

    @classmethod
    def single(cls, mapping: MappingVersion) -> MappingChoice:
        """One version for every kind it can map (tests, benchmarks)."""
        return cls({kind: mapping for kind in mapping.period_kinds})

    def for_period(self, period: Period) -> MappingVersion:
        setting = self.settings.get(period.kind, f"[sync] mapping_versions.{period.kind.value}")
        mapping = self.versions.get(period.kind)
        if mapping is None or not mapping.maps(period.kind):
            chosen = f" = {mapping.name!r} (it maps {mapping.kinds_label})" if mapping else ""
            raise MappingChoiceError(
                f"period {period.code} is {period.kind.value}, and {setting}{chosen} cannot map "
                f"{period.kind.value} periods: set {setting} to a version that does "
                "(`ekinerja-sync mappings list`)"
            )
        return mapping
