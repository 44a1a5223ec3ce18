"""Issue 23, item 6: one place decides a command's exit code: 2 > 3 > 1 > 4 > 0."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from sync.cli.output import (
    EXIT_FAILED,
    EXIT_THROTTLED,
    EXIT_UNREACHABLE,
    EXIT_UNUSABLE,
    exit_code,
)

# The operators' guide explains the codes with examples (the reference page is generated).
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operators" / "failures.md"
FLAGS = ("unusable", "unreachable", "needs_person", "throttled")


def test_nothing_happened_is_0() -> None:
    assert exit_code() == 0


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)))
def test_the_worst_wins(flags: tuple[bool, bool, bool, bool]) -> None:
    given = dict(zip(FLAGS, flags, strict=True))
    order = [
        ("unusable", EXIT_UNUSABLE),
        ("unreachable", EXIT_UNREACHABLE),
        ("needs_person", EXIT_FAILED),
        ("throttled", EXIT_THROTTLED),
    ]
    expected = next((code for name, code in order if given[name]), 0)
    assert exit_code(**given) == expected


def test_the_codes_are_what_the_guide_says() -> None:
    assert (EXIT_FAILED, EXIT_UNUSABLE, EXIT_UNREACHABLE, EXIT_THROTTLED) == (1, 2, 3, 4)
    text = GUIDE.read_text(encoding="utf-8")
    table = text[text.index("## Exit codes") :]
    for code in (0, 1, 2, 3, 4, 130):
        assert re.search(rf"^\| `{code}` \|", table, re.MULTILINE), code
    assert "2 > 3 > 1 > 4 > 0" in table
