"""A school's action list: every record of a period that waits on someone at the school,
grouped by who acts, with what to do in Bahasa Indonesia and the days left to the period's
``batas_penilaian`` (docs/design.md, invariant 8).

Computed from the state store (``state.waiting``), never from PMM: what the last run read.
Who acts and the school's words come from ``sync.who_acts``; what waits on the dinas (a
failure it must decide, a held penilaian, a record without a penilai) goes to the dinas's own
list, never to a school's.

``content_hash`` is what a school is told once per change of (``sync.notify``): the period,
the school and each item's teacher, kind and code. Not the days left (they change daily) nor
the words (a release that rewords must not message every school again).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from mappings.model import ListedPeriod
from mappings.people import people_of
from state.canonical import canonical_json_bytes
from state.store import StateStore
from state.waiting import QUARANTINED, WaitingRow, waiting_rows
from sync.advice import QUARANTINE_CODES, TARGET_CODES, advice
from sync.operations.ledger_export import WIB
from sync.pipeline.periods import stored_period
from sync.who_acts import ACTOR_ORDER, Actor, school_text, waiting_code, who_acts

__all__ = [
    "WIB",
    "ActionItem",
    "ActionReport",
    "SchoolActions",
    "action_report",
    "build_report",
    "date_words",
    "days_left_words",
    "item_code",
]


_MONTHS = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


def date_words(day: dt.date) -> str:
    """``31 Januari 2027``: a date as a school reads it."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def days_left_words(days: int) -> str:
    """``12 hari lagi``, ``hari ini``, or ``lewat 3 hari`` (the deadline has passed)."""
    if days > 0:
        return f"{days} hari lagi"
    return "hari ini" if days == 0 else f"lewat {-days} hari"


@dataclass(frozen=True, slots=True)
class ActionItem:
    """One record that waits: on whom (``actor``), why (``code``), what to do (``todo``, the
    school's words; for the dinas, ``advice`` in English) and since when."""

    npsn: str
    nip: str
    name: str
    kind: str  # "record" (quarantined), "skp" or "assessment"
    code: str
    actor: Actor
    todo: str
    advice: str
    since: dt.datetime

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the item in a school's list (and its content hash)."""
        return (self.nip, self.kind, self.code)

    def as_dict(self) -> dict[str, Any]:
        return {
            "npsn": self.npsn,
            "nip": self.nip,
            "name": self.name,
            "kind": self.kind,
            "code": self.code,
            "who": self.actor.value,
            "todo": self.todo,
            "advice": self.advice,
            "since": self.since.isoformat(),
        }


@dataclass(frozen=True)
class SchoolActions:
    """One school's list for one period."""

    period: str
    npsn: str
    school_name: str
    deadline: dt.date
    days_left: int  # negative: the deadline passed that many days ago
    items: tuple[ActionItem, ...]
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", list_hash(self.period, self.npsn, self.items))

    @property
    def empty(self) -> bool:
        return not self.items

    def groups(self) -> list[tuple[Actor, list[ActionItem]]]:
        """The items by who acts, in ``ACTOR_ORDER``; groups without items left out."""
        return [
            (actor, [i for i in self.items if i.actor is actor])
            for actor in ACTOR_ORDER
            if any(i.actor is actor for i in self.items)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "npsn": self.npsn,
            "school_name": self.school_name,
            "deadline": self.deadline.isoformat(),
            "days_left": self.days_left,
            "content_hash": self.content_hash,
            "items": [item.as_dict() for item in self.items],
        }


@dataclass(frozen=True)
class ActionReport:
    """Every school's list of a period (only schools with something to do), and the dinas's."""

    period: str
    deadline: dt.date
    days_left: int
    schools: tuple[SchoolActions, ...]
    dinas: tuple[ActionItem, ...]

    def school(self, npsn: str) -> SchoolActions:
        """The list of ``npsn`` (an empty one when nothing there waits)."""
        for found in self.schools:
            if found.npsn == npsn:
                return found
        return SchoolActions(self.period, npsn, "", self.deadline, self.days_left, ())

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "deadline": self.deadline.isoformat(),
            "days_left": self.days_left,
            "schools": [s.as_dict() for s in self.schools],
            "dinas": [item.as_dict() for item in self.dinas],
        }


def list_hash(period: str, npsn: str, items: Iterable[ActionItem]) -> str:
    """SHA-256 of the list's identity: period, school, and each item's (NIP, kind, code)."""
    content = {"period": period, "npsn": npsn, "items": sorted(list(i.key) for i in items)}
    return hashlib.sha256(canonical_json_bytes(content)).hexdigest()


def item_code(row: WaitingRow) -> str | None:
    """The code an item of ``row`` is filed under (None: it waits on no one)."""
    if row.status == QUARANTINED or row.status == "failed":
        return row.reason_code or row.status
    if row.status == "waiting":
        return waiting_code(row.reason)
    return row.status  # held, locked, cancelled_after_delivery


def _item(row: WaitingRow) -> ActionItem | None:
    code = item_code(row)
    if code is None:
        return None
    people = people_of(row.body)
    assessor = row.assessor_role or (people.assessor_role.value if people.assessor_role else None)
    actor = who_acts(code, assessor_role=assessor)
    if actor is Actor.NOBODY:
        return None
    english = row.reason or ""
    # The reason the CLI and the console show; a quarantine's ends without the advice.
    said = advice(code) if code in TARGET_CODES or code in QUARANTINE_CODES else ""
    return ActionItem(
        npsn=row.npsn,
        nip=row.nip,
        name=people.name or "",
        kind=row.kind,
        code=code,
        actor=actor,
        todo=(school_text(code) or "") if actor is not Actor.DINAS else "",
        advice=english if said in english else f"{english} (what to do: {said})",
        since=row.since,
    )


def build_report(
    rows: Sequence[WaitingRow],
    period: ListedPeriod,
    today: dt.date,
    *,
    school_names: dict[str, str] | None = None,
) -> ActionReport:
    """The lists from the waiting rows of one period (pure: no I/O)."""
    days_left = (period.deadline - today).days
    by_school: dict[str, list[ActionItem]] = {}
    names = dict(school_names or {})
    dinas: list[ActionItem] = []
    seen: set[tuple[str, str, str, str]] = set()
    for row in rows:
        item = _item(row)
        if item is None:
            continue
        if (key := (item.npsn, *item.key)) in seen:
            continue  # one line per teacher, kind and cause
        seen.add(key)
        if not names.get(row.npsn):
            school_name = people_of(row.body).school_name
            if school_name:
                names[row.npsn] = school_name
        if item.actor is Actor.DINAS:
            dinas.append(item)
        else:
            by_school.setdefault(row.npsn, []).append(item)
    schools = tuple(
        SchoolActions(
            period.code,
            npsn,
            names.get(npsn, ""),
            period.deadline,
            days_left,
            tuple(sorted(items, key=_order)),
        )
        for npsn, items in sorted(by_school.items())
    )
    return ActionReport(
        period.code, period.deadline, days_left, schools, tuple(sorted(dinas, key=_dinas_order))
    )


def _order(item: ActionItem) -> tuple[int, str, str, str]:
    return (ACTOR_ORDER.index(item.actor), item.name.lower(), item.nip, item.kind)


def _dinas_order(item: ActionItem) -> tuple[str, str, str, str]:
    return (item.npsn, item.name.lower(), item.nip, item.kind)


def action_report(
    store: StateStore, period: str, today: dt.date, npsns: Sequence[str] = ()
) -> ActionReport:
    """The lists of ``period`` (optionally some schools) as the state store has them now."""
    listed = stored_period(store, period)
    with Session(store.engine) as session:
        rows = waiting_rows(session, period, npsns)
    return build_report(rows, listed, today)
