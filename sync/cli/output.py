"""How the command line reports an error: one line on stderr, plain text, or a JSON object
with ``--log-json`` (and in the daemon when it logs JSON), start-up errors included.

Errors that mean "this cannot start" are caught once, in ``CliGroup.invoke``, whatever command
raised them: a configuration that cannot be used (``ConfigError``), a state store that cannot
be opened (``StoreUnusable``) or whose schema does not fit (``SchemaError``). Each is one line
saying what to do, exit code 2, never a traceback. Any other exception is one line too (a bug:
``--verbose`` shows where), exit code 2; Ctrl-C is one line and 130.

``exit_code`` is the one place that decides a command's exit code when several apply.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import traceback
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import ClickException, UsageError  # typer >= 0.22: its own click
from typer.core import TyperGroup

from state.db import StoreUnusable
from state.schema import SchemaError
from sync.logs import redact_secrets
from sync.operations.known_periods import UnknownPeriod
from sync.operations.npsn import NpsnError
from sync.settings import ConfigError

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_THROTTLED",
    "EXIT_UNREACHABLE",
    "EXIT_UNUSABLE",
    "CliGroup",
    "exit_code",
    "fail",
    "json_errors",
    "report_crash",
    "report_error",
    "set_json_errors",
    "worst_exit_code",
]

# Done, but something needs a person: the run made new failures (e-Kinerja refused records),
# locked records or new quarantine; `status` shows records that need attention; e-Kinerja
# refused the credentials; a reconciliation found differences; a ledger does not verify.
EXIT_FAILED = 1
# Could not start: a config key or value, the credentials missing, the state store, its schema,
# an unknown period or NPSN, a wrong argument, another daemon on the SQLite store; and an
# unexpected error (a bug), so that a wrapper stops on it.
EXIT_UNUSABLE = 2
EXIT_UNREACHABLE = 3  # PMM or e-Kinerja did not answer: records stay pending for later
# Done, nothing for a person, but e-Kinerja answered "later" (429/503) and the run waited on
# it, or left records pending for the next run: the installation may be above its share.
EXIT_THROTTLED = 4
EXIT_BROKEN_PIPE = 141  # the output's reader went away (`| head`): stopped quietly, as on SIGPIPE
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C: what was sent is recorded; run again to go on

# When several apply, the first of these wins: a wrapper (cron, systemd) reads the worst.
_PRIORITY = (EXIT_UNUSABLE, EXIT_UNREACHABLE, EXIT_FAILED, EXIT_THROTTLED)


def exit_code(
    *,
    unusable: bool = False,
    unreachable: bool = False,
    needs_person: bool = False,
    throttled: bool = False,
) -> int:
    """A command's exit code from what happened: 2 > 3 > 1 > 4 > 0 (docs/operators/failures.md)."""
    happened = {
        EXIT_UNUSABLE: unusable,
        EXIT_UNREACHABLE: unreachable,
        EXIT_FAILED: needs_person,
        EXIT_THROTTLED: throttled,
    }
    return next((code for code in _PRIORITY if happened[code]), 0)


def worst_exit_code(*codes: int) -> int:
    """Of several processes' exit codes (a run and its delivery process), the one a wrapper
    reads: the first in 2 > 3 > 1 > 4, else any other non-zero one, else 0."""
    for code in _PRIORITY:
        if code in codes:
            return code
    return next((code for code in codes if code), 0)


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


def _plain(exc: BaseException) -> str:
    """An exception's text on one line, secrets masked, cut short."""
    text = " ".join(str(exc).split())[:300]
    return str(redact_secrets(None, "error", {"error": text})["error"])


# Commands that send: stopped half-way, they say that nothing is lost.
_SENDING = {"run", "replay", "demo"}


class CliGroup(TyperGroup):
    """The top-level command group: turns start-up errors into one line (see the module)."""

    def invoke(self, ctx: Any) -> Any:

        try:
            return super().invoke(ctx)
        except (ConfigError, StoreUnusable, SchemaError, NpsnError, UnknownPeriod) as exc:
            kinds = {
                ConfigError: "config",
                StoreUnusable: "state_store",
                NpsnError: "npsn",
                UnknownPeriod: "period",
            }
            fail(str(exc), EXIT_UNUSABLE, problem=kinds.get(type(exc), "schema"))
        except UsageError as exc:
            if not _state["json"]:
                raise  # typer prints it with the usage
            fail(exc.format_message(), exc.exit_code, problem="usage")
        except KeyboardInterrupt:
            command = ctx.invoked_subcommand or ""
            said = "; what was sent is recorded, run again to continue" * (command in _SENDING)
            fail(f"stopped by Ctrl-C{said}", EXIT_INTERRUPTED, problem="interrupted")
        except (ClickException, typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`schools actions --csv | head`): as other tools do, stop
            # quietly; stdout is pointed at nothing so the interpreter's flush cannot fail too.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except Exception as exc:
            # A bug, whatever the input: one line (with --log-json the trace goes in it).
            # `--verbose` shows the trace instead, for the report.
            if getattr(ctx.obj, "verbose", False) and not _state["json"]:
                raise
            report_crash(exc)
            raise typer.Exit(EXIT_UNUSABLE) from None


def report_crash(exc: BaseException) -> None:
    """An unexpected exception (a bug) in one line; with JSON errors, the trace goes in it."""
    report_error(
        f"unexpected {type(exc).__name__}: {_plain(exc)}; this is a bug in ekinerja-sync: run "
        "the command again with --verbose (before the command) to see where, and report it",
        exit_code=EXIT_UNUSABLE,
        event="cli.crashed",
        problem="bug",
        **({"traceback": traceback.format_exc()} if _state["json"] else {}),
    )
