"""The progress chart of the overview: the share of each school's deliverables delivered, over
time, as inline SVG drawn on the server (no script). Its geometry is computed here; the
template writes the elements (so every text in it is escaped like the rest of the page)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sync.web._words import WIB

__all__ = ["Chart", "Line", "progress_chart"]

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28
_PLOT_W = WIDTH - LEFT - RIGHT
_PLOT_H = HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    percent: int
    overall: bool = False


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


def _steps(
    times: list[dt.datetime],
    total: int,
    x_of: Callable[[dt.datetime], float],
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[str, int]:
    """A step line (flat, then up at each delivery), at most two points per pixel column, so
    thousands of deliveries stay a small SVG."""

    def y_of(done: int) -> float:
        return TOP + _PLOT_H * (1 - (min(done / total, 1.0) if total else 0))

    raw = [(x_of(start), y_of(0))]
    for done, moment in enumerate(times, start=1):
        x = x_of(moment)
        raw += [(x, y_of(done - 1)), (x, y_of(done))]
    raw.append((x_of(end), y_of(len(times))))
    points: list[tuple[int, float]] = []
    for x, y in raw:
        column = round(x)
        if len(points) >= 2 and points[-1][0] == column and points[-2][0] == column:
            points[-1] = (column, y)
        else:
            points.append((column, y))
    text = " ".join(f"{x},{y:.1f}" for x, y in points)
    return text, min(100, round(100 * len(times) / total)) if total else 0


def progress_chart(
    history: Mapping[str, list[dt.datetime]],
    totals: Mapping[str, int],
    names: Mapping[str, str],
    *,
    now: dt.datetime,
) -> Chart | None:
    """One line per school (share delivered over time) and a bold line for all of them;
    None when nothing has been delivered yet."""
    every = sorted(t for times in history.values() for t in times)
    if not every:
        return None
    start, last = every[0], every[-1]
    # Up to now (nothing since is news too), but the quiet tail takes a quarter at most.
    end = max(last, min(now, last + max((last - start) / 3, dt.timedelta(seconds=2))))
    if end - start < dt.timedelta(seconds=10):
        end = start + dt.timedelta(seconds=10)
    span = (end - start).total_seconds()

    def x_of(moment: dt.datetime) -> float:
        return LEFT + _PLOT_W * (moment - start).total_seconds() / span

    lines = []
    for npsn in sorted(totals):
        total = totals[npsn]
        if total <= 0:
            continue
        points, percent = _steps(history.get(npsn, []), total, x_of, start, end)
        label = f"{names.get(npsn) or npsn} ({npsn}): {percent}%"
        lines.append(Line(label, points, percent))
    grand = sum(t for t in totals.values() if t > 0)
    points, percent = _steps(every, grand, x_of, start, end)
    lines.append(Line(f"Semua sekolah: {percent}%", points, percent, overall=True))

    fmt = "%H:%M:%S" if span < 3600 else "%H:%M" if span < 2 * 86400 else "%d/%m"
    ticks = []
    for i in range(5):
        moment = start + dt.timedelta(seconds=span * i / 4)
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
        start.astimezone(WIB).strftime("%Y-%m-%d %H:%M"),
        end.astimezone(WIB).strftime("%Y-%m-%d %H:%M"),
    )
