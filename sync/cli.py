"""The ``ekinerja-sync`` command line (typer + rich)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from connectors.errors import FatalError, RetriableError
from state.models import SourceRecord
from sync.cli_output import EXIT_UNREACHABLE, CliGroup, fail, report_error, set_json_errors
from sync.deadline import DeadlineView
from sync.engine import RunSummary
from sync.progress import progress_bars
from sync.settings import ConfigError, Settings, load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="ekinerja-sync",
    help="Carry guru and kepala sekolah performance records from PMM into e-Kinerja.",
    no_args_is_help=True,
    add_completion=False,
    cls=CliGroup,  # start-up errors in one line, JSON with --log-json (sync/cli_output.py)
)
# Piped into a file or a pager, tables keep their width instead of folding at 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err_console = Console(stderr=True)


class _Context:
    def __init__(self, config: Path | None, verbose: bool, log_json: bool | None) -> None:
        self.config = config
        self.verbose = verbose
        self.log_json = log_json

    def settings(self, **overrides: dict[str, Any]) -> Settings:
        try:
            return load_settings(self.config, overrides=overrides or None)
        except ConfigError as exc:
            fail(str(exc), 2, problem="config")


def _show_version(value: bool) -> None:
    if value:
        from sync.version import VERSION

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
    from sync.logs import configure_logging

    configure_logging(json=log_json, level="INFO" if verbose else "WARNING")
    set_json_errors(log_json is True)
    ctx.obj = _Context(config, verbose, log_json)


PeriodOption = Annotated[
    str, typer.Option("--period", "-p", help="a year (2026) or a semester (2024-2)")
]
NpsnOption = Annotated[
    list[str] | None, typer.Option("--npsn", help="only this school (repeatable)")
]


def _check_period(period: str) -> str:
    from mappings.model import Period

    try:
        Period.parse(period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--period") from None
    return period


_SUMMARY_ROWS = (
    ("new", "new: created on e-Kinerja in this run"),
    ("updated", "updated: replaced on e-Kinerja in this run"),
    ("unchanged", "unchanged: delivered before, no change since"),
    ("waiting", "waiting: not ready in PMM yet"),
    ("held", "held: penilai has no SKP yet; sent later"),
    ("pending", "pending: not delivered yet; sent next run"),
    ("failed", "failed: refused by e-Kinerja (see status)"),
    ("locked", "locked: changed after e-Kinerja locked it"),
    ("cancelled", "cancelled in PMM"),
)


def print_summary(summary: RunSummary, out: Console = console) -> None:
    """The end-of-run table: new, updated, unchanged, quarantined, failed (and the rest)."""
    title = f"Sync {summary.period}"
    rows = list(_SUMMARY_ROWS)
    if summary.dry_run:
        title += " (dry run: nothing sent, nothing written)"
        rows = [("would_send", "would send"), *rows[2:]]
    table = Table(title=title, title_justify="left")
    table.add_column("outcome")
    table.add_column("SKP", justify="right")
    table.add_column("penilaian", justify="right")
    for key, label in rows:
        table.add_row(label, str(summary.count("skp", key)), str(summary.count("assessment", key)))
    table.add_section()
    table.add_row("quarantined: bad data in PMM (see status)", str(summary.quarantined), "")
    out.print(table)
    if summary.target_unreachable:
        pending = summary.count("skp", "pending") + summary.count("assessment", "pending")
        out.print(
            f"e-Kinerja was unreachable: {pending} pending, sent on the next run "
            f"({summary.target_unreachable})",
            highlight=False,
        )
    out.print(
        f"records read: {summary.pulled}, requests sent: {summary.requests_sent}, "
        f"run id: {summary.run_id}",
        highlight=False,
    )


@app.command()
def run(
    ctx: typer.Context,
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period",
            "-p",
            help="a year (2026) or a semester (2024-2), repeatable; default: [sync] periods, "
            "else the periods the source lists as running or before their batas_penilaian",
        ),
    ] = None,
    npsn: NpsnOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="pull, validate, map and plan; send and write nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    create_store: Annotated[
        bool,
        typer.Option(
            "--create-store", help="make the state store if there is none yet (a first run)"
        ),
    ] = False,
) -> None:
    """Sync periods: pull, validate, map, plan, push, record."""
    from mappings.periods import PeriodListingError
    from sync.bootstrap import build_app
    from sync.engine import MappingChoiceError
    from sync.npsn import check_format, check_in_source

    periods = [_check_period(p) for p in period or []]
    settings = ctx.obj.settings()
    schools = list(npsn or settings.sync.schools)
    where = "--npsn" if npsn else "sync.schools"
    check_format(schools, where)
    summaries = []
    with (
        build_app(settings, create_store=create_store) as application,
        progress_bars(err_console) as progress,
    ):
        try:
            check_in_source(application.source, schools, where)
            for code in periods or _default_periods(settings, application):
                summaries.append(
                    application.engine.run(
                        code, schools=schools, dry_run=dry_run, progress=progress
                    )
                )
        except FatalError as exc:
            fail(exc.message, 1)
        except (PeriodListingError, MappingChoiceError) as exc:
            fail(str(exc), 2, problem="period")
        except RetriableError as exc:  # the source's: delivery keeps what the target missed
            fail(
                f"PMM ({settings.source.base_url}) did not answer: {exc.message}; nothing is "
                "lost: run again once it answers",
                EXIT_UNREACHABLE,
                problem="source_unreachable",
            )
    if as_json:
        payload: Any = (
            summaries[0].as_dict() if len(summaries) == 1 else [s.as_dict() for s in summaries]
        )
        console.print_json(json.dumps(payload))
    else:
        for summary in summaries:
            print_summary(summary)
    if any(s.target_unreachable for s in summaries):
        report_error(
            f"e-Kinerja ({settings.target.base_url}) was unreachable; what was not sent stays "
            "pending and goes on the next run (or the daemon's retry)",
            exit_code=EXIT_UNREACHABLE,
            problem="target_unreachable",
        )
        raise typer.Exit(EXIT_UNREACHABLE)


def _default_periods(settings: Settings, application: Any) -> list[str]:
    """``[sync] periods``, else the periods the source lists as active today (WIB)."""
    from zoneinfo import ZoneInfo

    from sync.calendar import resolve_periods
    from sync.periods import fetch_listing

    listing = fetch_listing(application.source, application.store)
    periods = resolve_periods(
        settings.sync.periods,
        listing,
        dt.datetime.now(dt.UTC),
        timezone=ZoneInfo(settings.daemon.timezone),
        grace_days=settings.daemon.previous_period_grace_days,
    )
    if not periods:
        listed = ", ".join(p.code for p in listing) or "none"
        fail(
            f"no period is running or due: the source lists {listed}; name one with --period",
            2,
            problem="period",
        )
    return periods


_STATUS_COLUMNS = (
    ("waiting", "waiting"),
    ("pending", "pending"),
    ("held", "held"),
    ("failed", "failed"),
    ("locked", "locked"),
    ("cancelled", "cancel"),
)


@app.command()
def status(
    ctx: typer.Context,
    period: PeriodOption,
    npsn: NpsnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="the date to count the deadline from (WIB)")
    ] = None,
) -> None:
    """Counts per status, per school, the deadline view, and the records that need a person."""
    from sync.bootstrap import build_store
    from sync.deadline import deadline_view, today_in_jakarta
    from sync.npsn import check_in_store
    from sync.periods import stored_period

    period = _check_period(period)
    try:
        today = dt.date.fromisoformat(as_of) if as_of else today_in_jakarta()
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of"
        ) from None
    settings = ctx.obj.settings()
    store = build_store(settings, create=False)
    schools = list(npsn or [])
    check_in_store(store, schools, period)  # offline: what the store has read from PMM
    counts = store.status_counts(period, schools)
    failing = store.failing(period, schools)
    quarantined = store.quarantined(period, schools)
    deadline = deadline_view(stored_period(store, period), counts, today)
    if as_json:
        payload = {
            "period": period,
            "schools": {
                school: {f"{k}.{s}": n for (k, s), n in sorted(c.items())}
                for school, c in sorted(counts.items())
            },
            "attention": [
                {
                    "nip": r.nip,
                    "npsn": r.npsn,
                    "kind": r.kind,
                    "status": r.status,
                    "reason": r.reason,
                }
                for r in failing
            ],
            "deadline": deadline.as_dict(),
            "quarantined": [
                {
                    "source_id": q.id,
                    "nip": q.nip,
                    "npsn": q.npsn,
                    "code": q.reason_code,
                    "reason": q.reason,
                }
                for q in quarantined
            ],
        }
        console.print_json(json.dumps(payload))
        return
    if not counts:
        err_console.print(
            f"No records of {period} in the state store {_safe_url(settings.state.url)}: "
            f"has `ekinerja-sync run --period {period}` run against it?",
            highlight=False,
        )
        raise typer.Exit(1)
    table = Table(
        title=f"Status {period}: SKP and penilaian per school", title_justify="left", box=box.SIMPLE
    )
    table.add_column("NPSN")
    table.add_column("SKP sent", justify="right")
    table.add_column("penilaian sent", justify="right")
    for _key, label in _STATUS_COLUMNS:
        table.add_column(label, justify="right")
    table.add_column("quarantined", justify="right")
    totals: Counter[str] = Counter()
    for school, c in sorted(counts.items()):
        row = {
            "skp": c.get(("skp", "delivered"), 0),
            "assessment": c.get(("assessment", "delivered"), 0),
        }
        for key, _label in _STATUS_COLUMNS:
            # Deliverables of both kinds; "cancelled" includes those cancelled after delivery.
            row[key] = sum(
                n for (kind, status), n in c.items() if kind != "record" and status.startswith(key)
            )
        row["quarantined"] = c.get(("record", "quarantined"), 0)
        totals.update(row)
        table.add_row(school, *(str(n) for n in row.values()))
    table.add_section()
    table.add_row("all", *(str(totals[k]) for k in row))
    console.print(table)
    if failing:
        attention = Table(title="Needs attention", title_justify="left")
        for column in ("NIP", "NPSN", "kind", "status", "reason"):
            attention.add_column(column)
        for r in failing:
            attention.add_row(r.nip, r.npsn, r.kind.value, r.status.value, r.reason or "")
        console.print(attention)
    print_quarantine(quarantined)
    print_deadline(deadline)


def print_deadline(view: DeadlineView, out: Console | None = None) -> None:
    out = out or console
    urgency = "[bold red]" if view.in_last_month else ""
    out.print(
        f"{urgency}Deadline (batas penilaian) {view.deadline.isoformat()}: {view.when}"
        + (" (the last 30 days: chase the schools below)" if view.in_last_month else ""),
        highlight=False,
    )
    if not view.schools:
        out.print("Every penilaian of the period has reached e-Kinerja.")
        return
    table = Table(title="Schools whose penilaian are not all in e-Kinerja", title_justify="left")
    for column in ("NPSN", "not in yet", "of", "share in"):
        table.add_column(column, justify="right")
    for school in view.schools:
        table.add_row(
            school.npsn,
            str(school.missing),
            str(school.teachers),
            f"{100 * (school.teachers - school.missing) // max(school.teachers, 1)}%",
        )
    out.print(table)


def _safe_url(url: str) -> str:
    """The state URL without a password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def print_quarantine(rows: list[SourceRecord], out: Console = console) -> None:
    if not rows:
        return
    table = Table(title="Quarantined: bad data in PMM, fix it there", title_justify="left")
    for column in ("NIP", "NPSN", "reason"):
        table.add_column(column)
    for q in rows:
        table.add_row(q.nip, q.npsn, q.reason or "")
    out.print(table)


@app.command()
def sandbox(
    schools: Annotated[int, typer.Option(help="number of schools")] = 10,
    teachers_per_school: Annotated[int, typer.Option(help="guru per school")] = 20,
    seed: Annotated[int, typer.Option(help="random seed of the synthetic data")] = 1,
    schema_version: Annotated[int, typer.Option(min=1, max=2, help="PMM schema served")] = 1,
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period",
            help="periods to serve, e.g. 2026 or 2024-2 (repeatable; default: 2024-1, 2024-2, "
            "2025 and 2026, the newest running)",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="bind address (loopback)")] = "127.0.0.1",
    pmm_port: Annotated[int, typer.Option(help="PMM-like source port")] = 8701,
    ekinerja_port: Annotated[int, typer.Option(help="e-Kinerja-like target port")] = 8702,
    token_ttl_s: Annotated[int, typer.Option(help="tokens expire after this many seconds")] = 3600,
    rate_limit_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="target: share answered 429 + Retry-After")
    ] = 0.0,
    retry_after_s: Annotated[float, typer.Option(help="the Retry-After of those 429s")] = 1.0,
    error_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="target: share answered 500/502/503/504")
    ] = 0.0,
    slow_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="target: share answered after --slow-s")
    ] = 0.0,
    slow_s: Annotated[float, typer.Option(help="delay of the slow answers")] = 0.0,
    drop_share: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="target: share stored, then connection dropped"),
    ] = 0.0,
    latency_s: Annotated[float, typer.Option(help="target: latency added to every call")] = 0.0,
    maintenance_s: Annotated[
        float, typer.Option(help="target: a maintenance window (503) for the first N seconds")
    ] = 0.0,
    unknown_nip: Annotated[
        list[str] | None,
        typer.Option("--unknown-nip", help="target: 422 NIP_TIDAK_DITEMUKAN for it (repeatable)"),
    ] = None,
    target_rate_limit: Annotated[
        float, typer.Option(help="target: requests per second per client, 429 beyond; 0: none")
    ] = 0.0,
) -> None:
    """Serve both sandbox APIs on loopback with seeded synthetic data, until Ctrl-C.

    Faults of the target are switched by the options (all off by default), and at run time
    with `PUT /_sandbox/faults` on the target.
    """
    from connectors.sandbox import Faults, generate_world, serve_forever

    periods = [_check_period(p) for p in period or []]
    world = generate_world(
        schools=schools,
        teachers_per_school=teachers_per_school,
        seed=seed,
        schema_version=schema_version,
        **({"periods": periods} if periods else {}),
    )
    faults = Faults(
        seed=seed,
        rate_limit_share=rate_limit_share,
        retry_after_s=retry_after_s,
        error_share=error_share,
        slow_share=slow_share,
        slow_s=slow_s,
        drop_after_store_share=drop_share,
        latency_s=latency_s,
        unknown_nips=set(unknown_nip or ()),
        rate_limit_per_s=target_rate_limit,
    )
    if maintenance_s > 0:
        faults.update({"maintenance_s": maintenance_s})
    err_console.print(
        f"sandbox: PMM on http://{host}:{pmm_port}, e-Kinerja on http://{host}:{ekinerja_port}"
        f" ({len(world.records())} records, {len(world.defects)} deliberately bad); Ctrl-C stops"
    )
    serve_forever(
        world,
        host=host,
        pmm_port=pmm_port,
        ekinerja_port=ekinerja_port,
        faults=faults,
        token_ttl_s=token_ttl_s,
        schema_version=schema_version,
    )


@app.command()
def demo(
    ctx: typer.Context,
    state_url: Annotated[
        str, typer.Option(help="state store of the demo (recreated)")
    ] = "sqlite:///ekinerja-sync-demo.db",
    schools: Annotated[int, typer.Option(help="number of schools")] = 10,
    teachers_per_school: Annotated[int, typer.Option(help="guru per school")] = 20,
    period: Annotated[
        str | None,
        typer.Option(help="the period to sync (default: the one the sandbox lists as running)"),
    ] = None,
) -> None:
    """Sandbox up, the running period synced on SQLite, the summary printed, sandbox down."""
    from connectors.sandbox import generate_world, running_sandbox
    from mappings.periods import PeriodListingError, find_period
    from sync.bootstrap import build_app
    from sync.logs import configure_logging
    from sync.periods import fetch_listing

    if not ctx.obj.verbose:
        configure_logging(json=ctx.obj.log_json, level="ERROR")  # the tables tell the story

    if period is not None:
        period = _check_period(period)
    if state_url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(state_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    world = generate_world(schools=schools, teachers_per_school=teachers_per_school)
    with running_sandbox(world) as box:
        settings = load_settings(
            None,
            overrides={
                "state": {"url": state_url},
                "source": {"base_url": box.pmm_url},
                "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
            },
        )
        with build_app(settings, create_store=True) as application:  # the demo's own store
            listing = fetch_listing(application.source, None)
            try:
                chosen = (
                    find_period(listing, period)
                    if period
                    else next(p for p in reversed(listing) if p.running)
                )
            except (PeriodListingError, StopIteration):
                listed = ", ".join(p.code for p in listing)
                err_console.print(f"error: the sandbox lists {listed}; pick one with --period")
                raise typer.Exit(2) from None
            period = chosen.code
            console.print(
                f"sandbox up: PMM {box.pmm_url}, e-Kinerja {box.ekinerja_url}; it lists "
                f"{', '.join(p.code for p in listing)}; syncing {period} "
                f"({chosen.period.kind.value}): {len(world.records(period))} source records, "
                f"{sum(1 for d in world.defects if d.source_id in _ids(world, period))} "
                "deliberately bad"
            )
            summary = application.engine.run(period)
            print_summary(summary)
            print_quarantine(application.store.quarantined(period))
            again = application.engine.run(period)
        stats = box.target.stats()
    console.print(
        f"e-Kinerja sandbox holds {stats['skp_created']} SKP created, "
        f"{stats['skp_updated']} updated, {stats['penilaian_created']} penilaian. "
        f"A second run sent {again.requests_sent} requests."
    )
    console.print(
        f"sandbox down. The state is kept in {state_url}; to see it per school:\n"
        f"  EKINERJA_SYNC_STATE__URL={state_url} .venv/bin/ekinerja-sync status --period {period}",
        highlight=False,
    )


def _ids(world: Any, period: str) -> set[str]:
    return {str(r["id"]) for r in world.records(period)}


def _register() -> None:
    from sync.cli_daemon import daemon, reconcile  # issue #5: the service
    from sync.cli_db import db_app  # issue #5.7: schema migrations
    from sync.cli_ledger import ledger_app
    from sync.cli_mappings import mappings_app  # issue #6: mapping versions
    from sync.cli_operator import discard, failures_app, quarantine_app, replay, reset
    from sync.cli_users import users_app  # issue #8: web console users
    from sync.cli_web import web  # issue #8: the web console

    app.add_typer(failures_app, name="failures")
    app.add_typer(quarantine_app, name="quarantine")
    app.command()(replay)
    app.command()(discard)
    app.command()(reset)
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(users_app, name="users")
    app.command()(web)
    app.add_typer(mappings_app, name="mappings")
    app.add_typer(db_app, name="db")
    app.command()(daemon)
    app.command()(reconcile)


_register()


def main() -> None:
    from state.schema import SchemaError

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except SchemaError as exc:  # issue #5.7: any command (the daemon too) on a schema that
        # is behind or ahead stops here with the message naming `ekinerja-sync db upgrade`
        report_error(str(exc), exit_code=2, problem="schema")
        sys.exit(2)
    except Exception as exc:  # a bug: with --log-json still one JSON line (the trace in it)
        from sync.cli_output import json_errors

        if not json_errors():
            raise
        import traceback

        report_error(
            f"{type(exc).__name__}: {exc}",
            exit_code=1,
            event="cli.crashed",
            traceback=traceback.format_exc(),
        )
        sys.exit(1)
