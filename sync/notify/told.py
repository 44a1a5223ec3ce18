"""Per school: when it was last told, by which channel, and what changed in its list since
(items added, items resolved), for ``status``, ``schools messages`` and the console."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from state.notices import NoticeState, SchoolNotice, notices_of
from state.store import StateStore
from sync.operations.school_actions import ActionReport

__all__ = ["Told", "told"]

_TOLD = (NoticeState.SENT.value, NoticeState.UNCERTAIN.value)


@dataclass(frozen=True)
class Told:
    """A school of the period: its last message that went out (None: never told), the
    state of its newest message, and its list now against the one it was told."""

    npsn: str
    last_at: dt.datetime | None
    last_kind: str | None
    channels: tuple[str, ...]  # those the last message went by
    newest_state: str | None  # pending, sending, failed, uncertain, ... of the newest message
    items_now: int
    added: int  # on the list now, not in the message told
    resolved: int  # in the message told, not on the list now

    @property
    def changed(self) -> bool:
        return bool(self.added or self.resolved)

    def as_dict(self) -> dict[str, Any]:
        return {
            "npsn": self.npsn,
            "last_told_at": self.last_at.isoformat() if self.last_at else None,
            "last_kind": self.last_kind,
            "channels": list(self.channels),
            "newest_state": self.newest_state,
            "items_now": self.items_now,
            "added_since": self.added,
            "resolved_since": self.resolved,
        }


def _keys(notice: SchoolNotice) -> set[tuple[str, str, str]]:
    items = json.loads(notice.body).get("items", [])
    return {(i["nip"], i["kind"], i["code"]) for i in items}


def told(store: StateStore, report: ActionReport, npsns: Sequence[str] = ()) -> list[Told]:
    """Every school of the report (or ``npsns``) with a list or a message, by NPSN."""
    with Session(store.engine) as session:
        rows = notices_of(session, report.period, npsns)  # newest first
    by_school: dict[str, list[SchoolNotice]] = {}
    for row in rows:
        by_school.setdefault(row.npsn, []).append(row)
    wanted = set(npsns) or ({s.npsn for s in report.schools} | set(by_school))
    found = []
    for npsn in sorted(wanted):
        school = report.school(npsn)
        now = {item.key for item in school.items}
        messages = by_school.get(npsn, [])
        sent = [m for m in messages if m.state in _TOLD]
        last = sent[0] if sent else None
        then = _keys(last) if last is not None else set()
        same = [m.channel for m in sent if last is not None and m.list_hash == last.list_hash]
        found.append(
            Told(
                npsn=npsn,
                last_at=(last.finished_at or last.created_at) if last else None,
                last_kind=last.kind if last else None,
                channels=tuple(sorted(set(same))),
                newest_state=messages[0].state if messages else None,
                items_now=len(now),
                added=len(now - then) if last else len(now),
                resolved=len(then - now),
            )
        )
    return found
