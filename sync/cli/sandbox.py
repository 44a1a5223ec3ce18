"""``sandbox`` and ``demo``: the bundled sandbox APIs, and a full sync against them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.sandbox import Faults, generate_world, running_sandbox, serve_forever
from connectors.sandbox.contacts import contacts_csv
from connectors.sandbox.mailsink import MailSink, running_mail_sink
from connectors.sandbox.server import PortUnavailable
from mappings.periods import PeriodListingError, find_period
from state.store import StateStore
from sync.bootstrap import build_app
from sync.cli.options import check_period, console, err_console
from sync.cli.output import EXIT_UNUSABLE, fail
from sync.cli.run import print_quarantine, print_summary
from sync.logs import configure_logging
from sync.notify.build import build_notifier
from sync.operations.contacts import import_csv
from sync.operations.deadline import today_in_jakarta
from sync.pipeline.periods import fetch_listing
from sync.settings import Settings, load_settings


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
    smtp_port: Annotated[
        int, typer.Option(help="the mail sink's SMTP port (school messages); 0: no mail sink")
    ] = 8725,
    mail_dir: Annotated[
        Path, typer.Option(help="where the mail sink keeps each message as a .eml file")
    ] = Path("sandbox-mail"),
) -> None:
    """Serve both sandbox APIs on loopback with seeded synthetic data, until Ctrl-C; and a
    mail sink (SMTP) that keeps the school messages as .eml files.

    Faults of the target are switched by the options (all off by default), and at run time
    with `PUT /_sandbox/faults` on the target. The schools' contacts are served as CSV at
    /_sandbox/contacts.csv on the PMM sandbox.
    """

    periods = [check_period(p) for p in period or []]
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
    try:
        sink = running_mail_sink(mail_dir, host=host, port=smtp_port) if smtp_port else None
        with sink if sink is not None else contextlib.nullcontext() as mail:
            if isinstance(mail, MailSink):
                err_console.print(
                    f"mail sink: {mail.address}, each message a .eml file in {mail_dir}/; the "
                    f"schools' contacts: http://{host}:{pmm_port}/_sandbox/contacts.csv",
                    highlight=False,
                )
            _serve(world, host, pmm_port, ekinerja_port, faults, token_ttl_s, schema_version)
    except OSError as exc:
        if isinstance(exc, PortUnavailable):
            raise
        fail(
            f"the mail sink cannot listen on {host}:{smtp_port}: {exc.strerror or exc}; choose "
            "another port with --smtp-port (0: none)",
            EXIT_UNUSABLE,
            problem="port",
        )


def _serve(
    world: Any,
    host: str,
    pmm_port: int,
    ekinerja_port: int,
    faults: Faults,
    token_ttl_s: int,
    schema_version: int,
) -> None:
    try:
        serve_forever(
            world,
            host=host,
            pmm_port=pmm_port,
            ekinerja_port=ekinerja_port,
            faults=faults,
            token_ttl_s=token_ttl_s,
            schema_version=schema_version,
        )
    except PortUnavailable as exc:
        fail(
            f"{exc.strerror}: stop what listens there (e.g. another `ekinerja-sync sandbox`), "
            "or choose other ports with --pmm-port and --ekinerja-port",
            EXIT_UNUSABLE,
            problem="port",
        )


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
    mail_dir: Annotated[
        Path, typer.Option(help="where the school messages are kept, as .eml files")
    ] = Path("ekinerja-sync-demo-mail"),
) -> None:
    """Sandbox up, the running period synced on SQLite, the summary printed, each school told
    its action list (the messages kept as .eml files), sandbox down."""

    if not ctx.obj.verbose:
        configure_logging(json=ctx.obj.log_json, level="ERROR")  # the tables tell the story

    if period is not None:
        period = check_period(period)
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
            listing = fetch_listing(application.source, application.store)
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
            summary = application.engine.run(period, listing=listing)
            print_summary(summary)
            print_quarantine(application.store.reports.quarantined(period))
            again = application.engine.run(period, listing=listing)
            told = _tell_schools(world, settings, application.store, period, mail_dir)
        stats = box.target.stats()
    console.print(
        f"e-Kinerja sandbox holds {stats['skp_created']} SKP created, "
        f"{stats['skp_updated']} updated, {stats['penilaian_created']} penilaian. "
        f"A second run sent {again.requests_sent} requests."
    )
    console.print(
        f"School messages: {told} schools with something to fix were told by e-mail; the "
        f"sandbox's mail sink kept each message as a .eml file in {mail_dir}/ (open one with "
        "any mail program).",
        highlight=False,
    )
    console.print(
        f"sandbox down. The state is kept in {state_url}; to see it per school, and who was "
        f"told what:\n"
        f"  EKINERJA_SYNC_STATE__URL={state_url} .venv/bin/ekinerja-sync status --period {period}\n"
        f"  EKINERJA_SYNC_STATE__URL={state_url} .venv/bin/ekinerja-sync schools messages "
        f"--period {period}",
        highlight=False,
    )


def _tell_schools(
    world: Any, settings: Settings, store: StateStore, period: str, mail_dir: Path
) -> int:
    """The sandbox's contacts imported, each school's action list sent to a mail sink that
    keeps the messages in ``mail_dir``; how many schools were told."""
    for old in mail_dir.glob("*.eml"):
        old.unlink()
    import_csv(store, contacts_csv(world), actor="cli")
    with running_mail_sink(mail_dir) as sink:
        config = settings.model_copy(
            update={
                "notify": settings.notify.model_copy(
                    update={"smtp": settings.notify.smtp.model_copy(update={"port": sink.port})}
                )
            }
        )
        with build_notifier(config, store, actor="cli") as notifier:
            notifier.run(period, today_in_jakarta())
        return len(sink.received)


def _ids(world: Any, period: str) -> set[str]:
    return {str(r["id"]) for r in world.records(period)}
