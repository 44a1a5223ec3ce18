"""The progress chart of the overview: the share of each school's deliverables delivered, over
the period up to its ``batas_penilaian``, as inline SVG drawn on the server (no script). Its
geometry is computed here; the template writes the elements (so every text in it is escaped
like the rest of the page).

Schools are told apart without a mouse (issue 27): the five furthest behind each get their
own colour and a label at the end of their line (and a legend in the page's text); the others
are one grey; every colour stands at least 3:1 against the white plot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sync.web._words import WIB

__all__ = ["COLOURS", "Chart", "Line", "progress_chart"]

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 40, 170, 12, 28
_PLOT_W = WIDTH - LEFT - RIGHT
_PLOT_H = HEIGHT - TOP - BOTTOM
_LABEL_GAP = 13  # px between two labels at the right edge
_NAMED = 5  # schools with their own colour and label: the furthest behind

# Contrast against white (WCAG): #b42318 6.1, #0b5cad 6.4, #7a4a00 7.9, #6d28d9 7.1,
# #0f766e 5.5; the other schools' grey #6b7280 4.8; the overall line #123457 12.4.
COLOURS = ("#b42318", "#0b5cad", "#7a4a00", "#6d28d9", "#0f766e")
OTHERS = "#6b7280"
OVERALL = "#123457"


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    percent: int
    colour: str
    overall: bool = False
    named: bool = False  # one of the five with a colour and a label
    short: str = ""  # the label at the end of the line
    label_y: float = 0.0
    end_y: float = 0.0


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[tuple[float, str]]
    start: str
    end: str
    today_x: float | None  # the line of today, when today lies within the span
    label_x: float

    @property
    def named(self) -> list[Line]:
        return [line for line in self.lines if line.named]


def _y_of(done: int, total: int) -> float:
    return TOP + _PLOT_H * (1 - (min(done / total, 1.0) if total else 0))


def _steps(
    times: list[dt.datetime],
    total: int,
    x_of: Callable[[dt.datetime], float],
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[str, int]:
    """A step line (flat, then up at each delivery), at most two points per pixel column, so
    thousands of deliveries stay a small SVG. It ends at ``end`` (today, or the deadline)."""
    raw = [(x_of(start), _y_of(0, total))]
    for done, moment in enumerate(times, start=1):
        x = x_of(moment)
        raw += [(x, _y_of(done - 1, total)), (x, _y_of(done, total))]
    raw.append((x_of(end), _y_of(len(times), total)))
    points: list[tuple[int, float]] = []
    for x, y in raw:
        column = round(x)
        if len(points) >= 2 and points[-1][0] == column and points[-2][0] == column:
            points[-1] = (column, y)
        else:
            points.append((column, y))
    text = " ".join(f"{x},{y:.1f}" for x, y in points)
    return text, min(100, round(100 * len(times) / total)) if total else 0


def _spread(wanted: list[float]) -> list[float]:
    """Label positions near ``wanted`` (sorted), at least ``_LABEL_GAP`` apart, in the plot."""
    placed: list[float] = []
    for y in wanted:
        y = max(y, TOP + 8, placed[-1] + _LABEL_GAP if placed else 0)
        placed.append(y)
    overflow = placed[-1] - (TOP + _PLOT_H - 2) if placed else 0
    if overflow > 0:
        placed = [y - overflow for y in placed]
    return placed


def _short(name: str, npsn: str) -> str:
    text = name or npsn
    return text if len(text) <= 18 else text[:17] + "…"


def progress_chart(
    history: Mapping[str, list[dt.datetime]],
    totals: Mapping[str, int],
    names: Mapping[str, str],
    *,
    span: tuple[dt.date, dt.date],
    now: dt.datetime,
) -> Chart | None:
    """One line per school (share delivered over time) and a bold line for all of them, from
    the period's first day to its deadline (``span``; widened to any delivery outside it);
    None when nothing has been delivered yet."""
    every = sorted(t for times in history.values() for t in times)
    if not every:
        return None
    start = dt.datetime.combine(span[0], dt.time(), WIB)
    end = dt.datetime.combine(span[1] + dt.timedelta(days=1), dt.time(), WIB)
    start, end = min(start, every[0]), max(end, every[-1] + dt.timedelta(seconds=1))
    seconds = (end - start).total_seconds()
    line_end = min(max(now, every[-1]), end)

    def x_of(moment: dt.datetime) -> float:
        return LEFT + _PLOT_W * (moment - start).total_seconds() / seconds

    schools = []
    for npsn in sorted(totals):
        total = totals[npsn]
        if total <= 0:
            continue
        times = history.get(npsn, [])
        points, percent = _steps(times, total, x_of, start, line_end)
        schools.append((percent, npsn, points, _y_of(len(times), total)))
    worst = sorted(schools)[:_NAMED]
    named = {npsn: COLOURS[i] for i, (_p, npsn, _pts, _y) in enumerate(worst)}
    by_height = sorted((end_y, npsn) for _p, npsn, _pts, end_y in schools if npsn in named)
    positions = {
        npsn: y for (_y, npsn), y in zip(by_height, _spread([y for y, _ in by_height]), strict=True)
    }
    lines = []
    for percent, npsn, points, end_y in schools:
        label = f"{names.get(npsn) or npsn} ({npsn}): {percent}%"
        colour = named.get(npsn, OTHERS)
        lines.append(
            Line(
                label,
                points,
                percent,
                colour,
                named=npsn in named,
                short=f"{_short(names.get(npsn, ''), npsn)} {percent}%",
                label_y=positions.get(npsn, end_y),
                end_y=end_y,
            )
        )
    # Grey lines under the coloured ones, the overall line on top.
    lines.sort(key=lambda line: line.named)
    grand = sum(t for t in totals.values() if t > 0)
    points, percent = _steps(every, grand, x_of, start, line_end)
    lines.append(Line(f"Semua sekolah: {percent}%", points, percent, OVERALL, overall=True))

    fmt = "%d/%m/%y" if seconds > 2 * 86400 else "%d/%m %H:%M"
    ticks = []
    for i in range(5):
        moment = start + dt.timedelta(seconds=seconds * i / 4)
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        ticks.append(Tick(x_of(moment), moment.astimezone(WIB).strftime(fmt), anchor))
    y_ticks = [(TOP + _PLOT_H * (1 - p / 100), f"{p}%") for p in (0, 25, 50, 75, 100)]
    return Chart(
        WIDTH,
        HEIGHT,
        LEFT,
        TOP,
        _PLOT_W,
        _PLOT_H,
        lines,
        ticks,
        y_ticks,
        start.astimezone(WIB).strftime("%Y-%m-%d"),
        end.astimezone(WIB).strftime("%Y-%m-%d"),
        x_of(now) if start <= now <= end else None,
        LEFT + _PLOT_W + 6,
    )
