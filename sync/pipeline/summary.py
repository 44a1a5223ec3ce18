"""What a run tells: the summary of a run, the outcome of a replay."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from state.models import (
    DeliveryKind,
    RecordStatus,
)
from sync.delivery.backpressure import Backpressure

__all__ = ["ReplayOutcome", "RunSummary"]


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
    # Entries of the source's period listing that break the contract, left out (the other
    # periods sync): what is wrong and who fixes it.
    listing_problems: list[str] = field(default_factory=list)
    # e-Kinerja's "later": answers 429 (rate limited) and 503 (busy, maintenance), the wall
    # time the run waited on them, and the records left pending because of them.
    rate_limited: int = 0
    busy: int = 0
    throttle_wait_s: float = 0.0
    left_throttled: int = 0
    # What stopped the overlap helper (``sync.pipeline.overlap``), when something did:
    # (exit code, message, problem); the run's exit code counts it.
    helper_error: tuple[int, str, str | None] | None = None

    @property
    def throttled(self) -> bool:
        """e-Kinerja slowed this run down (429/503), or left records pending by it."""
        return bool(self.rate_limited or self.busy or self.left_throttled)

    def add_backpressure(self, seen: Backpressure) -> None:
        """Count one delivery's 429s and 503s in (a run may deliver several times)."""
        self.rate_limited += seen.rate_limited
        self.busy += seen.busy
        self.throttle_wait_s += seen.waited_s
        self.left_throttled += seen.left_pending

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
            "listing_problems": self.listing_problems,
            "throttled": {
                "rate_limited": self.rate_limited,
                "busy": self.busy,
                "waited_s": round(self.throttle_wait_s, 1),
                "left_pending": self.left_throttled,
            },
        }

    def count(self, kind: str, outcome: str) -> int:
        return self.outcomes[(kind, outcome)]

    def throttle_line(self) -> str:
        """One line on e-Kinerja's "later": how often, how long the run waited, what is left
        ("e-Kinerja asked to slow down 37 times (rate limit, 429); waited 61 s; 0 records
        left pending")."""
        said = []
        if self.rate_limited:
            said.append(f"asked to slow down {_times(self.rate_limited)} (rate limit, 429)")
        if self.busy:
            said.append(f"said it was busy {_times(self.busy)} (503, busy or maintenance)")
        pending = self.count("skp", "pending") + self.count("assessment", "pending")
        left = f"{pending} record{'' if pending == 1 else 's'} left pending"
        return (
            f"e-Kinerja {' and '.join(said) or 'asked to wait'}; "
            f"waited {self.throttle_wait_s:.0f} s; "
            + (f"{left}, sent on the next run" if pending else left)
        )


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    nip: str
    period: str
    npsn: str
    kind: DeliveryKind
    before: RecordStatus
    after: RecordStatus | None
    reason: str | None
