"""Changes to a closed period, made by two people (docs/design.md, invariant 9): one operator
asks (``request``), a second one approves (``approve``), and the approval carries the change
out.

What can be asked (``state.lifecycle.ChangeAction``) and what it names:

- ``replay``: failed records of the period (failure IDs), replayed as ``replay`` does;
- ``discard``: one failed record, discarded with the request's reason;
- ``reset``: the read position of some schools (NPSNs; none: every school);
- ``mapping``: the period synced once with another mapping version (changed records go out as
  updates, as a switch of ``[sync] mapping_versions`` followed by a ``run`` would send them);
- ``reopen``: the period opens again (from closed or sealed).

A request is checked when it is made (the records exist and are failed, the schools are
known, the version maps the period's kind), so a second operator approves something that can
be done. The approval is recorded before the change is made (``Lifecycle.approve``: both
names in the ledger), the change is made with the ``Approval`` that lets it through the guard
(``sync.operations.actions.require_changeable``), and how it ended is recorded after
(``Lifecycle.finish``: ``done``, or ``failed`` with the reason).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectors.errors import SyncError
from mappings.choice import MappingChoiceError
from mappings.model import Period, PeriodKind
from mappings.versions import MAPPING_VERSIONS
from state.change_requests import ChangeAction, ChangeRequest, ChangeRequests
from state.lifecycle import Lifecycle, LifecycleRefused
from state.models import RecordStatus
from state.store import StateStore
from sync.operations import actions
from sync.operations.actions import ActionRefused, AppBuilder, Approval, clean_why
from sync.operations.npsn import check_in_store
from sync.pipeline.summary import ReplayOutcome
from sync.settings import Settings

__all__ = ["Changes", "Outcome"]

Clock = Callable[[], dt.datetime]
MAX_TARGETS = 200  # failure IDs one request may name


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Outcome:
    """How an approved request ended: the request as recorded after it, and for a replay the
    outcome of each record."""

    request: ChangeRequest
    ok: bool
    result: str
    replayed: list[ReplayOutcome] = field(default_factory=list)


class Changes:
    """Requests and approvals of changes to closed periods, for the CLI and the console.

    ``build`` is how a replay or a mapping switch builds the engine
    (``sync.bootstrap.build_app``); ``clock`` stamps the transitions."""

    def __init__(
        self, settings: Settings, store: StateStore, *, build: AppBuilder, clock: Clock = _utcnow
    ) -> None:
        self.settings = settings
        self.store = store
        self.build = build
        self.clock = clock
        self.lifecycle = Lifecycle(store.engine, clock=clock)
        self.requests = ChangeRequests(self.lifecycle)

    # -- asking ------------------------------------------------------------------------------

    def request(
        self,
        action: ChangeAction,
        *,
        by: str,
        why: str,
        period: str | None = None,
        targets: Sequence[str] = (),
    ) -> ChangeRequest:
        """A pending request of ``by`` (``ActionRefused`` when what it names cannot be done;
        ``LifecycleRefused`` when the period is open, or sealed for anything but a reopen)."""
        reason = clean_why(why, missing=f"say why (the {action.value}): --why TEXT")
        names = list(dict.fromkeys(t.strip() for t in targets if t.strip()))
        if action in (ChangeAction.REPLAY, ChangeAction.DISCARD):
            period = self._check_records(action, names)
        elif period is None:
            raise ActionRefused("nothing_chosen", f"a {action.value} names a period: --period")
        elif action is ChangeAction.RESET:
            check_in_store(self.store, names, period)
        elif action is ChangeAction.MAPPING:
            self._check_version(period, names)
        elif names:
            raise ActionRefused("bad_id", f"a {action.value} names nothing but the period")
        return self.requests.add(period, action, names, by=by, why=reason)

    def _check_records(self, action: ChangeAction, ids: Sequence[str]) -> str:
        if not ids:
            raise ActionRefused("nothing_chosen", "no record chosen: give failure IDs")
        if action is ChangeAction.DISCARD and len(ids) != 1:
            raise ActionRefused("bad_id", "a discard names one failure ID (one request each)")
        if len(ids) > MAX_TARGETS:
            raise ActionRefused("bad_id", f"at most {MAX_TARGETS} records in one request")
        records = []
        for value in ids:
            try:
                key = actions.parse_failure_id(value)
            except ValueError as exc:
                raise ActionRefused("bad_id", str(exc)) from None
            record = self.store.reports.record(*key)
            if record is None:
                raise actions.UnknownRecord(value)
            if record.status is not RecordStatus.FAILED:
                raise ActionRefused(
                    "not_failed",
                    f"{value} is {record.status.value}, not failed: a {action.value} cannot help",
                    record_id=value,
                    status=record.status.value,
                )
            records.append(record)
        periods = sorted({r.period for r in records})
        if len(periods) > 1:
            raise ActionRefused(
                "bad_id", f"one request is of one period; these are of {', '.join(periods)}"
            )
        return periods[0]

    @staticmethod
    def _check_version(period: str, names: Sequence[str]) -> None:
        if len(names) != 1 or names[0] not in MAPPING_VERSIONS:
            raise ActionRefused(
                "bad_id",
                f"a mapping switch names one known version (--to): {', '.join(MAPPING_VERSIONS)}",
            )
        kind = Period.parse(period).kind
        if not MAPPING_VERSIONS[names[0]].maps(kind):
            raise ActionRefused(
                "bad_id", f"mapping version {names[0]} does not map {kind.value} periods"
            )

    # -- approving ---------------------------------------------------------------------------

    def approve(self, request_id: int, *, by: str) -> Outcome:
        """Approve request ``request_id`` as ``by`` and carry it out. ``LifecycleRefused``
        when it cannot be approved (``by`` asked for it, it is not pending, the period is
        sealed): nothing is changed then. Once approved, a refusal or a failure of the change
        itself ends the request ``failed`` with the reason (``Outcome.ok`` False)."""
        request = self.requests.approve(request_id, by=by)
        assert request.id is not None
        approval = Approval(request.id, request.requested_by, request.approved_by or by)
        replayed: list[ReplayOutcome] = []
        try:
            result = self._carry_out(request, approval, replayed)
        except (ActionRefused, LifecycleRefused) as exc:
            return self._finish(request, ok=False, result=exc.message)
        except (SyncError, MappingChoiceError) as exc:
            text = exc.message if isinstance(exc, SyncError) else str(exc)
            return self._finish(request, ok=False, result=f"not done: {text}")
        except BaseException as exc:
            self._finish(request, ok=False, result=f"not done: {type(exc).__name__}")
            raise
        return self._finish(request, ok=True, result=result, replayed=replayed)

    def _finish(
        self,
        request: ChangeRequest,
        *,
        ok: bool,
        result: str,
        replayed: list[ReplayOutcome] | None = None,
    ) -> Outcome:
        assert request.id is not None
        done = self.requests.finish(request.id, ok=ok, result=result)
        return Outcome(done, ok, result, replayed or [])

    def _carry_out(
        self, request: ChangeRequest, approval: Approval, replayed: list[ReplayOutcome]
    ) -> str:
        by, period, targets = approval.approved_by, request.period, request.targets
        action = ChangeAction(request.action)
        if action is ChangeAction.REPLAY:
            outcomes = actions.replay(
                self.settings,
                self.store,
                targets,
                user_name=by,
                build=self.build,
                approval=approval,
            )
            replayed.extend(outcomes)
            return "; ".join(
                f"{o.period}/{o.nip}/{o.kind.value}: {o.before.value} -> "
                f"{o.after.value if o.after else '-'}"
                for o in outcomes
            )
        if action is ChangeAction.DISCARD:
            row = actions.discard(
                self.store,
                targets[0],
                user_name=by,
                why=request.why,
                clock=self.clock,
                approval=approval,
            )
            return f"{targets[0]}: {row.status.value} ({row.reason})"
        if action is ChangeAction.RESET:
            schools = actions.reset_cursors(
                self.store, period, targets, user_name=by, clock=self.clock, approval=approval
            )
            return f"read position forgotten for {len(schools)} school(s)"
        if action is ChangeAction.MAPPING:
            return self._switch(period, targets[0], approval)
        self.lifecycle.reopen(
            period,
            request_id=approval.request_id,
            requested_by=approval.requested_by,
            approved_by=approval.approved_by,
            why=request.why,
        )
        return f"{period} is open again (its last seal is kept: the next one extends it)"

    def _switch(self, period: str, version: str, approval: Approval) -> str:
        """Sync ``period`` once with mapping ``version``: a switch of the config's version for
        the period's kind followed by a ``run``, for this period alone."""
        actions.require_changeable(
            self.store,
            period,
            "mapping switch",
            request=f"mapping --period {period} --to {version} --why TEXT",
            approval=approval,
        )
        kind = Period.parse(period).kind
        sync = self.settings.sync
        switched = sync.model_copy(
            update={
                "mapping_versions": {**sync.mapping_versions, kind: version},
                "mapping_version": None if kind is PeriodKind.SEMESTER else sync.mapping_version,
            }
        )
        settings = self.settings.model_copy(update={"sync": switched})
        actor = actions.operator_actor(approval.approved_by)
        with self.build(settings, actor=actor) as application:
            summary = application.engine.run(period, schools=settings.sync.schools)
        sent = summary.requests_sent
        if summary.target_unreachable:
            raise ActionRefused(
                "unreachable",
                f"not done: e-Kinerja was unreachable ({summary.target_unreachable}); {sent} "
                "requests sent, the rest stay pending: ask again",
            )
        return (
            f"synced with mapping {version}: {sent} requests sent "
            f"(run {summary.run_id}); the config still names "
            f"{self.settings.sync.mapping_for(kind)} for {kind.value} periods"
        )
