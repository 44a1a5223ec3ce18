"""Progress bars for long commands, on a terminal only (pipes and logs get none)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["ProgressCallback", "progress_bars"]

ProgressCallback = Callable[[str, int], None]
"""``(stage, n)``: ``n`` more items done in ``stage`` (e.g. "pull", "deliver")."""

_LABELS = {"pull": "reading PMM", "deliver": "sending to e-Kinerja", "export": "exporting"}


@contextmanager
def progress_bars(console: Console, *, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """A callback that advances one bar per stage; ``None`` when not on a terminal."""
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def advance(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(_LABELS.get(stage, stage), total=None)
            bars.advance(tasks[stage], n)

        yield advance
