"""What the engine tells the audit ledger: the operator actions it carries out (a replay).

The engine owns this protocol and depends on nothing else of the ledger; the implementation
is ``sync.ledger_writer.LedgerWriter`` (which also writes delivery's attempts, through
delivery's own ``AttemptLog``), handed in by ``sync.bootstrap``. It writes inside the
caller's transaction, so the ledger entry and the state change it describes commit together.
"""

from __future__ import annotations

from typing import Protocol

from sqlmodel import Session

__all__ = ["Audit", "NullAudit"]


class Audit(Protocol):
    def operator_action(
        self,
        session: Session,
        *,
        actor: str,
        action: str,
        period: str | None,
        nip: str | None,
        npsn: str | None,
        kind: str | None,
        detail: str | None,
        run_id: str | None = None,
    ) -> None: ...


class NullAudit:
    """Records nothing (unit tests of other parts)."""

    def operator_action(self, session: Session, **_fields: str | None) -> None:
        return None
