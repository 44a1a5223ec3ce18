"""``ekinerja-sync mappings``: the mapping versions, and what switching to one would change."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mappings.choice import MappingChoiceError
from mappings.model import Period, PeriodKind
from mappings.versions import DEFAULT_VERSIONS, MAPPING_VERSIONS
from state.models import DeliveryKind
from sync.bootstrap import build_store, mapping_choice
from sync.cli.options import check_period, console
from sync.cli.output import fail
from sync.operations.known_periods import require_known
from sync.operations.mapping_diff import (
    DiffStatus,
    FieldChange,
    MappingDiff,
    RecordDiff,
    diff_period,
)
from sync.pipeline.periods import period_mapping

__all__ = ["mappings_app"]

mappings_app = typer.Typer(
    help="Mapping versions: which exist, which is active, what a switch would change.",
    no_args_is_help=True,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


JsonFlag = Annotated[bool, typer.Option("--json", help="print as JSON")]
_KIND = {DeliveryKind.SKP: "SKP", DeliveryKind.ASSESSMENT: "penilaian"}
_VALUE_WIDTH = 160


@mappings_app.command("list")
def mappings_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The mapping versions this release knows, the period kinds each maps, and which one
    [sync] mapping_versions makes active for each kind."""

    settings = ctx.obj.settings().sync
    rows: list[dict[str, Any]] = [
        {
            "name": m.name,
            "description": m.description,
            "period_kinds": [k.value for k in PeriodKind if m.maps(k)],
            "active_for": [k.value for k in PeriodKind if settings.mapping_for(k) == m.name],
            "default_for": [k.value for k, name in DEFAULT_VERSIONS.items() if name == m.name],
        }
        for m in MAPPING_VERSIONS.values()
    ]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Mapping versions", title_justify="left")
    for column in ("active for", "version", "maps", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        marks = [
            k + (" (the default)" if k in row["default_for"] else "") for k in row["active_for"]
        ]
        table.add_row(
            ", ".join(marks),
            row["name"],
            ", ".join(row["period_kinds"]),
            escape(row["description"]),
        )
    console.print(table)
    console.print(
        "Pick one per period kind: mapping_versions = { semester = ..., tahunan = ... } "
        "under [sync]",
        highlight=False,
        markup=False,
    )
    console.print(
        "Before switching: ekinerja-sync mappings diff --period P --to VERSION", highlight=False
    )


def _short(value: Any) -> str:
    if value is None:
        return "null"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _elide_common_start(before: str, after: str) -> tuple[str, str]:
    """Two long texts that start alike, from a little before where they part."""
    same = 0
    for a, b in zip(before, after, strict=False):
        if a != b:
            break
        same += 1
    if same < 30:
        return before, after
    cut = before.rfind(" ", 0, same - 12) + 1
    return "…" + before[cut:], "…" + after[cut:]


def _change_text(change: FieldChange) -> tuple[str, str]:
    if change.change == "added":
        return f"{change.path} (added)", _short(change.after)
    if change.change == "removed":
        return f"{change.path} (removed)", _short(change.before)
    before, after = change.before, change.after
    if isinstance(before, str) and isinstance(after, str):
        before, after = _elide_common_start(before, after)
    return change.path, f"{_short(before)}\n→ {_short(after)}"


_STATUS_LABEL = {
    DiffStatus.CHANGED: "would be updated",
    DiffStatus.LOCKED: "locked: not sent",
    DiffStatus.WAITS_FOR_REPLAY: "failed: waits for a replay",
    DiffStatus.NOT_MAPPED: "not compared",
}


def _print_diff(diff: MappingDiff, active: str, setting: str) -> None:

    counts = diff.counts()
    # What a switch sends first, then what it cannot send, then what it cannot compare.
    shown: list[RecordDiff] = [
        r
        for status in (
            DiffStatus.CHANGED,
            DiffStatus.LOCKED,
            DiffStatus.WAITS_FOR_REPLAY,
            DiffStatus.NOT_MAPPED,
        )
        for r in diff.records
        if r.status is status
    ]
    title = (
        f"Mapping {active} -> {diff.version}, period {diff.period}: against what was last "
        "delivered (nothing sent, nothing written)"
    )
    if shown:
        table = Table(title=title, title_justify="left")
        for column in ("NIP", "NPSN", "kind", "outcome", "field", "delivered -> would send"):
            table.add_column(column, overflow="fold")
        for r in shown:
            label = _STATUS_LABEL.get(r.status, r.status.value)
            who = r.nip if r.name is None else f"{r.nip}\n{r.name}"
            who = escape(who)
            if not r.changes:
                table.add_row(who, r.npsn, _KIND[r.kind], label, "", escape(r.note or ""))
            for i, change in enumerate(r.changes):
                field, values = (escape(text) for text in _change_text(change))
                if i == 0:
                    table.add_row(who, r.npsn, _KIND[r.kind], label, field, values)
                else:
                    table.add_row("", "", "", "", field, values)
            table.add_section()
        console.print(table)
    else:
        console.print(title, highlight=False)
    summary = Table(title="In numbers", title_justify="left")
    summary.add_column("outcome of a switch")
    summary.add_column("SKP", justify="right")
    summary.add_column("penilaian", justify="right")
    for status, label in (
        (DiffStatus.CHANGED, "changed: sent as an update on the next run"),
        (DiffStatus.LOCKED, "changed, but e-Kinerja has locked it: reported, not sent"),
        (DiffStatus.UNCHANGED, "unchanged"),
        (DiffStatus.NOT_DELIVERED, "not delivered yet: goes out as new"),
        (
            DiffStatus.WAITS_FOR_REPLAY,
            "failed: waits for a replay (then goes with the version active then)",
        ),
        (DiffStatus.NOT_MAPPED, "not compared (cancelled, quarantined, not ready)"),
    ):
        summary.add_row(
            label,
            str(counts[(DeliveryKind.SKP.value, status.value)]),
            str(counts[(DeliveryKind.ASSESSMENT.value, status.value)]),
        )
    console.print(summary)
    if diff.version != active:
        console.print(
            f'To switch: set {setting} = "{diff.version}" in the config, then '
            f"ekinerja-sync run --period {diff.period}",
            highlight=False,
            markup=False,
        )


@mappings_app.command("diff")
def mappings_diff(
    ctx: typer.Context,
    period: Annotated[
        str, typer.Option("--period", "-p", help="a year (2026) or a semester (2024-2)")
    ],
    to: Annotated[str, typer.Option("--to", help="the mapping version to compare with")],
    npsn: Annotated[
        list[str] | None, typer.Option("--npsn", help="only this school (repeatable)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Per record, which payload fields would change if it were mapped with --to, against
    what was last delivered. Reads the state store only: nothing is sent, nothing is written."""

    if to not in MAPPING_VERSIONS:
        raise typer.BadParameter(
            f"unknown mapping version {to!r}; known: {', '.join(MAPPING_VERSIONS)} "
            "(see `ekinerja-sync mappings list`)",
            param_hint="--to",
        )
    kind = Period.parse(check_period(period)).kind
    if not MAPPING_VERSIONS[to].maps(kind):
        raise typer.BadParameter(
            f"mapping version {to} maps {MAPPING_VERSIONS[to].kinds_label} periods, and "
            f"{period} is {kind.value} (see `ekinerja-sync mappings list`)",
            param_hint="--to",
        )
    settings = ctx.obj.settings()
    store = build_store(settings, create=False)
    require_known(store, period)
    diff = diff_period(store, period, MAPPING_VERSIONS[to], list(npsn or []))
    # The period's own version: the config's, or the one it was first planned with.
    try:
        active = period_mapping(
            store, mapping_choice(settings), Period.parse(period), record=False, now=_now()
        ).name
    except MappingChoiceError as exc:
        fail(str(exc), 2, problem="mapping")
    if as_json:
        console.print_json(json.dumps({"active": active, **diff.as_dict()}, ensure_ascii=False))
        return
    _print_diff(diff, active, settings.sync.mapping_setting(kind))
