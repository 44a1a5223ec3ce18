"""The ``ekinerja-sync`` command line (typer + rich): ``app`` is built here from the command
groups, one module each; what they share (consoles, options, the context) is in ``options``,
how errors are reported in ``output``.

The console script is ``ekinerja-sync = sync.cli:main``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from state.schema import SchemaError
from sync.cli.db import db_app
from sync.cli.ledger import ledger_app
from sync.cli.mappings import mappings_app
from sync.cli.operator import discard, failures_app, quarantine_app, replay, reset
from sync.cli.options import CliContext
from sync.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_UNUSABLE,
    CliGroup,
    report_crash,
    report_error,
    set_json_errors,
)
from sync.cli.periods import actions_app, periods_app
from sync.cli.run import run, status
from sync.cli.sandbox import demo, sandbox
from sync.cli.schools import schools_app
from sync.cli.service import daemon, reconcile
from sync.cli.users import users_app
from sync.cli.web import web
from sync.logs import configure_logging, job_context
from sync.version import VERSION

__all__ = ["app", "main"]

app = typer.Typer(
    name="ekinerja-sync",
    help="Carry guru and kepala sekolah performance records from PMM into e-Kinerja.",
    no_args_is_help=True,
    add_completion=False,
    # Plain help: the texts name config keys as `[sync] periods`, which Rich markup would
    # swallow as a style tag; and a flag is shown as a flag, not as `<bool>`.
    rich_markup_mode=None,
    cls=CliGroup,  # start-up errors in one line, JSON with --log-json (sync/cli/output.py)
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"ekinerja-sync {VERSION}")
        raise typer.Exit()


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="config.toml (default: $EKINERJA_SYNC_CONFIG, else built-in sandbox defaults)",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every event")] = False,
    log_json: Annotated[
        bool | None,
        typer.Option(
            "--log-json/--log-console", help="log format, errors included (default: auto)"
        ),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="print the version, exit"
        ),
    ] = False,
) -> None:
    configure_logging(json=log_json, level="INFO" if verbose else "WARNING")
    # Every event of the command carries its name as `job` (`run`, `replay`, ...); the
    # daemon's jobs bind their own (`sync`, `retry`, `reconcile`).
    ctx.with_resource(job_context(ctx.invoked_subcommand))
    set_json_errors(log_json is True)
    ctx.obj = CliContext(config, verbose, log_json)


# The commands, in the order `--help` lists them.
for command in (run, status, sandbox, demo, replay, discard, reset, web, daemon, reconcile):
    app.command()(command)
app.add_typer(failures_app, name="failures")
app.add_typer(actions_app, name="actions")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(periods_app, name="periods")
app.add_typer(ledger_app, name="ledger")
app.add_typer(users_app, name="users")
app.add_typer(mappings_app, name="mappings")
app.add_typer(db_app, name="db")
app.add_typer(schools_app, name="schools")


def main() -> None:
    # Errors inside a command are one line already (CliGroup.invoke); these are the ones
    # raised around it (reading the arguments, say), said the same way.
    try:
        app()
    except KeyboardInterrupt:
        report_error("stopped by Ctrl-C", exit_code=EXIT_INTERRUPTED, problem="interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except SchemaError as exc:  # any command (the daemon too) on a schema that is behind or
        # ahead stops here with the message naming `ekinerja-sync db upgrade`
        report_error(str(exc), exit_code=EXIT_UNUSABLE, problem="schema")
        sys.exit(EXIT_UNUSABLE)
    except Exception as exc:  # a bug: one line (with --log-json, the trace in it)
        report_crash(exc)
        sys.exit(EXIT_UNUSABLE)
