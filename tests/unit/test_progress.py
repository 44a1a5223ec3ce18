from __future__ import annotations

import io

from rich.console import Console

from sync.cli.progress import progress_bars


def test_bars_on_a_terminal_count_each_stage() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress_bars(console) as progress:
        assert progress is not None
        progress("pull", 50)
        progress("deliver", 3)
        console.file.flush()
    # transient bars are cleared at the end, but were drawn while running
    text = out.getvalue()
    assert "reading PMM" in text
    assert "sending to e-Kinerja" in text


def test_no_bars_in_a_pipe() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_bars(console) as progress:
        assert progress is None
