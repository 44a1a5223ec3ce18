"""What a run is told and what it tells: the mapping version of each period kind, the
summary of a run, the outcome of a replay.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mappings.model import Period, PeriodKind
from mappings.versions import MappingVersion
from state.models import (
    DeliveryKind,
    RecordStatus,
)

__all__ = ["MappingChoice", "MappingChoiceError", "ReplayOutcome", "RunSummary"]


class MappingChoiceError(Exception):
    """The mapping version set for a period kind cannot map that kind; names the setting."""


@dataclass(frozen=True)
class MappingChoice:
    """The mapping version of each period kind, and the setting that chose it (for errors)."""

    versions: dict[PeriodKind, MappingVersion]
    settings: dict[PeriodKind, str] = field(default_factory=dict)

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


@dataclass
class RunSummary:
    """What one run did, for the summary table and the run row."""

    run_id: str
    period: str
    dry_run: bool
    kind: str = ""  # semester or tahunan
    mapping_version: str = ""
    pulled: int = 0
    # (kind, outcome) -> count; outcomes: new, updated, unchanged, waiting, held, failed,
    # locked, cancelled, pending
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    quarantined: int = 0
    requests_sent: int = 0
    # Why requests stayed unsent because e-Kinerja could not be reached (None: it could).
    target_unreachable: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "period": self.period,
            "kind": self.kind,
            "mapping_version": self.mapping_version,
            "dry_run": self.dry_run,
            "pulled": self.pulled,
            "quarantined": self.quarantined,
            "requests_sent": self.requests_sent,
            "outcomes": {f"{k}.{o}": n for (k, o), n in sorted(self.outcomes.items())},
            "target_unreachable": self.target_unreachable,
        }

    def count(self, kind: str, outcome: str) -> int:
        return self.outcomes[(kind, outcome)]


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    nip: str
    period: str
    npsn: str
    kind: DeliveryKind
    before: RecordStatus
    after: RecordStatus | None
    reason: str | None
