"""What delivery and reconciliation need of the target, and nothing more.

The caller owns the seam: ``Deliverer`` (through its ``Sender``) and ``reconcile`` name only
``Target``; ``sync.bootstrap`` is the one place that names the concrete client
(``connectors.ekinerja.EkinerjaClient``). A second target is one adapter in ``connectors/``
with these methods, raising the errors of ``connectors.errors`` (retriable, rejected,
conflict, precondition failed, paused, unreachable, fatal), wired in ``bootstrap``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from connectors.ekinerja import TargetAnswer

__all__ = ["Target", "TargetAnswer"]


class Target(Protocol):
    """The target's writes (each carries an idempotency key: the same key, the same answer)
    and the reads reconciliation compares with. A body is the canonical JSON text the outbox
    keeps; it goes on the wire as it is."""

    def create_skp(self, body: str, *, idempotency_key: str) -> TargetAnswer:
        """Create an SKP; the answer carries its id and version (``id_skp``, ``versi``)."""
        ...

    def update_skp(
        self, skp_id: str, body: str, *, version: int, idempotency_key: str
    ) -> TargetAnswer:
        """Replace an SKP held at ``version``; the answer carries the new version."""
        ...

    def create_assessment(self, skp_id: str, body: str, *, idempotency_key: str) -> TargetAnswer:
        """Create the penilaian of an SKP (which locks it)."""
        ...

    def find_skps(
        self, nip: str, year: int, semester: int | None, *, jenis: str = "semester"
    ) -> list[dict[str, Any]]:
        """The SKPs the target holds for a NIP and period."""
        ...

    def school_skps(
        self, npsn: str, year: int, semester: int | None, *, jenis: str = "semester"
    ) -> Iterable[dict[str, Any]]:
        """Every SKP of the period whose unit kerja is the school, whoever made it."""
        ...
