"""What the engine tells the audit ledger: every delivery attempt, every operator action.

The engine depends on the ``Audit`` protocol; ``LedgerAudit`` writes to the append-only ledger
(``state.ledger``) inside the caller's transaction, so the ledger entry and the state change
it describes commit together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

from sqlmodel import Session

from state import ledger
from sync.delivery.deliver import Attempt

__all__ = ["Audit", "LedgerAudit", "NullAudit"]


class Audit(Protocol):
    def attempts(self, session: Session, attempts: Sequence[Attempt]) -> None: ...

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

    def attempts(self, session: Session, attempts: Sequence[Attempt]) -> None:
        return None

    def operator_action(self, session: Session, **_fields: str | None) -> None:
        return None


class LedgerAudit:
    """Appends to the hash-chained ledger in the caller's transaction."""

    def __init__(
        self, *, actor: str, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.actor = actor
        self.clock = clock

    def attempts(self, session: Session, attempts: Sequence[Attempt]) -> None:
        """One ledger entry per attempt, in order (one append for the lot)."""
        ledger.append_many(
            session,
            [
                ledger.LedgerEvent(
                    actor=self.actor,
                    action=attempt.entry.action.value,
                    outcome=attempt.outcome,
                    run_id=attempt.run_id,
                    period=attempt.entry.period,
                    npsn=attempt.entry.npsn,
                    nip=attempt.entry.nip,
                    kind=attempt.entry.kind.value,
                    mapping_version=attempt.entry.mapping_version,
                    idempotency_key=attempt.entry.idempotency_key,
                    request_body=attempt.entry.body,
                    http_status=attempt.http_status,
                    answer_body=attempt.answer,
                    duration_ms=attempt.duration_ms,
                    detail=attempt.detail,
                )
                for attempt in attempts
            ],
            at=self.clock(),
        )

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
    ) -> None:
        ledger.append(
            session,
            ledger.LedgerEvent(
                actor=actor,
                action=action,
                outcome="done",
                run_id=run_id,
                period=period,
                npsn=npsn,
                nip=nip,
                kind=kind,
                detail=detail,
            ),
            at=self.clock(),
        )
