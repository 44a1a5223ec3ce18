"""What delivery hands on: an attempt for the ledger, a result for the run, and the texts of
an answer (as stored, as audited, as an operator reads it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import Session

from connectors.ekinerja import TargetAnswer
from connectors.errors import (
    SyncError,
)
from state.models import (
    DeliveryKind,
    OutboxAction,
    RecordStatus,
)
from state.store import DeliverableHead, OutboxHead


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

    def attempts(self, session: Session, attempts: Sequence[Attempt]) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    nip: str
    period: str
    kind: DeliveryKind
    action: OutboxAction
    status: RecordStatus
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Context:
    """What delivering one entry needs of the state: its deliverable, the SKP of the same
    teacher (a penilaian is sent under it) and, for an SKP, its penilai's SKP."""

    record: DeliverableHead
    skp: DeliverableHead | None
    assessor: DeliverableHead | None


@dataclass(frozen=True, slots=True)
class _Answer:
    """A 2xx answer not yet written (``Deliverer._write_answers`` writes them in batches)."""

    entry: OutboxHead
    run_id: str | None
    answer: TargetAnswer
    duration_ms: int


# (kind, penilai or not) of the phases, in order: penilai SKPs, the other SKPs, penilaian.
_PHASES: tuple[tuple[DeliveryKind, bool | None], ...] = (
    (DeliveryKind.SKP, True),
    (DeliveryKind.SKP, False),
    (DeliveryKind.ASSESSMENT, None),
)
_DEFERRED = "deferred: its penilai's SKP is being sent"
_PENILAI_UNANSWERED = "its penilai's SKP got no answer"
_SKP_UNANSWERED = "its SKP got no answer"
# Outcomes after which the outbox entry is done or dead (not pending any more).
_ENTRY_CLOSED = {RecordStatus.DELIVERED, RecordStatus.FAILED, RecordStatus.LOCKED}


def _not_sent(why: str) -> str:
    return f"not sent: e-Kinerja cannot be reached ({why}); sent again on the next run"


def _exhausted_code(status: int | None) -> str:
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


def _json(value: Any) -> str:
    # Not canonical JSON (", " and ": " separators), and stored and hashed as it is (last_answer,
    # the ledger's answer_body): it stays json.dumps, which orjson cannot write.
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _answer_text(exc: SyncError) -> str:
    return _json(exc.answer) if exc.answer else exc.message


def _reason(exc: SyncError) -> str:
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
