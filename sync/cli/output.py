"""How the command line reports an error: one line on stderr, plain text, or a JSON object
with ``--log-json`` (and in the daemon when it logs JSON), start-up errors included.

Errors that mean "this cannot start" are caught once, in ``CliGroup.invoke``, whatever command
raised them: a configuration that cannot be used (``ConfigError``), a state store that cannot
be opened (``StoreUnusable``) or whose schema does not fit (``SchemaError``). Each is one line
saying what to do, exit code 2, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import UsageError  # typer >= 0.22 ships its own click
from typer.core import TyperGroup

from state.db import StoreUnusable
from state.schema import SchemaError
from sync.logs import redact_secrets
from sync.operations.npsn import NpsnError
from sync.settings import ConfigError

__all__ = [
    "EXIT_FAILED",
    "EXIT_THROTTLED",
    "EXIT_UNREACHABLE",
    "EXIT_UNUSABLE",
    "CliGroup",
    "fail",
    "json_errors",
    "report_error",
    "set_json_errors",
]

EXIT_FAILED = 1  # the command ran and something failed (refused credentials, ...)
EXIT_UNUSABLE = 2  # it could not start: configuration, state store, schema, a wrong argument
EXIT_UNREACHABLE = 3  # PMM or e-Kinerja did not answer: records stay pending for later
# Done, nothing for a person, but e-Kinerja answered "later" (429/503) and the run waited on
# it, or left records pending for the next run: the installation may be above its share.
EXIT_THROTTLED = 4

_state = {"json": False}


def set_json_errors(on: bool) -> None:
    """Errors from now on are JSON lines (``--log-json``; the daemon logging JSON)."""
    _state["json"] = on


def json_errors() -> bool:
    return _state["json"]


def report_error(message: str, *, exit_code: int, event: str = "cli.error", **fields: Any) -> None:
    """Print one error: ``error: <message>``, or a JSON object like the log events."""
    if _state["json"]:
        record: dict[str, Any] = {
            "event": event,
            "level": "error",
            "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
            "error": message,
            "exit_code": exit_code,
            **fields,
        }
        redacted = redact_secrets(None, "error", record)
        sys.stderr.write(json.dumps(dict(redacted), ensure_ascii=False, default=str) + "\n")
        sys.stderr.flush()
        return
    Console(stderr=True).print(
        f"[red]error:[/red] {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )


def fail(message: str, exit_code: int = EXIT_UNUSABLE, **fields: Any) -> NoReturn:
    report_error(message, exit_code=exit_code, **fields)
    raise typer.Exit(exit_code)


class CliGroup(TyperGroup):
    """The top-level command group: turns start-up errors into one line (see the module)."""

    def invoke(self, ctx: Any) -> Any:

        try:
            return super().invoke(ctx)
        except (ConfigError, StoreUnusable, SchemaError, NpsnError) as exc:
            kinds = {ConfigError: "config", StoreUnusable: "state_store", NpsnError: "npsn"}
            fail(str(exc), EXIT_UNUSABLE, problem=kinds.get(type(exc), "schema"))
        except UsageError as exc:
            if not _state["json"]:
                raise  # typer prints it with the usage
            fail(exc.format_message(), exc.exit_code, problem="usage")
