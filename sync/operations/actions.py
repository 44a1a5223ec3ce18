"""What an operator may do to a failed record: replay it, or discard it.

Used by the web console (the CLI may adopt it). Each action checks what it is given, changes
the state, and writes a ledger entry naming the operator (``operator:<name>``) in the same
transaction as the change, so the ledger and the state cannot disagree.

- **replay**: the engine's replay (read the school from PMM again, plan afresh, send through
  the normal pipeline); only ``failed`` records can be replayed.
- **discard**: stop chasing a ``failed`` record without sending it: its status becomes
  ``cancelled`` with the reason ``discarded by <name>: <why>``, and the ledger gets a
  ``discard`` entry. Nothing is sent or deleted; when the record changes in PMM later, the
  next run plans it afresh like any other record.

A closed period takes none of them from one operator alone, a sealed one none at all
(docs/design.md, invariant 9): each action asks ``require_changeable`` first, the one guard
of every way in (the CLI's replay, discard and reset, the console's replay and discard, and
what an approved change request carries out, with its ``Approval``). A refusal
(``PeriodLocked``) says, in one line, how to ask for the change: ``ekinerja-sync actions
request ...``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from mappings.model import Period
from state.lifecycle import Lifecycle, PeriodState
from state.models import DISCARDED, DeliveryKind, RecordStatus, SyncRecord
from state.store import StateStore
from sync.bootstrap import App
from sync.ledger_writer import LedgerWriter
from sync.pipeline.engine import ReplayOutcome
from sync.secrets_guard import secret_problem
from sync.settings import Settings

__all__ = [
    "ActionRefused",
    "Approval",
    "PeriodLocked",
    "UnknownRecord",
    "choose_failed",
    "clean_why",
    "discard",
    "discard_many",
    "failure_id",
    "operator_actor",
    "parse_failure_id",
    "replay",
    "require_changeable",
    "require_replayable",
    "reset_cursors",
]

MAX_WHY = 500
_NIP = re.compile(r"[0-9]{1,18}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

AppBuilder = Callable[..., AbstractContextManager[App]]


class ActionRefused(Exception):
    """The action cannot be done; the message says why, in words. ``code`` tells a caller
    which case it is (``bad_id``, ``unknown``, ``not_failed``, ``nothing_chosen``,
    ``why_missing``, ``why_too_long``, ``refused_by_ledger``), to word it in its own language;
    ``record_id`` and ``status`` name the record concerned, where there is one."""

    def __init__(
        self, code: str, message: str, *, record_id: str | None = None, status: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.record_id = record_id
        self.status = status


class UnknownRecord(ActionRefused):
    """No record has this failure ID."""

    def __init__(self, record_id: str) -> None:
        super().__init__("unknown", f"no record {record_id}", record_id=record_id)


class PeriodLocked(ActionRefused):
    """The period is closed (a change needs a second operator: ``period_closed``) or sealed
    (no change until it is reopened: ``period_sealed``)."""


@dataclass(frozen=True)
class Approval:
    """A change request a second operator approved: what it carries out may touch the closed
    period. ``note`` names both people for the ledger."""

    request_id: int
    requested_by: str
    approved_by: str

    def note(self) -> str:
        return (
            f"request #{self.request_id} of {operator_actor(self.requested_by)}, approved by "
            f"{operator_actor(self.approved_by)}"
        )


def require_changeable(
    store: StateStore,
    period: str,
    action: str,
    *,
    request: str,
    approval: Approval | None = None,
) -> None:
    """Refuse (``PeriodLocked``) a change to ``period`` when it is sealed, or closed and the
    change was not approved by a second operator (``approval``). ``action`` names the change
    (``replay``) and ``request`` the command's arguments to ask for it instead (``replay
    2025-1/.../skp --why TEXT``), for the one-line message."""
    status = Lifecycle(store.engine).status(period)
    if status.state is PeriodState.SEALED:
        raise PeriodLocked(
            "period_sealed",
            f"{period} is sealed: no {action} until two operators reopen it: "
            f"`ekinerja-sync periods reopen {period} --why TEXT`, then another operator's "
            "`ekinerja-sync actions approve ID`",
            status=status.state.value,
        )
    if status.state is PeriodState.CLOSED and approval is None:
        raise PeriodLocked(
            "period_closed",
            f"{period} is {status.since()}; a {action} there needs a second operator: "
            f"`ekinerja-sync actions request {request}`, then another operator's "
            "`ekinerja-sync actions approve ID`",
            status=status.state.value,
        )


def require_replayable(
    store: StateStore, targets: Sequence[SyncRecord], *, approval: Approval | None = None
) -> None:
    """``require_changeable`` for a replay of ``targets``, period by period."""
    for period in sorted({record.period for record in targets}):
        ids = [failure_id(r) for r in targets if r.period == period]
        named = " ".join(ids) if len(ids) <= 3 else f"ID... (the {len(ids)} IDs of `failures list`)"
        require_changeable(
            store, period, "replay", request=f"replay {named} --why TEXT", approval=approval
        )


def operator_actor(user_name: str) -> str:
    """How the ledger names an operator: ``operator:<name>``."""
    return f"operator:{user_name}"


def failure_id(record: SyncRecord) -> str:
    """A failure's ID: ``<period>/<nip>/<kind>`` (as ``ekinerja-sync failures list`` shows)."""
    return f"{record.period}/{record.nip}/{record.kind.value}"


def parse_failure_id(value: str) -> tuple[str, str, DeliveryKind]:
    """``<period>/<nip>/<kind>`` -> its parts; ``ValueError`` when it is not one."""
    parts = value.split("/")
    kinds = {k.value: k for k in DeliveryKind}
    if len(parts) != 3 or not _NIP.fullmatch(parts[1]) or parts[2] not in kinds:
        raise ValueError(f"{value[:80]!r} is not a failure ID like 2026/198503152010012003/skp")
    try:
        period = Period.parse(parts[0])
    except ValueError:
        raise ValueError(
            f"{value[:80]!r} is not a failure ID like 2026/198503152010012003/skp"
        ) from None
    return period.code, parts[1], kinds[parts[2]]


def _records(store: StateStore, ids: Sequence[str]) -> list[SyncRecord]:
    found = []
    for value in ids:
        try:
            key = parse_failure_id(value)
        except ValueError as exc:
            raise ActionRefused("bad_id", str(exc)) from None
        record = store.reports.record(*key)
        if record is None:
            raise UnknownRecord(value)
        found.append(record)
    return found


def replay(
    settings: Settings,
    store: StateStore,
    ids: Sequence[str],
    *,
    user_name: str,
    build: AppBuilder,
    dry_run: bool = False,
    approval: Approval | None = None,
) -> list[ReplayOutcome]:
    """Replay the failed records named by ``ids`` as the operator ``user_name``.

    Refuses (``ActionRefused``) the whole request when an ID is unknown or its record is not
    ``failed`` (a locked record cannot be helped by a replay), or when a record's period is
    closed without ``approval`` or sealed (``PeriodLocked``): nothing is sent then.
    ``build`` is ``sync.bootstrap.build_app`` (a seam for tests).
    """
    if not ids:
        raise ActionRefused("nothing_chosen", "no record chosen")
    targets = _records(store, ids)
    if not dry_run:
        require_replayable(store, targets, approval=approval)
    for record in targets:
        if record.status is not RecordStatus.FAILED:
            raise ActionRefused(
                "not_failed",
                f"{failure_id(record)} is {record.status.value}, not failed: replay cannot help",
                record_id=failure_id(record),
                status=record.status.value,
            )
    actor = operator_actor(user_name)
    with build(settings, actor=actor) as application:
        return application.engine.replay(
            targets, actor=actor, dry_run=dry_run, theirs_only=approval is not None
        )


def choose_failed(
    store: StateStore,
    *,
    period: str,
    npsns: Sequence[str] = (),
    reason: str | None = None,
    code: str | None = None,
) -> list[SyncRecord]:
    """The failed records of ``period`` (optionally some schools) as ``replay --period
    [--npsn] [--reason]`` chooses them: ``reason`` matches a code's beginning or words of the
    reason; ``code`` (the console's groups) is exactly that code."""
    found = store.reports.failures(
        period=period, npsns=list(npsns), reason=reason, statuses=(RecordStatus.FAILED,)
    )
    return [r for r in found if code is None or r.reason_code == code]


def clean_why(why: str, *, missing: str) -> str:
    """The reason as the ledger keeps it (control characters blanked); ``ActionRefused`` when
    it is empty (``missing`` says what to give), too long, or looks like it holds a secret."""
    text = _CONTROL.sub(" ", why).strip()
    if not text:
        raise ActionRefused("why_missing", missing)
    if len(text) > MAX_WHY:
        raise ActionRefused(
            "why_too_long", f"the reason is too long (at most {MAX_WHY} characters)"
        )
    if (what := secret_problem(text)) is not None:
        # The ledger keeps it for good: a secret there could never be cleaned out.
        raise ActionRefused(
            "refused_by_ledger",
            f"the reason looks like it holds a secret ({what}); write it without passwords, "
            "tokens or keys",
        )
    return text


def discard(
    store: StateStore,
    record_id: str,
    *,
    user_name: str,
    why: str,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    approval: Approval | None = None,
) -> SyncRecord:
    """Mark the failed record ``record_id`` as discarded by ``user_name`` because ``why``.

    The status becomes ``cancelled`` with the reason ``discarded by <name>: <why>`` and a
    ``discard`` ledger entry is written in the same transaction. ``ActionRefused`` when the
    record is unknown, not ``failed``, or ``why`` is empty, too long or looks like a secret;
    ``PeriodLocked`` when its period is closed without ``approval``, or sealed.
    """
    try:
        period, nip, kind = parse_failure_id(record_id)
    except ValueError as exc:
        raise ActionRefused("bad_id", str(exc)) from None
    reason = clean_why(why, missing="say why the record is discarded")
    require_changeable(
        store, period, "discard", request=f"discard {record_id} --why TEXT", approval=approval
    )
    actor = operator_actor(user_name)
    audit = LedgerWriter(actor=actor, clock=clock)
    try:
        with store.unit_of_work() as session:
            row = session.get(SyncRecord, (nip, period, kind))
            if row is None:
                raise UnknownRecord(record_id)
            if row.status is not RecordStatus.FAILED:
                raise ActionRefused(
                    "not_failed",
                    f"{record_id} is {row.status.value}, not failed: only a failed record "
                    "can be discarded",
                    record_id=record_id,
                    status=row.status.value,
                )
            was = f"{row.reason_code or '-'}: {row.reason or ''}"
            row.status = RecordStatus.CANCELLED
            row.reason = f"discarded by {user_name}: {reason}"
            row.reason_code = DISCARDED
            row.changed_at = clock()
            session.add(row)
            store.outbox.supersede_pending(session, nip, period, kind)
            session.flush()
            audit.operator_action(
                session,
                actor=actor,
                action="discard",
                period=period,
                nip=nip,
                npsn=row.npsn,
                kind=kind.value,
                detail=(
                    f"{reason} (was failed, {was})"
                    + (f"; {approval.note()}" if approval is not None else "")
                )[:2000],
            )
    except ValueError as exc:
        # The ledger refuses text that looks like a secret; nothing was written.
        raise ActionRefused(
            "refused_by_ledger", f"the reason cannot be written to the ledger: {exc}"
        ) from None
    return row


def discard_many(
    store: StateStore,
    ids: Sequence[str],
    *,
    user_name: str,
    why: str,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> list[SyncRecord]:
    """``discard`` each of ``ids`` with the one reason ``why`` (the console's bulk discard).

    The reason is checked and every period asked (``require_changeable``) before the first
    record changes, so a bad reason or a closed period changes nothing; then each record is
    discarded in its own transaction with its own ledger entry, as one by one."""
    if not ids:
        raise ActionRefused("nothing_chosen", "no record chosen")
    reason = clean_why(why, missing="say why the record is discarded")
    periods: dict[str, list[str]] = {}
    for value in ids:
        try:
            periods.setdefault(parse_failure_id(value)[0], []).append(value)
        except ValueError as exc:
            raise ActionRefused("bad_id", str(exc)) from None
    for period, chosen in sorted(periods.items()):
        named = " ".join(chosen) if len(chosen) <= 3 else f"ID... (the {len(chosen)} IDs)"
        require_changeable(store, period, "discard", request=f"discard {named} --why TEXT")
    return [discard(store, i, user_name=user_name, why=reason, clock=clock) for i in ids]


def reset_cursors(
    store: StateStore,
    period: str,
    npsns: Sequence[str],
    *,
    user_name: str,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    approval: Approval | None = None,
) -> list[str]:
    """Forget the incremental read position of the period (some schools, or all): the next
    run reads their records from the start. Unchanged records are not sent again (their
    content hash is known). One ``reset`` ledger entry per school. ``PeriodLocked`` when the
    period is closed without ``approval``, or sealed."""
    schools_named = "".join(f" --npsn {npsn}" for npsn in npsns)
    require_changeable(
        store,
        period,
        "reset",
        request=f"reset --period {period}{schools_named} --why TEXT",
        approval=approval,
    )
    actor = operator_actor(user_name)
    audit = LedgerWriter(actor=actor, clock=clock)
    with store.unit_of_work() as session:
        schools = store.cursors.reset(session, period, npsns)
        for npsn in schools:
            audit.operator_action(
                session,
                actor=actor,
                action="reset",
                period=period,
                nip=None,
                npsn=npsn,
                kind=None,
                detail="incremental read position forgotten: the next run reads from the start"
                + (f"; {approval.note()}" if approval is not None else ""),
            )
    return schools
