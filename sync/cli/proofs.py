"""``ledger prove``, ``ledger check-proof`` and ``ledger check-seal``: one teacher's proof
file under a period's seal, its check, and the check of a seal (its signature; that it
extends an earlier seal) (issue 26; the files' formats are ``state.proof``'s and
``state.seal``'s).

``prove`` needs the period's seal (``periods seal``) and reads the store; the checks read
nothing but their files: a teacher, an auditor or the Inspektorat run it anywhere, with
the seal file the dinas kept and the public key it published. ``docs/auditors/
verify_proof.py`` does the same with Python's standard library alone (not the signature).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from state.lifecycle import Lifecycle
from state.proof import ProofError, build_proof, check_proof, proof_to_json
from state.seal import (
    Seal,
    SealError,
    check_extends,
    from_dict,
    from_json,
    load_public_key,
    signature_problem,
)
from sync.bootstrap import build_store
from sync.cli.options import check_period, console, err_console
from sync.cli.output import EXIT_FAILED, EXIT_UNUSABLE, fail
from sync.operations.known_periods import require_known
from sync.operations.ledger_export import wib_time

__all__ = ["check_proof_command", "check_seal_command", "prove"]

_NIP = re.compile(r"[0-9]{18}")


def prove(
    ctx: typer.Context,
    period: Annotated[
        str, typer.Option("--period", "-p", metavar="PERIOD", help="a sealed period")
    ],
    nip: Annotated[str, typer.Option("--nip", help="the teacher (18-digit NIP)")],
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="where to write it (default: print it)"),
    ] = None,
) -> None:
    """Write one teacher's proof: each of their ledger entries of a sealed period, its
    inclusion path to the seal's root, and the seal. Anyone checks it without the database:
    `ledger check-proof FILE --seal SEAL`, or docs/auditors/verify_proof.py."""
    period = check_period(period)
    if not _NIP.fullmatch(nip):
        raise typer.BadParameter(f"{nip[:40]!r} is not an 18-digit NIP", param_hint="--nip")
    store = build_store(ctx.obj.settings(), create=False)
    require_known(store, period)
    lifecycle = Lifecycle(store.engine)
    seal, leaves, rows = lifecycle.proof_material(period, nip)
    if seal is None:
        fail(
            f"{period} has no seal yet: close it (`ekinerja-sync periods close {period} --why "
            f"TEXT`) and seal it (`ekinerja-sync periods seal {period}`) first",
            EXIT_FAILED,
        )
    try:
        proof = build_proof(seal, leaves, rows, nip=nip)
    except ProofError as exc:
        fail(str(exc), EXIT_FAILED)
    text = proof_to_json(proof)
    if out is None:
        typer.echo(text, nl=False)
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}", EXIT_UNUSABLE)
    status = lifecycle.status(period)
    err_console.print(
        f"proof of {len(proof['entries'])} ledger entries of NIP {nip} in {period}, under "
        f"its seal of {seal.sealed_at} ({seal.count} entries, root {seal.root[:16]}…)"
        + (f", written to {out}" if out is not None else "")
        + (
            f"; {period} is {status.state.value} now: entries after that seal are in no seal yet"
            if status.state.value != "sealed"
            else ""
        ),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read the {what} {path}: {exc.strerror}", EXIT_UNUSABLE)


def _print_entries(proof: dict[str, Any]) -> None:
    table = Table(title="Entries proven (times in WIB)", title_justify="left")
    for column in ("#", "time (WIB)", "action", "outcome", "HTTP", "kind", "by"):
        table.add_column(column, overflow="fold")
    for entry in proof["entries"]:
        fields = entry["fields"]
        try:
            at = wib_time(dt.datetime.fromisoformat(str(fields["at"]).replace("Z", "+00:00")))
        except ValueError:
            at = str(fields["at"])
        table.add_row(
            str(entry["seq"]),
            at,
            str(fields["action"]),
            str(fields["outcome"]),
            str(fields["http_status"] or ""),
            str(fields["kind"] or ""),
            str(fields["actor"]),
        )
    console.print(table)


def check_proof_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="a proof from `ledger prove`")],
    seal: Annotated[
        Path | None,
        typer.Option("--seal", metavar="SEAL", help="the seal file kept outside the database"),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", metavar="KEY", help="the dinas's public key (PEM, or base64)"),
    ] = None,
) -> None:
    """Check a proof file: every entry's fields give its hash, and its path leads to the
    seal's root; with --seal, against the seal file kept outside the database; with
    --public-key, the seal's signature too. Reads no database. Exit 1 when anything fails."""
    try:
        proof = json.loads(_read(file, "proof file"))
    except ValueError as exc:
        fail(f"{file} is not a proof file: it is not JSON ({exc})", EXIT_FAILED)
    kept: Seal | None = None
    key = None
    try:
        if seal is not None:
            kept = from_json(_read(seal, "seal file"))
        if public_key is not None:
            key = load_public_key(_read(public_key, "public key file"))
    except SealError as exc:
        fail(str(exc), EXIT_UNUSABLE)
    problems = check_proof(proof, kept, key)
    if problems:
        for problem in problems:
            err_console.print(f"[red]FAILED:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    used = kept or from_dict(proof["seal"])
    console.print(
        f"OK: the {len(proof['entries'])} entries of NIP {proof.get('nip')} are in the seal of "
        f"{used.period} ({used.count} entries, root {used.root[:16]}…, sealed {used.sealed_at})",
        highlight=False,
        markup=False,
    )
    console.print(
        f"checked against the seal file {seal}"
        if seal is not None
        else "checked against the seal inside the proof: give --seal with the seal file kept "
        "outside the database to know it is that seal",
        highlight=False,
        markup=False,
    )
    if key is not None:
        console.print(f"signature good: key {used.key_id}", highlight=False)
    elif used.signature is not None:
        console.print(
            f"signed with key {used.key_id}; give --public-key to check the signature",
            highlight=False,
        )
    _print_entries(proof)


def check_seal_command(
    file: Annotated[Path, typer.Argument(metavar="SEAL", help="a seal file (`periods seal`)")],
    extends: Annotated[
        Path | None,
        typer.Option(
            "--extends", metavar="OLD", help="an earlier seal of the period, kept outside"
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", metavar="KEY", help="the dinas's public key (PEM, or base64)"),
    ] = None,
) -> None:
    """Check a seal file: with --public-key its signature (and the earlier seal's); with
    --extends that it extends the earlier seal: the period's entries sealed then are the
    first ones of this seal, unchanged (its consistency proof). Reads no database. Exit 1
    when anything fails."""
    key = None
    try:
        seal = from_json(_read(file, "seal file"))
        old = from_json(_read(extends, "seal file")) if extends is not None else None
        if public_key is not None:
            key = load_public_key(_read(public_key, "public key file"))
    except SealError as exc:
        fail(str(exc), EXIT_FAILED)
    problems = []
    if key is not None:
        for name, which in ((file, seal), (extends, old)):
            if which is not None and (problem := signature_problem(which, key)) is not None:
                problems.append(f"{name}: {problem}")
    if old is not None:
        problems += check_extends(old, seal)
    if problems:
        for problem in problems:
            err_console.print(f"[red]FAILED:[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    lines = [
        f"OK: seal of {seal.period}: {seal.count} entries (#{seal.first_seq} to "
        f"#{seal.last_seq}), root {seal.root}, sealed {seal.sealed_at}"
    ]
    if key is not None:
        lines.append(f"signature good: key {seal.key_id}")
    if old is not None:
        lines.append(
            f"extends {extends} ({old.count} entries, sealed {old.sealed_at}): those entries "
            "are the first of this seal, unchanged"
        )
    elif seal.previous is not None:
        lines.append(
            f"it says it extends a seal of {seal.previous.count} entries (root "
            f"{seal.previous.root[:16]}…): give that seal file with --extends to check it"
        )
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
