"""What every command group of the CLI shares: the consoles, the options of a period and a
school, the command context (settings read once, errors in one line), and small helpers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from mappings.model import Period
from sync.cli.output import fail
from sync.settings import ConfigError, Settings, load_settings

__all__ = [
    "CliContext",
    "NpsnOption",
    "PeriodOption",
    "check_period",
    "console",
    "err_console",
    "safe_url",
]

# Piped into a file or a pager, tables keep their width instead of folding at 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)


class CliContext:
    """What the global options set: the config path, verbosity, the log format."""

    def __init__(self, config: Path | None, verbose: bool, log_json: bool | None) -> None:
        self.config = config
        self.verbose = verbose
        self.log_json = log_json

    def settings(self, **overrides: dict[str, Any]) -> Settings:
        try:
            return load_settings(self.config, overrides=overrides or None)
        except ConfigError as exc:
            fail(str(exc), 2, problem="config")


PeriodOption = Annotated[
    str,
    typer.Option("--period", "-p", metavar="PERIOD", help="a year (2026) or a semester (2024-2)"),
]
NpsnOption = Annotated[
    list[str] | None, typer.Option("--npsn", metavar="NPSN", help="only this school (repeatable)")
]


def check_period(period: str) -> str:
    """A period code as typed, checked where it enters (a year or a semester)."""
    try:
        Period.parse(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None
    return period


def safe_url(url: str) -> str:
    """The state URL without a password."""
    return make_url(url).render_as_string(hide_password=True)
