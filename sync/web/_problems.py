"""What needs doing in a period, and by whom: the overview's "Perlu tindakan" (issue 27).

Every open problem of the period (``state.waiting``: a quarantined record, a deliverable that
waits on a person, is held, failed, locked or was cancelled after delivery) is filed by its
cause (``sync.operations.school_actions.item_code``) and by who acts (``sync.who_acts.desk``:
the school, the dinas, BKD / BKPSDM, or nobody). One group per cause, except:

- a school's inactive unit kerja (``UNOR_TIDAK_AKTIF``) is one group per school: it is that
  school's unit that BKD / BKPSDM must activate;
- held records are one group per penilai: they all wait for that penilai's SKP, the record
  that blocks them (``Blocker``), which the group names and links.

What goes by itself (queued sends, a penilaian waiting for its SKP) is counted apart
(``Problems.auto``). Read only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from sqlmodel import Session

from mappings.people import people_of
from state.models import DeliveryKind, RecordStatus
from state.store import StateStore
from state.waiting import QUARANTINED, WaitingRow, waiting_rows
from sync.operations.school_actions import item_code
from sync.web import _queries as q
from sync.web._labels import cause_label
from sync.web._words import explain_or_none
from sync.who_acts import DESK_LABELS, DESK_ORDER, Desk, desk, school_text

__all__ = ["Blocker", "Group", "Problems", "problems"]

_PER_SCHOOL = frozenset({"UNOR_TIDAK_AKTIF"})


@dataclass(frozen=True)
class Blocker:
    """The record a held group waits for: its penilai's SKP (``status`` None: no such record
    in the store, the penilai's own record was never read)."""

    nip: str
    name: str
    status: str | None
    code: str | None


@dataclass
class Group:
    """One cause, at one desk: how many records, where, and the first step."""

    desk: Desk
    code: str
    npsn: str | None = None  # the one school of a per-school group
    assessor: str | None = None  # the penilai of a held group
    count: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    schools: Counter[str] = field(default_factory=Counter)
    school_names: dict[str, str] = field(default_factory=dict)
    blocker: Blocker | None = None

    @property
    def key(self) -> str:
        """An id for the page (letters, digits and dashes)."""
        parts = [self.desk.value, self.code, self.npsn or "", self.assessor or ""]
        return "g-" + "-".join(p for p in parts if p).replace("_", "-").lower()

    @property
    def title(self) -> str:
        label = cause_label(self.code)
        if self.npsn:
            return f"{label}: {self.school_names.get(self.npsn) or self.npsn}"
        if self.blocker is not None:
            return f"{label}: penilai {self.blocker.name or self.blocker.nip}"
        return label

    @property
    def step(self) -> str:
        """The first step, in Indonesian."""
        if self.blocker is not None:
            return (
                f"Semua data ini menunggu SKP penilai {self.blocker.name or self.blocker.nip}. "
                "Selesaikan dulu SKP itu; data yang ditahan dikirim lagi otomatis setelahnya."
            )
        return explain_or_none(self.code) or school_text(self.code) or cause_label(self.code)

    @property
    def failed(self) -> int:
        """How many of them are failed (what a bulk replay or discard takes)."""
        return self.statuses[RecordStatus.FAILED.value]

    def top_schools(self, n: int = 5) -> list[tuple[str, str, int]]:
        """(NPSN, name, count) of the schools with the most, most first."""
        return [
            (npsn, self.school_names.get(npsn, ""), count)
            for npsn, count in self.schools.most_common(n)
        ]

    def filter_query(self, period: str) -> str:
        """The filter of the bulk page (and of the failures list) that selects this group."""
        query = {"period": period, "code": self.code}
        if self.npsn:
            query["npsn"] = self.npsn
        return urlencode(query)

    def list_url(self, period: str) -> str:
        """Where the group's records are listed one by one."""
        if self.blocker is not None or self.code == "held":
            return "/failures?" + urlencode({"period": period, "status": "held"})
        if self.code == "locked":
            return "/failures?" + urlencode({"period": period, "status": "locked"})
        if self.statuses[QUARANTINED]:
            return "/quarantine?" + urlencode({"period": period, "reason": self.code})
        if self.failed:
            query = {"period": period, "reason": self.code}
            if self.npsn:
                query["npsn"] = self.npsn
            return "/failures?" + urlencode(query)
        npsn = self.npsn or (self.schools.most_common(1)[0][0] if self.schools else "")
        return f"/schools/{npsn}/actions?" + urlencode({"period": period})


@dataclass
class Problems:
    """The period's open problems by desk (in ``DESK_ORDER``, without the automatic one),
    and what goes by itself."""

    desks: list[tuple[Desk, str, list[Group]]]
    auto: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(g.count for _desk, _label, groups in self.desks for g in groups)

    @property
    def auto_total(self) -> int:
        return sum(n for _label, n in self.auto)


def _assessor_role(row: WaitingRow) -> str | None:
    if row.assessor_role:
        return row.assessor_role
    role = people_of(row.body).assessor_role
    return role.value if role else None


def problems(store: StateStore, period: str) -> Problems:
    """The open problems of ``period`` as the state store has them now."""
    with Session(store.engine) as session:
        rows = waiting_rows(session, period)
        counts = store.reports.kind_status_counts(session, period)
        names = q.school_names(session, period)
    held = {
        (r.nip, r.kind.value): r.assessor_nip
        for r in store.reports.records(period)
        if r.status is RecordStatus.HELD
    }
    groups: dict[tuple[str, ...], Group] = {}
    waiting_for_others = 0
    for row in rows:
        code = item_code(row)
        if code is None:
            waiting_for_others += 1
            continue
        where = desk(code, assessor_role=_assessor_role(row))
        if where is Desk.AUTO:
            waiting_for_others += 1
            continue
        npsn = row.npsn if code in _PER_SCHOOL else None
        assessor = held.get((row.nip, row.kind)) if row.status == "held" else None
        key = (where.value, code, npsn or "", assessor or "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(where, code, npsn=npsn, assessor=assessor)
        group.count += 1
        group.statuses[row.status] += 1
        group.schools[row.npsn] += 1
        if row.npsn not in group.school_names:
            group.school_names[row.npsn] = names.get(row.npsn) or (
                people_of(row.body).school_name or ""
            )
    _name_blockers(store, period, [g for g in groups.values() if g.assessor])
    desks: list[tuple[Desk, str, list[Group]]] = []
    for where in DESK_ORDER:
        if where is Desk.AUTO:
            continue
        found = sorted(
            (g for g in groups.values() if g.desk is where), key=lambda g: (-g.count, g.code)
        )
        if found:
            desks.append((where, DESK_LABELS[where], found))
    queued = sum(n for (_kind, status), n in counts.items() if status == "pending")
    auto: list[tuple[str, int]] = []
    if queued:
        auto.append(("antre kirim: dikirim pada sinkronisasi berikutnya", queued))
    if waiting_for_others:
        auto.append(
            (
                "menunggu data lain terkirim lebih dulu (penilaian menunggu SKP-nya)",
                waiting_for_others,
            )
        )
    return Problems(desks, auto)


def _name_blockers(store: StateStore, period: str, groups: list[Group]) -> None:
    if not groups:
        return
    with Session(store.engine) as session:
        names = q.teacher_names(session, sorted({g.assessor for g in groups if g.assessor}))
    for group in groups:
        assert group.assessor is not None
        record = store.reports.record(period, group.assessor, DeliveryKind.SKP)
        group.blocker = Blocker(
            nip=group.assessor,
            name=names.get(group.assessor, ""),
            status=record.status.value if record is not None else None,
            code=record.reason_code if record is not None else None,
        )
