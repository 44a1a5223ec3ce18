"""What goes into the audit ledger: every delivery attempt, every operator action.

The parts that write to the ledger each own the protocol they write through: delivery's
``AttemptLog`` (``sync.delivery.results``: ``attempts``) and the engine's ``Audit``
(``sync.pipeline.audit``: ``operator_action``). ``LedgerWriter`` is the one implementation of
both: it turns each into a ``state.ledger.LedgerEvent`` and appends it inside the caller's
transaction, so the ledger entry and the state change it describes commit together.

It sits at the root of ``sync``, beside the rooms, not in ``state/`` next to
``state.ledger``: an ``Attempt`` is delivery's value (what one request came to), and ``state``
imports nothing of ``sync``. Nothing in ``pipeline`` or ``delivery`` imports this module;
``sync.bootstrap`` (and the operator actions) hand it in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import Connection
from sqlmodel import Session

from state import ledger
from sync.delivery.results import Attempt

__all__ = ["LedgerWriter"]


class LedgerWriter:
    """Appends to the hash-chained ledger in the caller's transaction, as ``actor``."""

    def __init__(
        self, *, actor: str, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.actor = actor
        self.clock = clock

    def attempts(self, session: Session | Connection, attempts: Sequence[Attempt]) -> None:
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
        """One ledger entry for an operator's action, done (``actor`` names the operator)."""
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
