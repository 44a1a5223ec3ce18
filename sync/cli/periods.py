"""``ekinerja-sync periods`` and ``ekinerja-sync actions``: a period's lifecycle (open,
closed, sealed) and the changes a closed period takes only from two people (issue 26).

- ``periods list``: each period's state, deadline and counts;
- ``periods close P --why TEXT [--force]``: after the period's ``batas_penilaian``, or before
  it with ``--force``; nothing is sent to a closed period automatically;
- ``periods reopen P --why TEXT``: a request a second operator approves;
- ``periods seal P [--key FILE] [--out FILE]``: the seal of a closed period, written into the
  ledger, exported as a file and printed; it extends the period's earlier seal, if any;
- ``periods public-key --key FILE``: the signing key's public half, to publish;
- ``actions request replay|discard|reset|mapping|reopen ...``, ``actions approve ID``,
  ``actions list``: the changes of closed periods, asked by one operator, approved by another.

Who acts is ``--actor``, else the user running the command (as ``replay`` and ``discard``
name them); the ledger writes ``operator:<name>``.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from state.change_requests import ChangeAction, ChangeRequest, ChangeRequests, RequestState
from state.lifecycle import Lifecycle, LifecycleRefused
from state.seal import Seal, SealError, key_id, load_private_key, public_key_base64, to_json
from state.store import StateStore
from sync.bootstrap import build_app, build_store
from sync.cli.options import NpsnOption, check_period, console, err_console
from sync.cli.output import EXIT_FAILED, EXIT_UNUSABLE, fail
from sync.operations.actions import ActionRefused
from sync.operations.changes import Changes, Outcome
from sync.operations.known_periods import require_known
from sync.operations.period_states import PeriodRow, close_period, period_rows

__all__ = ["actions_app", "open_only", "periods_app"]

periods_app = typer.Typer(
    help="A period's lifecycle: open, closed (changes need two operators), sealed (provable).",
    no_args_is_help=True,
)
actions_app = typer.Typer(
    help="Changes to a closed period: one operator requests, a second one approves.",
    no_args_is_help=True,
)
request_app = typer.Typer(
    help="Ask for a change to a closed period; another operator approves it.",
    no_args_is_help=True,
)
actions_app.add_typer(request_app, name="request")

PeriodArgument = Annotated[
    str, typer.Argument(metavar="PERIOD", help="a year (2026) or a semester (2024-2)")
]
PeriodOption = Annotated[
    str, typer.Option("--period", "-p", metavar="PERIOD", help="a year (2026) or a semester")
]
WhyOption = Annotated[str, typer.Option("--why", help="why (written to the ledger)")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="who does it (for the ledger); default: you")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="print as JSON")]
KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="FILE",
        help="an Ed25519 private key (PEM) to sign with: "
        "openssl genpkey -algorithm ed25519 -out seal-key.pem",
    ),
]


def _who(actor: str | None) -> str:
    return (actor or getpass.getuser()).removeprefix("operator:")


def _store(ctx: typer.Context) -> StateStore:
    return build_store(ctx.obj.settings(), create=False)


def _refused(exc: ActionRefused | LifecycleRefused | SealError) -> NoReturn:
    fail(exc.message if not isinstance(exc, SealError) else str(exc), EXIT_FAILED)


# -- periods ---------------------------------------------------------------------------------


def _row_json(row: PeriodRow) -> dict[str, Any]:
    status, seal = row.status, row.status.seal
    return {
        "period": row.period,
        "kind": row.kind,
        "state": status.state.value,
        "changed_at": status.changed_at.isoformat() if status.changed_at else None,
        "changed_by": status.changed_by,
        "why": status.why,
        "deadline": row.deadline.isoformat() if row.deadline else None,
        "delivered": {"skp": row.delivered("skp"), "assessment": row.delivered("assessment")},
        "deliverables": {"skp": row.total("skp"), "assessment": row.total("assessment")},
        "unsent": row.unsent,
        "failed": row.failed,
        "ledger_entries": row.entries,
        "seal": None
        if seal is None
        else {"count": seal.count, "root": seal.root, "sealed_at": seal.sealed_at},
        "pending_requests": row.pending_requests,
    }


@periods_app.command("list")
def periods_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Each period: its state (open, closed, sealed), its deadline (batas_penilaian), what
    was delivered, what is still unsent or failed, its ledger entries, its last seal and the
    change requests waiting for a second operator."""
    store = _store(ctx)
    rows = period_rows(store, Lifecycle(store.engine))
    if as_json:
        console.print_json(json.dumps([_row_json(r) for r in rows]))
        return
    if not rows:
        console.print("No period yet: `ekinerja-sync run` reads them from PMM.")
        return
    table = Table(title="Periods", title_justify="left")
    for column in (
        "period",
        "state",
        "deadline",
        "SKP sent",
        "penilaian sent",
        "unsent",
        "failed",
        "ledger",
        "last seal",
        "requests",
    ):
        table.add_column(column, overflow="fold")
    for r in rows:
        seal = r.status.seal
        state = r.status.state.value
        if r.status.changed_by:
            state += f"\nby {r.status.changed_by}, {r.status.changed_at:%Y-%m-%d}"
        table.add_row(
            r.period + (f" ({r.kind})" if r.kind else ""),
            escape(state),
            r.deadline.isoformat() if r.deadline else "not listed",
            f"{r.delivered('skp')}/{r.total('skp')}",
            f"{r.delivered('assessment')}/{r.total('assessment')}",
            str(r.unsent),
            str(r.failed),
            str(r.entries),
            "" if seal is None else f"{seal.count} entries, {seal.sealed_at[:10]}",
            str(r.pending_requests or ""),
        )
    console.print(table)


@periods_app.command("close")
def periods_close(
    ctx: typer.Context,
    period: PeriodArgument,
    why: WhyOption,
    force: Annotated[
        bool, typer.Option("--force", help="close before the batas_penilaian (say why)")
    ] = False,
    actor: ActorOption = None,
) -> None:
    """Close a period after its batas_penilaian (before it only with --force): nothing is
    sent to it automatically any more, and a replay, discard, reset or mapping switch there
    needs a second operator (`actions request`, then `actions approve`)."""
    period = check_period(period)
    store = _store(ctx)
    try:
        status = close_period(
            store, Lifecycle(store.engine), period, by=_who(actor), why=why, force=force
        )
    except (ActionRefused, LifecycleRefused) as exc:
        _refused(exc)
    console.print(
        f"{period} is {status.since()}\nNothing goes to it automatically now; a change there "
        "needs two operators (`ekinerja-sync actions request ...`). Seal it with "
        f"`ekinerja-sync periods seal {period}`.",
        highlight=False,
        markup=False,
    )


def _print_request(request: ChangeRequest) -> None:
    console.print(
        f"request #{request.id} by {request.requested_by}: {request.describe()} "
        f"({request.why})\nAnother operator approves it: "
        f"ekinerja-sync actions approve {request.id}",
        highlight=False,
        markup=False,
    )


def _ask(
    ctx: typer.Context,
    action: ChangeAction,
    *,
    actor: str | None,
    why: str,
    period: str | None = None,
    targets: list[str] | None = None,
) -> None:
    settings = ctx.obj.settings()
    store = build_store(settings, create=False)
    if period is not None:
        require_known(store, check_period(period))
    try:
        request = Changes(settings, store, build=build_app).request(
            action, by=_who(actor), why=why, period=period, targets=targets or []
        )
    except (ActionRefused, LifecycleRefused) as exc:
        _refused(exc)
    _print_request(request)


@periods_app.command("reopen")
def periods_reopen(
    ctx: typer.Context, period: PeriodArgument, why: WhyOption, actor: ActorOption = None
) -> None:
    """Ask to open a closed or sealed period again; a second operator approves it
    (`actions approve ID`). Its seal is kept: the next seal extends it."""
    _ask(ctx, ChangeAction.REOPEN, actor=actor, why=why, period=period)


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read the key file {path}: {exc.strerror}", EXIT_UNUSABLE, problem="key")


def _describe_seal(seal: Seal) -> str:
    what = (
        f"{seal.count} ledger entries of {seal.period}, #{seal.first_seq} to #{seal.last_seq}"
        if seal.count
        else f"no ledger entry of {seal.period}"
    )
    lines = [f"sealed {what}", f"root {seal.root}, at {seal.sealed_at}"]
    if seal.key_id:
        lines.append(f"signed with Ed25519 key {seal.key_id}")
    if seal.previous is not None:
        lines.append(
            f"extends the earlier seal of {seal.previous.count} entries (root "
            f"{seal.previous.root[:16]}…), with a consistency proof of "
            f"{len(seal.previous.consistency)} hashes"
        )
    return "\n".join(lines)


@periods_app.command("seal")
def periods_seal(
    ctx: typer.Context,
    period: PeriodArgument,
    key: KeyOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="FILE",
            help="where to write the seal file (default: seal-PERIOD-TIME.json here)",
        ),
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Seal a closed period: the RFC 6962 Merkle root over its ledger entries, written into
    the ledger, exported as a small file (keep it with the berita acara, outside the
    database) and printed. After a reopen, the new seal extends the earlier one."""
    period = check_period(period)
    if out is not None and out.exists():
        fail(f"{out} exists: a seal file is never overwritten; name another --out", EXIT_UNUSABLE)
    pem = _read_key(key) if key is not None else None
    if pem is not None:
        try:
            load_private_key(pem)
        except SealError as exc:
            _refused(exc)
    store = _store(ctx)
    require_known(store, period)
    try:
        seal = Lifecycle(store.engine).seal(period, by=_who(actor), private_key_pem=pem)
    except (LifecycleRefused, SealError) as exc:
        _refused(exc)
    text = to_json(seal) + "\n"
    stamp = seal.sealed_at.replace("-", "").replace(":", "")[:15]
    target = out or Path(f"seal-{period}-{stamp}Z.json")
    try:
        with target.open("x", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        err_console.print(
            f"the seal is in the ledger, but {target} could not be written ({exc.strerror}); "
            "save the seal printed below",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    else:
        err_console.print(
            f"{_describe_seal(seal)}\nwritten to {target}: keep it outside the database",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    typer.echo(text, nl=False)


@periods_app.command("public-key")
def periods_public_key(
    key: Annotated[
        Path, typer.Option("--key", metavar="FILE", help="the Ed25519 private key (PEM)")
    ],
) -> None:
    """Print the signing key's public half (base64 of its 32 bytes), to publish beside the
    seals; `ledger check-proof --public-key` takes it (as a file)."""
    try:
        private = load_private_key(_read_key(key))
    except SealError as exc:
        _refused(exc)
    typer.echo(public_key_base64(private))
    err_console.print(f"key id {key_id(private)} (the seals signed with it name it)")


# -- actions -----------------------------------------------------------------------------------

IdsArgument = Annotated[list[str], typer.Argument(help="failure IDs from `failures list`")]


@request_app.command("replay")
def request_replay(
    ctx: typer.Context, ids: IdsArgument, why: WhyOption, actor: ActorOption = None
) -> None:
    """Ask to replay failed records of a closed period (IDs from `failures list`)."""
    _ask(ctx, ChangeAction.REPLAY, actor=actor, why=why, targets=ids)


@request_app.command("discard")
def request_discard(
    ctx: typer.Context,
    failure: Annotated[str, typer.Argument(help="failure ID from `failures list`")],
    why: WhyOption,
    actor: ActorOption = None,
) -> None:
    """Ask to discard a failed record of a closed period (not to be sent)."""
    _ask(ctx, ChangeAction.DISCARD, actor=actor, why=why, targets=[failure])


@request_app.command("reset")
def request_reset(
    ctx: typer.Context,
    period: PeriodOption,
    why: WhyOption,
    npsn: NpsnOption = None,
    actor: ActorOption = None,
) -> None:
    """Ask to forget where reading PMM stopped for a closed period (some schools, or all)."""
    _ask(ctx, ChangeAction.RESET, actor=actor, why=why, period=period, targets=npsn)


@request_app.command("mapping")
def request_mapping(
    ctx: typer.Context,
    period: PeriodOption,
    to: Annotated[str, typer.Option("--to", help="the mapping version (`mappings list`)")],
    why: WhyOption,
    actor: ActorOption = None,
) -> None:
    """Ask to sync a closed period once with another mapping version (check first with
    `mappings diff --period P --to VERSION`)."""
    _ask(ctx, ChangeAction.MAPPING, actor=actor, why=why, period=period, targets=[to])


@request_app.command("reopen")
def request_reopen(
    ctx: typer.Context, period: PeriodOption, why: WhyOption, actor: ActorOption = None
) -> None:
    """Ask to open a closed or sealed period again (the same as `periods reopen`)."""
    _ask(ctx, ChangeAction.REOPEN, actor=actor, why=why, period=period)


def _print_outcome(outcome: Outcome) -> None:
    request = outcome.request
    console.print(
        f"request #{request.id} of {request.requested_by}, approved by {request.approved_by}: "
        f"{request.describe()}\n{request.state}: {outcome.result}",
        highlight=False,
        markup=False,
    )


@actions_app.command("approve")
def actions_approve(
    ctx: typer.Context,
    request_id: Annotated[int, typer.Argument(metavar="ID", help="from `actions list`")],
    actor: ActorOption = None,
) -> None:
    """Approve another operator's request and carry it out; both names go into the ledger.
    Nobody approves their own request."""
    settings = ctx.obj.settings()
    store = build_store(settings, create=False)
    try:
        outcome = Changes(settings, store, build=build_app).approve(request_id, by=_who(actor))
    except LifecycleRefused as exc:
        _refused(exc)
    _print_outcome(outcome)
    if not outcome.ok:
        raise typer.Exit(EXIT_FAILED)


def _request_json(r: ChangeRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "period": r.period,
        "action": r.action,
        "target": r.targets,
        "why": r.why,
        "requested_by": r.requested_by,
        "requested_at": r.requested_at.isoformat(),
        "approved_by": r.approved_by,
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "state": r.state,
        "result": r.result,
    }


@actions_app.command("list")
def actions_list(
    ctx: typer.Context,
    period: Annotated[
        str | None, typer.Option("--period", "-p", metavar="PERIOD", help="one period")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="approved, done and failed too")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change requests waiting for a second operator (--all: every one, and how it ended)."""
    store = _store(ctx)
    if period is not None:
        require_known(store, check_period(period))
    states = () if all_ else (RequestState.PENDING,)
    rows = ChangeRequests(Lifecycle(store.engine)).requests(period=period, states=states)
    if as_json:
        console.print_json(json.dumps([_request_json(r) for r in rows]))
        return
    if not rows:
        console.print("No change request." if all_ else "No request waits for approval.")
        return
    table = Table(title="Change requests", title_justify="left")
    for column in ("ID", "period", "action", "names", "why", "asked by", "state", "approved by"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r.id),
            r.period,
            r.action,
            escape(" ".join(r.targets)),
            escape(r.why),
            escape(r.requested_by),
            r.state + (f": {escape(r.result)}" if r.result else ""),
            escape(r.approved_by or ""),
        )
    console.print(table)
    if not all_:
        console.print(
            "Approve one (another operator than who asked): ekinerja-sync actions approve ID"
        )


def open_only(store: StateStore, codes: Sequence[str], *, dry_run: bool = False) -> list[str]:
    """``codes`` without the closed and sealed periods, each one left out said on stderr:
    nothing goes to a closed period automatically (``run``; the daemon's is
    ``Daemon.job_periods``). A dry run, which sends nothing, keeps them."""
    closed = Lifecycle(store.engine).not_sending(codes)
    for status in closed.values():
        err_console.print(
            f"{status.period} is {status.since()}: "
            + (
                "dry run only, nothing would be sent to it automatically"
                if dry_run
                else "not synced (nothing goes to a closed period automatically); a change "
                "there needs two operators: ekinerja-sync actions request ..."
            ),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    return list(codes) if dry_run else [code for code in codes if code not in closed]
