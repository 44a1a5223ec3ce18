"""What delivery hands on: an attempt for the ledger (through the ``AttemptLog`` it owns), a
result for the run, what delivering one entry needs of the state, and the texts of an answer
(as stored, as audited, as an operator reads it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlmodel import Session

from connectors.errors import SyncError
from state.models import DeliveryKind, OutboxAction, RecordStatus
from state.store import DeliverableHead, OutboxHead

__all__ = [
    "ENTRY_CLOSED",
    "Attempt",
    "AttemptLog",
    "DeliveryContext",
    "DeliveryResult",
    "answer_json",
    "answer_text",
    "exhausted_code",
    "target_reason",
]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request to the target and what came of it: what the ledger keeps."""

    run_id: str | None
    entry: OutboxHead
    outcome: str  # delivered | retry | paused | held | rejected | locked | failed
    http_status: int | None
    answer: str | None
    duration_ms: int | None
    detail: str | None = None


class AttemptLog(Protocol):
    """Where delivery's attempts go: written in order, in the caller's transaction, so each
    one commits with the state change it explains (the ledger: ``sync.ledger_writer``)."""

    def attempts(self, session: Session | Connection, attempts: Sequence[Attempt]) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    nip: str
    period: str
    kind: DeliveryKind
    action: OutboxAction
    status: RecordStatus
    reason: str | None

    @classmethod
    def of(cls, entry: OutboxHead, status: RecordStatus, reason: str | None) -> DeliveryResult:
        return cls(entry.nip, entry.period, entry.kind, entry.action, status, reason)


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    """What delivering one entry needs of the state: its deliverable, the SKP of the same
    teacher (a penilaian is sent under it) and, for an SKP, its penilai's SKP."""

    record: DeliverableHead
    skp: DeliverableHead | None
    assessor: DeliverableHead | None


# Outcomes after which the outbox entry is done or dead (not pending any more).
ENTRY_CLOSED = frozenset({RecordStatus.DELIVERED, RecordStatus.FAILED, RecordStatus.LOCKED})


def exhausted_code(status: int | None) -> str:
    """The reason code of a record whose retries ran out on ``status``: it names the cause,
    so the advice can (``sync.advice``; ``retries_exhausted`` alone is the code of older
    rows)."""
    if status == 429:
        return "retries_exhausted_rate_limited"
    if status == 503:
        return "retries_exhausted_busy"
    if status in (None, 408, 504):  # no answer in time, from e-Kinerja or its gateway
        return "retries_exhausted_timeout"
    return "retries_exhausted_server_error"


def answer_json(value: Any) -> str:
    """An answer's body as stored (``last_answer``) and as audited (the ledger's
    ``answer_body``)."""
    # Not canonical JSON (", " and ": " separators), and stored and hashed as it is: it stays
    # json.dumps, which orjson cannot write.
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def answer_text(exc: SyncError) -> str:
    """What a refusal or a failure answered, as stored and audited (its message if no body)."""
    return answer_json(exc.answer) if exc.answer else exc.message


def target_reason(exc: SyncError) -> str:
    """What e-Kinerja answered, with the fields it named (422 VALIDASI), in one line."""
    pesan = exc.answer.get("pesan") or exc.message
    errors = exc.answer.get("errors")
    fields = "; ".join(
        f"{e.get('field')}: {e.get('pesan')}"
        for e in (errors if isinstance(errors, list) else [])
        if isinstance(e, dict)
    )
    answered = " ".join(str(part) for part in (exc.status, exc.code) if part)
    text = f"e-Kinerja answered {answered}: {pesan}" if answered else f"no answer: {pesan}"
    return f"{text} ({fields})" if fields else text
