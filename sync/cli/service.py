"""``ekinerja-sync daemon`` (the service) and ``ekinerja-sync reconcile`` (the check)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from connectors.errors import FatalError
from sync.bootstrap import build_app
from sync.cli.options import NpsnOption, PeriodOption, check_period, console
from sync.cli.output import EXIT_UNUSABLE, fail, report_error, set_json_errors
from sync.logs import configure_logging
from sync.operations.known_periods import require_known
from sync.operations.reconcile import reconcile_period
from sync.service.daemon import Daemon, DaemonError
from sync.service.schedule import ScheduleError, declare_jobs
from sync.service.supervisor import Supervisor, watch_supervisor

__all__ = ["daemon", "reconcile"]

_LOG_FORMATS: dict[str, bool | None] = {"json": True, "console": False, "auto": None}
_PROBLEM_WORDS = {
    "missing": "missing on e-Kinerja",
    "other_version": "another versi",
    "changed": "changed outside the sync",
    "untracked": "on e-Kinerja, never sent by the sync",
    "error": "could not be checked",
}


def daemon(
    ctx: typer.Context,
    create_store: Annotated[
        bool,
        typer.Option(
            "--create-store",
            help="make the state store if there is none yet (else: `ekinerja-sync db upgrade`)",
        ),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=32,
            help="worker processes on one PostgreSQL store (default: [daemon] workers, 1)",
        ),
    ] = None,
    worker: Annotated[int, typer.Option("--worker", hidden=True)] = 1,
    supervisor_pid: Annotated[int, typer.Option("--supervisor", hidden=True)] = 0,
) -> None:
    """Run as a service: scheduled syncs, retries, nightly reconciliation; /healthz, /metrics.

    Syncs the active periods on [daemon] sync_cron, resends due retries every
    retry_every_s, reconciles on reconcile_cron. SIGTERM or SIGINT stops it cleanly (exit 0).
    With --workers N (PostgreSQL), this process starts N-1 more and stops them with it.
    """

    settings = ctx.obj.settings()
    # --worker K (hidden): one of the processes a `--workers N` daemon started (K > 1).
    count = 1 if worker > 1 else workers or settings.daemon.workers
    # --log-json/--log-console before the command win over [daemon] log_format.
    use_json = ctx.obj.log_json
    if use_json is None:
        use_json = _LOG_FORMATS[settings.daemon.log_format]
    configure_logging(
        json=use_json,
        level="DEBUG" if ctx.obj.verbose else settings.daemon.log_level,
        fields={"worker": worker} if count > 1 or worker > 1 else None,
    )
    if use_json is None:
        use_json = not sys.stderr.isatty()  # what configure_logging chose for "auto"
    set_json_errors(use_json)  # its start-up errors read like its log lines
    if count > 1 and make_url(settings.state.url).get_backend_name() == "sqlite":
        named = f"--workers {workers}" if workers else f"[daemon] workers = {count}"
        fail(
            f"{named} needs a PostgreSQL state store: SQLite takes one daemon per file. "
            "Run one worker (--workers 1) or move state.url to PostgreSQL.",
            EXIT_UNUSABLE,
            event="daemon.failed",
            problem="config",
        )
    try:  # a wrong cron expression stops it before anything is opened
        declare_jobs(settings.daemon, ZoneInfo(settings.daemon.timezone), worker=worker, job=_noop)
    except ScheduleError as exc:
        fail(str(exc), EXIT_UNUSABLE, event="daemon.failed", problem="config")
    if settings.sync.overlap and (count > 1 or worker > 1 or workers == 1):
        # Several workers already share a sync by the same protocol (one walks, the others
        # deliver); `--workers 1` asks for one process: no delivery helper either.
        settings = settings.model_copy(
            update={"sync": settings.sync.model_copy(update={"overlap": False})}
        )
    daemon = Daemon(settings, create_store=create_store and worker == 1, worker=worker)
    if worker > 1 and supervisor_pid:
        watch_supervisor(daemon, supervisor_pid)
    supervisor = None
    if count > 1:
        command = _worker_command(ctx.obj.config, ctx.obj.verbose, use_json)
        supervisor = Supervisor(daemon, count, command)
    try:
        with supervisor or contextlib.nullcontext():
            clean = daemon.run()
    except DaemonError as exc:  # it could not start (another daemon on the SQLite store, ...)
        fail(str(exc), EXIT_UNUSABLE, event="daemon.failed")
    failure = supervisor.failure if supervisor is not None else None
    if failure:  # exit 1: systemd's Restart=on-failure starts all the workers again
        report_error(f"{failure}: stopped the other workers", exit_code=1, event="daemon.failed")
    if not clean:
        # Jobs that outlived the grace period are abandoned as a crash would abandon them
        # (nothing is lost: unanswered requests stay in the outbox); do not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if failure else 0)
    if failure:
        raise typer.Exit(1)


def _noop(_name: str) -> Callable[[], None]:
    return lambda: None


def _worker_command(
    config: Path | None, verbose: bool, use_json: bool
) -> Callable[[int], list[str]]:
    """The argv of worker K: this command, in this interpreter, with the same config."""

    def argv(k: int) -> list[str]:
        # -P: the service's working directory is not put on sys.path (nothing there is code).
        head = [sys.executable, "-P", "-c", "from sync.cli import main; main()"]
        options = ["--config", os.fspath(config)] if config is not None else []
        options += ["--verbose"] if verbose else []
        options.append("--log-json" if use_json else "--log-console")
        return [*head, *options, "daemon", "--worker", str(k), "--supervisor", str(os.getpid())]

    return argv


def reconcile(
    ctx: typer.Context,
    period: PeriodOption,
    npsn: NpsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Compare what was delivered with what e-Kinerja holds; report, change nothing.

    For every delivered SKP of the period, GET /api/v1/skp: missing, another versi, or
    changed outside the sync; per school, SKPs on e-Kinerja the sync never sent. Exit code
    0: everything matches; 1: something differs; 2: it could not be checked.
    """

    settings = ctx.obj.settings()
    period = check_period(period)
    with build_app(settings, actor="cli", create_store=False) as application:
        require_known(application.store, period)
        try:
            report = reconcile_period(
                application, period, schools=list(npsn or settings.sync.schools)
            )
        except FatalError as exc:
            fail(exc.message, 2)
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        if report.discrepancies:
            table = Table(
                title=f"Reconcile {period}: not as delivered on e-Kinerja", title_justify="left"
            )
            for column in ("NIP", "NPSN", "kind", "problem", "id_skp", "versi (sync / e-Kinerja)"):
                table.add_column(column)
            table.add_column("detail")
            for d in report.discrepancies:
                table.add_row(
                    d.nip,
                    d.npsn,
                    d.kind,
                    _PROBLEM_WORDS[d.problem],
                    d.skp_id or "",
                    f"{d.delivered_version or '-'} / {d.target_version or '-'}",
                    d.detail,
                )
            console.print(table)
        drift = report.untracked_by_school()
        if drift:
            per_school = Table(
                title=f"SKPs of {period} on e-Kinerja that the sync never sent, per school",
                title_justify="left",
            )
            per_school.add_column("NPSN")
            per_school.add_column("SKPs made outside the sync", justify="right")
            for school, n in drift.items():
                per_school.add_row(school, str(n))
            console.print(per_school)
        counts = report.counts()
        found = ", ".join(f"{n} {_PROBLEM_WORDS[p]}" for p, n in counts.items() if n)
        console.print(
            f"checked {report.checked} delivered SKPs and the SKP lists of "
            f"{report.schools_listed} schools of {period}: " + (found or "all as delivered"),
            highlight=False,
        )
    if report.discrepancies:
        raise typer.Exit(1)
