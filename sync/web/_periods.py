"""The periods a page can show: every period PMM listed (the listing the state store keeps,
``sync.pipeline.periods.stored_listing``) and every period the store holds records of, each
with its Indonesian name ("Semester 2 2024 (Jul–Des)"), whether it has data, and its
``batas_penilaian`` as PMM listed it. A deadline is never made up: a period PMM never listed
has none (``deadline`` None, and the page says it is not known).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mappings.model import Period
from state.store import StateStore
from sync.pipeline.periods import stored_listing
from sync.web import _queries as q
from sync.web._labels import period_label
from sync.web.guard import PERIOD, View

__all__ = ["PeriodChoice", "chosen_period", "period_choices"]


@dataclass(frozen=True)
class PeriodChoice:
    code: str
    label: str
    listed: bool  # PMM listed it (when last asked)
    has_data: bool  # the state store holds records of it
    deadline: dt.date | None  # batas_penilaian as listed; None: not known
    running: bool  # PMM says berjalan

    @property
    def option(self) -> str:
        """The selector's text: its name, and a word when nothing of it was read yet."""
        return self.label if self.has_data else f"{self.label}: belum ada data"


def _newest_first(code: str) -> tuple[int, int, str]:
    try:
        period = Period.parse(code)
    except ValueError:
        return (0, 0, code)
    return (period.start.toordinal(), period.end.toordinal(), code)


def period_choices(store: StateStore) -> list[PeriodChoice]:
    """Every period PMM listed or the store has data of, newest first."""
    listed = {p.code: p for p in stored_listing(store)}
    with_data = set(q.periods(store.engine))
    codes = sorted(set(listed) | with_data, key=_newest_first, reverse=True)
    return [
        PeriodChoice(
            code=code,
            label=period_label(code),
            listed=code in listed,
            has_data=code in with_data,
            deadline=listed[code].deadline if code in listed else None,
            running=listed[code].running if code in listed else False,
        )
        for code in codes
    ]


def chosen_period(
    view: View, choices: list[PeriodChoice], *, required: bool = True
) -> PeriodChoice | None:
    """The ``period`` parameter's choice (one the store does not know: a choice without data,
    so the page says so), or, when ``required`` and none is asked for, the one to open
    with: the running period with data, else the newest with data, else the newest listed."""
    code = view.param("period", PERIOD, max_len=6)
    if code is not None:
        for choice in choices:
            if choice.code == code:
                return choice
        return PeriodChoice(code, period_label(code), False, False, None, False)
    if not required or not choices:
        return None
    for wanted in (
        lambda c: c.running and c.has_data,
        lambda c: c.has_data,
        lambda c: True,
    ):
        found = next((c for c in choices if wanted(c)), None)
        if found is not None:
            return found
    return None
