"""One teacher's proof file: their ledger entries of a sealed period, each with its RFC 6962
inclusion path to the seal's root, and the seal (issue 26). Pure: no database, no files.

The file (JSON, ``format`` ``ekinerja-sync-proof/1``)::

    {"format": "ekinerja-sync-proof/1", "nip": "...", "seal": {the seal file's object},
     "entries": [{"seq": 17, "hash": "<64 hex>", "leaf_index": 3, "path": ["<64 hex>", ...],
                  "fields": {every hashed field of the ledger entry, as hashed}}, ...]}

``fields`` are the entry's hashed fields exactly (``state.ledger.HASHED_FIELDS``: ``seq``,
``at``, ``actor``, ``action``, ``outcome``, ``period``, ``nip``, ``http_status``, the bodies,
..., ``prev_hash``), so a checker recomputes the entry's ledger hash from them, then its leaf
(``state.seal``), then, with ``path``, the root the seal records. Nothing else in the ledger is
revealed: the path holds hashes of other entries, never their content.

``check_proof`` checks a file (the CLI's ``ledger check-proof``); ``docs/auditors/
verify_proof.py`` checks the inclusion part with Python's standard library alone and reaches
the same verdict on it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from state.ledger import HASHED_FIELDS, entry_content, entry_hash
from state.merkle import leaf_hash, root_from_inclusion
from state.seal import Seal, SealError, from_dict, leaf_of, signature_problem, to_dict, tree_of

__all__ = ["PROOF_FORMAT", "ProofError", "build_proof", "check_proof", "proof_to_json"]

PROOF_FORMAT = "ekinerja-sync-proof/1"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_FIELDS = frozenset(HASHED_FIELDS)


class ProofError(ValueError):
    """A proof cannot be made from what was given; the message says why and what to do."""


def build_proof(
    seal: Seal,
    period_entries: Sequence[tuple[int, str]],
    entries: Iterable[Mapping[str, Any]],
    *,
    nip: str,
) -> dict[str, Any]:
    """The proof file's object for ``nip``'s ``entries`` under ``seal``.

    ``period_entries`` is ``(seq, hash)`` of every ledger entry of the seal's period up to
    ``seal.last_seq``, in ``seq`` order (the leaves); ``entries`` the teacher's own entries
    (full rows: every hashed field and ``hash``; ``LedgerEntry.model_dump()`` or a row
    mapping). Entries after the seal are left out: they are in no sealed tree yet.
    """
    sealed = [
        (seq, hash_)
        for seq, hash_ in period_entries
        if seal.last_seq is not None and seq <= seal.last_seq
    ]
    tree = tree_of([hash_ for _, hash_ in sealed])
    if tree.size != seal.count or tree.root.hex() != seal.root:
        raise ProofError(
            f"the ledger's entries of {seal.period} no longer give the seal's root "
            f"({tree.size} entries, root {tree.root.hex()[:16]}…; the seal has {seal.count}, "
            f"{seal.root[:16]}…): run `ekinerja-sync ledger verify`"
        )
    index_of = {seq: (index, hash_) for index, (seq, hash_) in enumerate(sealed)}
    out = []
    for row in entries:
        seq = row["seq"]
        if seq not in index_of:
            continue  # after the seal (or of another period): in no sealed tree
        index, sealed_hash = index_of[seq]
        if row.get("nip") != nip or row.get("period") != seal.period:
            raise ProofError(f"entry #{seq} is not one of NIP {nip} in {seal.period}")
        recomputed = entry_hash(row)
        if recomputed != row.get("hash") or recomputed != sealed_hash:
            raise ProofError(
                f"entry #{seq} does not give its recorded hash: the ledger was changed; run "
                f"`ekinerja-sync ledger verify`"
            )
        out.append(
            {
                "seq": seq,
                "hash": recomputed,
                "leaf_index": index,
                "path": [item.hex() for item in tree.inclusion_path(index)],
                "fields": entry_content(row),
            }
        )
    if not out:
        raise ProofError(f"no ledger entry of NIP {nip} is in the seal of {seal.period}")
    out.sort(key=lambda item: int(item["seq"]))
    return {"format": PROOF_FORMAT, "nip": nip, "seal": to_dict(seal), "entries": out}


def proof_to_json(proof: Mapping[str, Any]) -> str:
    """The proof file's text: keys sorted, indented for a human reader, UTF-8 as itself."""
    return json.dumps(proof, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# -- checking --------------------------------------------------------------------------------


def _seal_differences(inside: Seal, kept: Seal) -> list[str]:
    mine, theirs = to_dict(inside), to_dict(kept)
    return sorted(name for name in mine if mine[name] != theirs[name])


def _entry_shape(entry: Any) -> str | None:
    """What is malformed in one entry of the file, or ``None``."""
    if not isinstance(entry, dict):
        return "it is not an object"
    for name in ("seq", "leaf_index"):
        if type(entry.get(name)) is not int:
            return f"its {name} is not a whole number"
    if not isinstance(entry.get("hash"), str):
        return "its hash is not text"
    path = entry.get("path")
    if not isinstance(path, list) or not all(
        isinstance(item, str) and _HEX64.fullmatch(item) for item in path
    ):
        return "its path is not a list of 64-digit hex hashes"
    fields = entry.get("fields")
    if not isinstance(fields, dict):
        return "its fields are not an object"
    if set(fields) != _FIELDS:
        odd = sorted(set(fields) ^ _FIELDS)
        return f"its fields are not the ledger's hashed fields ({', '.join(odd)})"
    if not isinstance(fields["prev_hash"], str):
        return "its prev_hash is not text"
    return None


def _check_entry(entry: dict[str, Any], seal: Seal, nip: Any) -> tuple[list[str], bytes | None]:
    """The problems of one well-formed entry, and the root its path leads to."""
    seq, fields, problems = entry["seq"], entry["fields"], []
    if fields["seq"] != seq:
        problems.append(f"entry #{seq} was changed: its fields say it is #{fields['seq']}")
    recomputed = entry_hash(fields)
    if recomputed != entry["hash"]:
        problems.append(
            f"entry #{seq} was changed: its fields give hash {recomputed[:16]}…, not the hash "
            f"{entry['hash'][:16]}… it was sealed with"
        )
    if fields["period"] != seal.period:
        problems.append(f"entry #{seq} is of period {fields['period']}, the seal of {seal.period}")
    if nip is not None and fields["nip"] != nip:
        problems.append(f"entry #{seq} is of NIP {fields['nip']}, the proof is for NIP {nip}")
    if (
        seal.first_seq is None
        or seal.last_seq is None
        or not (seal.first_seq <= seq <= seal.last_seq)
    ):
        problems.append(
            f"entry #{seq} is outside the seal's entries (#{seal.first_seq} to #{seal.last_seq})"
        )
    index, path = entry["leaf_index"], [bytes.fromhex(item) for item in entry["path"]]
    reached = root_from_inclusion(index, seal.count, leaf_hash(leaf_of(recomputed)), path)
    if reached is None:
        problems.append(
            f"entry #{seq}: wrong path: {len(path)} hashes cannot lead from leaf {index} to the "
            f"root of a tree of {seal.count} leaves"
        )
    elif reached.hex() != seal.root:
        problems.append(
            f"entry #{seq}: its inclusion path leads to root {reached.hex()[:16]}…, not to the "
            f"seal's root {seal.root[:16]}…: the entry, its path or the seal's root was changed"
        )
    return problems, reached


def check_proof(
    proof: Any, seal: Seal | None = None, public_key: Ed25519PublicKey | None = None
) -> list[str]:
    """What is wrong with a proof file's object: an empty list when it proves every entry it
    carries is in the sealed tree; else one message per problem.

    With ``seal`` (the seal file kept outside the database), the proof's own seal must be
    the same, and the entries are checked against the kept one. With ``public_key``, the
    seal's Ed25519 signature must be good and by that key.
    """
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        found = proof.get("format") if isinstance(proof, dict) else type(proof).__name__
        return [f"not an ekinerja-sync proof file: its format is {found!r:.40}"]
    problems: list[str] = []
    try:
        inside = from_dict(proof.get("seal"))
    except SealError as error:
        return [f"the proof's seal is malformed: {error}"]
    reference = inside
    if seal is not None:
        differing = _seal_differences(inside, seal)
        if differing:
            problems.append(
                f"the seal in the proof differs from the seal file ({', '.join(differing)}): "
                f"the entries are checked against the seal file"
            )
        reference = seal
    if public_key is not None:
        problem = signature_problem(reference, public_key)
        if problem:
            problems.append(problem)
    entries = proof.get("entries")
    if not isinstance(entries, list) or not entries:
        return [*problems, "the proof carries no entry"]
    nip = proof.get("nip")
    reached: list[bytes | None] = []
    entry_problems: list[str] = []
    for position, entry in enumerate(entries, start=1):
        shape = _entry_shape(entry)
        if shape:
            entry_problems.append(f"entry {position} of the proof is malformed: {shape}")
            continue
        found, root = _check_entry(entry, reference, nip)
        entry_problems.extend(found)
        reached.append(root)
    if (
        len(reached) > 1
        and len(entry_problems) == len(reached) == len(entries)
        and len(set(reached)) == 1
        and all("leads to root" in item for item in entry_problems)
    ):
        # Every path agrees on one root and the seal says another: the seal's root changed.
        entry_problems = [
            f"root mismatch: all {len(reached)} entries lead to root "
            f"{(reached[0] or b'').hex()[:16]}…, "
            f"the seal says {reference.root[:16]}…: the seal's root was changed, or the seal "
            f"is not the one these entries were proven under"
        ]
    problems.extend(entry_problems)
    well_formed = [entry for entry in entries if _entry_shape(entry) is None]
    for before, after in pairwise(well_formed):
        if not (before["seq"] < after["seq"] and before["leaf_index"] < after["leaf_index"]):
            problems.append(
                f"entries #{before['seq']} and #{after['seq']} are out of order or the same "
                f"entry twice"
            )
    return problems
