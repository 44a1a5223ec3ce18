"""Telling the schools: the action lists that changed go into the notification outbox, and
the outbox is sent.

``SchoolNotifier.plan(period, today)`` compares each school's list (``school_actions``) with
the newest message of its chain per channel and writes what ``sync.notify.plan.decide`` says,
with the list's snapshot and a ``Message-ID`` derived from the content and its place in the
chain. ``send_due()`` sends what is due:

1. the row is claimed (``pending`` -> ``sending``, committed) at the channel's point of no
   return (before SMTP's ``DATA``, before the webhook request), never earlier;
2. the answer decides: ``sent``; refused for now (nothing went out): tried again within this
   send (``notify.attempts_per_send``, with backoff, ``tenacity``), then ``pending`` again for
   a later send, the wait doubling (``notify.retry_after_s``) up to ``notify.max_attempts``;
   refused for good: ``failed``; the answer lost after the message left: ``uncertain``;
3. every try is written to the ledger (action ``notify_school``): the school, the content
   hash, the channel, the message id and the answer.

A channel that refuses a message after its tries is not tried again within the same send
(the rest of its messages wait for the next one): a mail server that is down costs one
message's tries, never a long wait for the daemon's other jobs.

**Never twice.** A row is written before it is sent and claimed before it leaves; a crash
after the claim leaves it ``sending``, and the next send (``notify.stale_after``) marks it
``uncertain`` and does not send it again. The residual window, said plainly: a crash between
the claim and the server's acceptance (a few milliseconds) leaves a message that never
arrived marked ``uncertain``; ``status`` and the console show it, and the school's next change
(or reminder) tells it again. The other way round (a message sent twice) cannot happen
through a crash. The ``Message-ID`` (e-mail) and ``X-Ekinerja-Sync-Message-Id`` (webhook) are
the same on any resend of one row, so a receiver can drop a copy too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from sqlmodel import Session, col, select
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from connectors.message_errors import MaybeSent, MessageError, NotSentYet, Refused
from state import ledger, notices
from state.canonical import canonical_json
from state.notices import NoticeState, SchoolNotice
from state.schools import SchoolContact, webhook_fingerprint
from state.store import StateStore
from sync.notify.channels import EMAIL, WEBHOOK, Channel
from sync.notify.message import Outgoing, snapshot
from sync.notify.plan import LastMessage, decide, reminder_stage
from sync.operations.deadline import today_in_jakarta
from sync.operations.school_actions import ActionReport, action_report

__all__ = ["NotifyPolicy", "PlanOutcome", "SchoolNotifier", "SendOutcome"]

log = structlog.get_logger("ekinerja_sync.notify")

Clock = Callable[[], dt.datetime]
_MAX_WAIT = dt.timedelta(hours=6)


@dataclass(frozen=True)
class NotifyPolicy:
    """How hard a message is tried (``[notify]``) and when a claim counts as abandoned."""

    remind_days_before: tuple[int, ...] = (14, 7, 3, 1)
    attempts_per_send: int = 3
    max_attempts: int = 12
    retry_after_s: float = 600
    backoff_s: float = 1.0  # the first wait between the tries within one send
    stale_after: dt.timedelta = dt.timedelta(minutes=15)


@dataclass
class PlanOutcome:
    """What planning wrote: messages per kind, and the schools with a list but no contact."""

    period: str
    written: dict[str, int] = field(default_factory=dict)
    superseded: int = 0
    no_contact: list[str] = field(default_factory=list)
    # (npsn, channel, kind, recipient) of each message written (or, dry, that would be)
    messages: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class SendOutcome:
    """What a send did, per channel and outcome (sent, retry, failed, uncertain)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    waiting: int = 0  # left pending for a later send

    def add(self, channel: str, outcome: str) -> None:
        self.counts[(channel, outcome)] = self.counts.get((channel, outcome), 0) + 1

    def total(self, outcome: str) -> int:
        return sum(n for (_c, o), n in self.counts.items() if o == outcome)


class _Taken(Exception):
    """Another sender claimed the message first."""


def message_id(notice: SchoolNotice) -> str:
    """``<hex@ekinerja-sync>`` from the content and the message's place in its chain: the same
    on every resend of the row, different for the same list told again later."""
    material = "|".join(
        str(part)
        for part in (
            notice.period,
            notice.npsn,
            notice.channel,
            notice.follows,
            notice.kind,
            notice.list_hash,
            notice.stage,
        )
    )
    return f"<{hashlib.sha256(material.encode()).hexdigest()[:40]}@ekinerja-sync>"


def _channels_of(contact: SchoolContact) -> list[str]:
    return [EMAIL] * bool(contact.emails) + [WEBHOOK] * bool(contact.webhook_url)


class SchoolNotifier:
    """Plans and sends the schools' messages. Collaborators: the state ``store``, the
    ``channels`` that are configured (by name), the ledger's ``actor``, ``clock``, ``sleep``
    (the waits between tries; the daemon's ends on a stop) and ``reports`` (the action lists,
    a seam for tests)."""

    def __init__(
        self,
        *,
        store: StateStore,
        channels: Mapping[str, Channel],
        actor: str,
        policy: NotifyPolicy,
        clock: Clock,
        sleep: Callable[[float], None],
        reports: Callable[[StateStore, str, dt.date], ActionReport] = action_report,
    ) -> None:
        self.store = store
        self.channels = dict(channels)
        self.actor = actor
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.reports = reports

    # -- planning ------------------------------------------------------------------------

    def plan(
        self, period: str, today: dt.date, npsns: Sequence[str] = (), *, dry_run: bool = False
    ) -> PlanOutcome:
        """Write a message for each school whose list changed (per configured channel); of
        ``npsns`` only, when given. ``dry_run``: say what would be written, write nothing."""
        report = self.reports(self.store, period, today)
        stage = reminder_stage(report.days_left, self.policy.remind_days_before)
        outcome = PlanOutcome(period)
        now = self.clock()
        with self.store.unit_of_work(commit=not dry_run) as session:
            contacts = {c.npsn: c for c in session.exec(select(SchoolContact))}
            last = notices.last_notices(session, period)
            told = self._told(session, period)
            schools = {s.npsn for s in report.schools} | {npsn for npsn, _ in last}
            for npsn in sorted(schools & set(npsns) if npsns else schools):
                school = report.school(npsn)
                contact = contacts.get(npsn)
                if contact is None:
                    if not school.empty:
                        outcome.no_contact.append(npsn)
                    continue
                for channel in _channels_of(contact):
                    if channel not in self.channels:
                        continue
                    previous = last.get((npsn, channel))
                    decision = decide(
                        school.content_hash,
                        school.empty,
                        _last_view(previous),
                        told=(npsn, channel) in told,
                        stage=stage,
                        contact_changed_at=contact.changed_at,
                    )
                    if decision.supersede_last and previous is not None:
                        outcome.superseded += 1
                        if not dry_run:
                            previous.state = NoticeState.SUPERSEDED.value
                            previous.finished_at = now
                            session.add(previous)
                    if decision.kind is None:
                        continue
                    notice = SchoolNotice(
                        period=period,
                        npsn=npsn,
                        channel=channel,
                        follows=previous.id if previous is not None and previous.id else 0,
                        kind=decision.kind.value,
                        list_hash=school.content_hash,
                        message_id="",
                        stage=stage,
                        items=len(school.items),
                        body=canonical_json(snapshot(school, decision.kind.value, stage)),
                        recipient=self._recipient(contact, channel),
                        created_at=now,
                    )
                    notice.message_id = message_id(notice)
                    # A dry run writes nothing at all (SQLite's driver commits a released
                    # savepoint that began its transaction, whatever the rollback after it).
                    if dry_run or notices.add_notice(session, notice):
                        kind = decision.kind.value
                        outcome.written[kind] = outcome.written.get(kind, 0) + 1
                        outcome.messages.append((npsn, channel, kind, notice.recipient))
        log.info(
            "notify.planned",
            period=period,
            written=outcome.written,
            superseded=outcome.superseded,
            no_contact=len(outcome.no_contact),
        )
        return outcome

    @staticmethod
    def _told(session: Session, period: str) -> set[tuple[str, str]]:
        query = (
            select(SchoolNotice.npsn, SchoolNotice.channel)
            .where(
                SchoolNotice.period == period,
                col(SchoolNotice.state).in_([NoticeState.SENT.value, NoticeState.UNCERTAIN.value]),
            )
            .distinct()
        )
        return {(npsn, channel) for npsn, channel in session.exec(query)}

    @staticmethod
    def _recipient(contact: SchoolContact, channel: str) -> str:
        if channel == EMAIL:
            return ", ".join(contact.emails)
        return webhook_fingerprint(contact.webhook_url)

    # -- sending -------------------------------------------------------------------------

    def send_due(self, periods: Sequence[str] = (), npsns: Sequence[str] = ()) -> SendOutcome:
        """Send every message that is due (of ``periods``, ``npsns``, or all), oldest first."""
        outcome = SendOutcome()
        self._abandoned(outcome)
        with Session(self.store.engine) as session:
            due = notices.due_notices(session, self.clock(), periods, npsns)
        down: set[str] = set()
        for notice_id in due:
            self._send_one(notice_id, outcome, down)
        with Session(self.store.engine) as session:
            later = self.clock() + dt.timedelta(days=3650)
            outcome.waiting = len(notices.due_notices(session, later, periods, npsns))
        return outcome

    def _abandoned(self, outcome: SendOutcome) -> None:
        """Messages claimed long ago and never finished: their sender died mid-send. They may
        have arrived: ``uncertain``, never sent again."""
        now = self.clock()
        with self.store.unit_of_work() as session:
            for notice in notices.stale_sending(session, now - self.policy.stale_after):
                answer = "the sender stopped after it began sending: it may have arrived"
                notices.finish(session, _id(notice), NoticeState.UNCERTAIN, answer, now)
                self._ledger(session, notice, "uncertain", answer)
                outcome.add(notice.channel, "uncertain")

    def _send_one(self, notice_id: int, outcome: SendOutcome, down: set[str]) -> None:
        with Session(self.store.engine) as session:
            notice = session.get(SchoolNotice, notice_id)
            if notice is None or notice.state != NoticeState.PENDING.value:
                return
            contact = session.get(SchoolContact, notice.npsn)
        channel = self.channels.get(notice.channel)
        if channel is None or notice.channel in down:
            return  # switched off since it was planned, or down in this send: it waits
        outgoing = self._outgoing(notice, contact)
        if outgoing is None:
            self._close(notice, NoticeState.FAILED, "the school has no such contact any more")
            outcome.add(notice.channel, "failed")
            return
        claimed = False

        def claim() -> None:
            nonlocal claimed
            if claimed:
                return
            with self.store.unit_of_work() as session:
                if not notices.claim(session, notice_id, self.clock(), notice.body):
                    raise _Taken
            claimed = True

        def tried_again(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            with self.store.unit_of_work() as session:
                self._ledger(session, notice, "retry", str(exc))
            outcome.add(notice.channel, "retry")

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts_per_send),
            wait=wait_exponential(multiplier=self.policy.backoff_s, max=30),
            retry=retry_if_exception_type(NotSentYet),
            sleep=self.sleep,
            before_sleep=tried_again,
            reraise=True,
        )
        try:
            answer = retrying(channel.send, outgoing, claim)
        except _Taken:
            return
        except NotSentYet as exc:
            down.add(notice.channel)
            self._later(notice, claimed, exc.answer)
            outcome.add(notice.channel, "retry")
            return
        except Refused as exc:
            self._close(notice, NoticeState.FAILED, exc.answer)
            outcome.add(notice.channel, "failed")
            return
        except MaybeSent as exc:
            self._close(notice, NoticeState.UNCERTAIN, exc.answer)
            outcome.add(notice.channel, "uncertain")
            return
        except MessageError as exc:  # pragma: no cover - the three above are all there are
            self._close(notice, NoticeState.FAILED, exc.answer)
            return
        self._close(notice, NoticeState.SENT, answer)
        outcome.add(notice.channel, "sent")
        log.info("notify.sent", period=notice.period, npsn=notice.npsn, channel=notice.channel)

    def _outgoing(self, notice: SchoolNotice, contact: SchoolContact | None) -> Outgoing | None:
        if contact is None:
            return None
        base = {
            "notice_id": _id(notice),
            "channel": notice.channel,
            "message_id": notice.message_id,
            "snapshot": json.loads(notice.body),
            "today": today_in_jakarta(self.clock()),
        }
        if notice.channel == EMAIL and contact.emails:
            return Outgoing(**base, recipients=tuple(contact.emails))
        if notice.channel == WEBHOOK and contact.webhook_url:
            return Outgoing(**base, url=contact.webhook_url)
        return None

    def _later(self, notice: SchoolNotice, claimed: bool, answer: str) -> None:
        """Refused for now after this send's tries: pending again, or failed when out of
        attempts."""
        with self.store.unit_of_work() as session:
            current = session.get(SchoolNotice, _id(notice))
            assert current is not None
            tries = current.failures + 1
            if tries >= self.policy.max_attempts:
                notices.finish(session, _id(notice), NoticeState.FAILED, answer, self.clock())
                self._ledger(session, notice, "failed", f"{answer} (after {tries} tries)")
                return
            wait = min(
                dt.timedelta(seconds=self.policy.retry_after_s * 2 ** (tries - 1)), _MAX_WAIT
            )
            notices.retry_later(session, _id(notice), answer, self.clock() + wait)
            self._ledger(session, notice, "retry", answer)
        log.warning(
            "notify.refused",
            period=notice.period,
            npsn=notice.npsn,
            channel=notice.channel,
            answer=answer,
            claimed=claimed,
        )

    def _close(self, notice: SchoolNotice, state: NoticeState, answer: str) -> None:
        with self.store.unit_of_work() as session:
            notices.finish(session, _id(notice), state, answer, self.clock())
            self._ledger(session, notice, state.value, answer)

    def _ledger(self, session: Session, notice: SchoolNotice, outcome: str, answer: str) -> None:
        ledger.append(
            session,
            ledger.LedgerEvent(
                actor=self.actor,
                action="notify_school",
                outcome=outcome,
                period=notice.period,
                npsn=notice.npsn,
                kind=notice.channel,
                idempotency_key=notice.message_id,
                answer_body=answer[:2000],
                detail=(
                    f"{notice.kind}: {notice.items} items, content {notice.list_hash}; "
                    f"to {notice.recipient}"
                )[:2000],
            ),
            at=self.clock(),
        )

    # -- both ----------------------------------------------------------------------------

    def run(self, period: str, today: dt.date) -> tuple[PlanOutcome, SendOutcome]:
        """Plan the period's messages, then send what is due."""
        plan, sent = self.plan(period, today), self.send_due([period])
        if plan.messages or sent.counts:
            log.info(
                "notify.done",
                period=period,
                written=plan.written,
                sent={f"{c}.{o}": n for (c, o), n in sent.counts.items()},
                waiting=sent.waiting,
                no_contact=len(plan.no_contact),
            )
        return plan, sent

    def run_today(self, period: str) -> tuple[PlanOutcome, SendOutcome]:
        """``run`` on today's date in WIB (the daemon's job)."""
        return self.run(period, today_in_jakarta(self.clock()))


def _last_view(notice: SchoolNotice | None) -> LastMessage | None:
    if notice is None:
        return None
    return LastMessage(
        notice.kind, notice.list_hash, notice.state, notice.stage, notice.finished_at
    )


def _id(notice: SchoolNotice) -> int:
    assert notice.id is not None
    return notice.id
