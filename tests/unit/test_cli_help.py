"""Issue 23, item 7: ``--help`` prints config keys literally and shows flags as flags.

Rich markup took ``[sync]`` and ``[daemon]`` for style tags and dropped them ("Syncs the
active periods on  sync_cron"), and every flag was shown with a ``<bool>`` type.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sync.cli import app

runner = CliRunner()


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("command", "literal"),
    [
        (("daemon",), "[daemon] sync_cron"),
        (("daemon",), "[daemon] workers"),
        (("run",), "[sync] periods"),
    ],
)
def test_config_keys_are_printed_literally(command: tuple[str, ...], literal: str) -> None:
    assert literal in " ".join(_help(*command).split())


@pytest.mark.parametrize(
    "command",
    [(), ("run",), ("status",), ("daemon",), ("failures", "list"), ("replay",), ("ledger", "show")],
)
def test_flags_have_no_type(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert "<bool>" not in text
    assert "--help" in text


def test_period_and_npsn_show_what_they_take() -> None:
    text = _help("status")
    assert "--period PERIOD" in text
    assert "--npsn NPSN" in text
