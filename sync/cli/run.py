"""``run`` and ``status``: sync periods, and see where a period stands."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connectors.errors import FatalError, RetriableError
from mappings.choice import MappingChoiceError
from mappings.model import ListedPeriod
from mappings.periods import PeriodListingError
from state.models import SourceRecord
from sync.bootstrap import build_app, build_store
from sync.cli.options import NpsnOption, PeriodOption, check_period, console, err_console, safe_url
from sync.cli.output import EXIT_UNREACHABLE, exit_code, fail, report_error, worst_exit_code
from sync.cli.periods import open_only
from sync.cli.progress import progress_bars
from sync.cli.schools import print_told, schools_told
from sync.operations.attention import discarded, needs_a_person
from sync.operations.deadline import DeadlineView, deadline_view, today_in_jakarta
from sync.operations.known_periods import require_known
from sync.operations.npsn import check_format, check_in_source, check_in_store
from sync.pipeline.engine import RunSummary
from sync.pipeline.periods import fetch_listing, stored_listing
from sync.service.calendar import resolve_periods
from sync.settings import Settings

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
    ("discarded", "discarded by an operator: not sent"),
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
    if summary.throttled:
        out.print(summary.throttle_line(), highlight=False)
    out.print(
        f"records read: {summary.pulled}, requests sent: {summary.requests_sent}, "
        f"run id: {summary.run_id}",
        highlight=False,
    )


def run(
    ctx: typer.Context,
    period: Annotated[
        list[str] | None,
        typer.Option(
            "--period",
            "-p",
            metavar="PERIOD",
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
    overlap: Annotated[
        bool | None,
        typer.Option(
            "--overlap/--no-overlap",
            help="deliver from a second process while the period is still being pulled "
            "(default: [sync] overlap)",
        ),
    ] = None,
) -> None:
    """Sync periods: pull, validate, map, plan, push, record."""

    periods = [check_period(p) for p in period or []]
    settings = ctx.obj.settings()
    if overlap is not None and overlap != settings.sync.overlap:
        settings = settings.model_copy(
            update={"sync": settings.sync.model_copy(update={"overlap": overlap})}
        )
    schools = list(npsn or settings.sync.schools)
    where = "--npsn" if npsn else "sync.schools"
    check_format(schools, where)
    summaries = []
    # Per period: (failed or locked, quarantined) that this run added, for the exit code.
    added: dict[str, tuple[int, int]] = {}
    with (
        build_app(settings, create_store=create_store) as application,
        progress_bars(err_console) as progress,
    ):
        store = application.store
        try:
            check_in_source(application.source, schools, where)
            # The source's periods asked once, for choosing the periods and for every run
            # (a dry run keeps nothing, not even the listing).
            listing = fetch_listing(application.source, None if dry_run else store)
            chosen = periods or _default_periods(settings, listing)
            for code in open_only(application.store, chosen, dry_run=dry_run):
                before = None if dry_run else needs_a_person(store, code, schools)
                summary = application.engine.run(
                    code, schools=schools, dry_run=dry_run, progress=progress, listing=listing
                )
                summaries.append(summary)
                if before is not None:
                    added[code] = needs_a_person(store, code, schools).added_since(before)
                    _count_discarded_apart(summary, discarded(store, code, schools))
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
        dicts = [s.as_dict() | {"added": _added(added.get(s.period))} for s in summaries]
        payload: Any = dicts[0] if len(dicts) == 1 else dicts
        console.print_json(json.dumps(payload))
    else:
        for summary in summaries:
            print_summary(summary)
        for problem in summaries[0].listing_problems if summaries else ():
            err_console.print(f"The source's period listing: {problem}", highlight=False)
    for code, (refused, quarantined) in added.items():
        if refused or quarantined:
            err_console.print(
                f"For a person: this run left {refused} new failed or locked record(s) and "
                f"{quarantined} newly quarantined one(s) in {code}: ekinerja-sync failures list "
                f"--period {code}; ekinerja-sync quarantine list --period {code}",
                highlight=False,
            )
    helper_codes: list[int] = []
    for done in summaries:
        if done.helper_error is not None:  # the delivery process's own error: said, counted
            helper_code, message, why = done.helper_error
            report_error(message, exit_code=helper_code, problem=why or "delivery_process")
            helper_codes.append(helper_code)
    unreachable = any(s.target_unreachable for s in summaries)
    if unreachable:
        report_error(
            f"e-Kinerja ({settings.target.base_url}) was unreachable; what was not sent stays "
            "pending and goes on the next run (or the daemon's retry)",
            exit_code=EXIT_UNREACHABLE,
            problem="target_unreachable",
        )
    # 3 unreachable, else 1 when the run left work for a person, else 4 when e-Kinerja's
    # 429/503 slowed it (or left records pending), else 0.
    raise typer.Exit(
        worst_exit_code(
            exit_code(
                unreachable=unreachable,
                needs_person=any(r or q for r, q in added.values()),
                throttled=any(s.throttled for s in summaries),
            ),
            *helper_codes,
        )
    )


def _added(counts: tuple[int, int] | None) -> dict[str, int]:
    """What the run left for a person (JSON): new refusals (failed or locked), new quarantine."""
    refused, quarantined = counts or (0, 0)
    return {"refused": refused, "quarantined": quarantined}


def _count_discarded_apart(summary: RunSummary, counts: dict[str, dict[str, int]]) -> None:
    """Deliverables an operator discarded on their own line, out of "cancelled in PMM"."""
    for kind in ("skp", "assessment"):
        n = sum(by_kind.get(kind, 0) for by_kind in counts.values())
        cancelled = summary.outcomes[(kind, "cancelled")]
        summary.outcomes[(kind, "cancelled")] = max(cancelled - n, 0)
        summary.outcomes[(kind, "discarded")] = n


def _default_periods(settings: Settings, listing: Sequence[ListedPeriod]) -> list[str]:
    """``[sync] periods``, else the periods the source lists as active today (WIB)."""
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
    ("discarded", "discarded"),
)


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

    period = check_period(period)
    try:
        today = dt.date.fromisoformat(as_of) if as_of else today_in_jakarta()
    except ValueError:
        raise typer.BadParameter(
            f"{as_of!r} is not a date YYYY-MM-DD", param_hint="--as-of"
        ) from None
    settings = ctx.obj.settings()
    store = build_store(settings, create=False)
    require_known(store, period)  # offline: the periods PMM listed, those with records
    schools = list(npsn or [])
    check_in_store(store, schools, period)  # offline: what the store has read from PMM
    counts = store.reports.status_counts(period, schools)
    failing = store.reports.failing(period, schools)
    quarantined = store.reports.quarantined(period, schools)
    noted = store.reports.noted(period, schools)  # sent, but odd: for the school to check
    # The deadline is the source's batas_penilaian, never worked out from the code: a period
    # PMM has not listed (records from before the listing was kept) has none to show.
    listed = next((p for p in stored_listing(store) if p.code == period), None)
    deadline = deadline_view(listed, counts, today) if listed is not None else None
    told = schools_told(store, period, today, schools)  # when each school was last told
    thrown = discarded(store, period, schools)
    # 1: something a person must act on is shown (the same for the table and for --json).
    code = exit_code(needs_person=bool(failing or quarantined or not counts))
    if as_json:
        payload = {
            "period": period,
            "schools": {
                school: _apart(c, thrown.get(school, {})) for school, c in sorted(counts.items())
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
            "deadline": deadline.as_dict() if deadline is not None else None,
            "schools_told": [t.as_dict() for t in told],
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
            "notes": [
                {"source_id": n.id, "nip": n.nip, "npsn": n.npsn, "note": n.note} for n in noted
            ],
        }
        console.print_json(json.dumps(payload))
        raise typer.Exit(code)
    if not counts:
        err_console.print(
            f"No records of {period} in the state store {safe_url(settings.state.url)}: "
            f"has `ekinerja-sync run --period {period}` run against it?",
            highlight=False,
        )
        raise typer.Exit(code)
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
            # Deliverables of both kinds; "cancelled" includes those cancelled after delivery
            # (in PMM), not those an operator discarded (their own column).
            row[key] = sum(
                n for (kind, status), n in c.items() if kind != "record" and status.startswith(key)
            )
        row["discarded"] = sum(thrown.get(school, {}).values())
        row["cancelled"] -= row["discarded"]
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
    print_notes(noted)
    print_told(told)
    if deadline is not None:
        print_deadline(deadline)
    else:
        console.print(
            f"Deadline (batas penilaian): not known; PMM has not listed {period} since the "
            "state store keeps its listing (`ekinerja-sync run` reads it)",
            highlight=False,
        )
    raise typer.Exit(code)


def _apart(counts: dict[tuple[str, str], int], thrown: dict[str, int]) -> dict[str, int]:
    """A school's "kind.status" counts, with what an operator discarded out of "cancelled"."""
    flat = {f"{k}.{s}": n for (k, s), n in sorted(counts.items())}
    for kind, n in sorted(thrown.items()):
        flat[f"{kind}.cancelled"] -= n
        flat[f"{kind}.discarded"] = n
        if not flat[f"{kind}.cancelled"]:
            del flat[f"{kind}.cancelled"]
    return flat


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


def print_notes(rows: list[SourceRecord], out: Console = console) -> None:
    """Records sent with a data note (a malformed NUPTK, a tmt_jabatan after the period)."""
    if not rows:
        return
    table = Table(
        title=f"Data notes on {len(rows)} records: sent as they are; the school checks them",
        title_justify="left",
    )
    for column in ("NIP", "NPSN", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(escape(r.nip), escape(r.npsn), escape(r.note or ""))
    out.print(table)


def print_quarantine(rows: list[SourceRecord], out: Console = console) -> None:
    if not rows:
        return
    table = Table(title="Quarantined: bad data in PMM, fix it there", title_justify="left")
    for column in ("NIP", "NPSN", "reason"):
        table.add_column(column)
    for q in rows:
        table.add_row(q.nip, q.npsn, q.reason or "")
    out.print(table)
