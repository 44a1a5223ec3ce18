"""state.seal and state.proof: a period's seal, its Ed25519 signature, a teacher's proof file,
the consistency of two seals, and the auditors' stdlib script (issue 26).

The ledger entries here are made the way ``state.ledger`` makes them (``entry_hash`` over the
hashed fields, chained by ``prev_hash``), without a database: sealing and proving are pure.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from state import seal as seals
from state.canonical import canonical_json
from state.ledger import GENESIS_HASH, HASHED_FIELDS, entry_hash, format_at
from state.merkle import MerkleTree
from state.proof import PROOF_FORMAT, ProofError, build_proof, check_proof, proof_to_json
from state.seal import Seal, SealError

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "auditors" / "verify_proof.py"
PERIOD, OTHER = "2026-1", "2025-2"
NIPS = ("197002101995031001", "198503152010012004", "199001012015011003")
START = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
SEALED_AT = dt.datetime(2026, 8, 1, 9, 30, tzinfo=dt.UTC)


def _event(number: int) -> dict[str, Any]:
    """The number-th entry's fields: mostly PERIOD, some OTHER; teachers in turn."""
    nip = NIPS[number % 3]
    return {
        "actor": "daemon" if number % 4 else "operator:budi",
        "action": "create_assessment" if number % 2 else "create_skp",
        "outcome": "delivered" if number % 5 else "rejected",
        "run_id": f"run-{number // 10}",
        "period": OTHER if number % 7 == 0 else PERIOD,
        "npsn": "20100001",
        "nip": nip,
        "employee_name": "Siti Ñurhaliza" if nip == NIPS[0] else "Budi Santoso",
        "kind": "assessment",
        "mapping_version": "v3",
        "idempotency_key": f"key-{number}",
        "request_body": json.dumps({"nip": nip, "nilai": number}, separators=(",", ":")),
        "http_status": 201 if number % 5 else 422,
        "answer_body": '{"status":"ok"}' if number % 5 else '{"error":"periode ditutup"}',
        "duration_ms": 40 + number,
        "detail": None,
    }


def _chain(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries as ``state.ledger.append`` writes them: numbered, timed and chained."""
    rows, prev = [], GENESIS_HASH
    for seq, event in enumerate(events, start=1):
        row: dict[str, Any] = dict.fromkeys(HASHED_FIELDS)
        row.update(event)
        row.update(seq=seq, at=format_at(START + dt.timedelta(minutes=seq)), prev_hash=prev)
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    return rows


def _ledger(count: int) -> list[dict[str, Any]]:
    return _chain([_event(number) for number in range(1, count + 1)])


def _of(rows: list[dict[str, Any]], period: str = PERIOD) -> list[tuple[int, str]]:
    return [(row["seq"], row["hash"]) for row in rows if row["period"] == period]


def _nip(rows: list[dict[str, Any]], nip: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["nip"] == nip and row["period"] == PERIOD]


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    return seals.generate_private_key_pem()


@pytest.fixture(scope="module")
def ledger() -> list[dict[str, Any]]:
    return _ledger(60)


@pytest.fixture
def sealed(ledger: list[dict[str, Any]], key_pem: bytes) -> Seal:
    return seals.sign(seals.make_seal(PERIOD, _of(ledger), sealed_at=SEALED_AT), key_pem)


@pytest.fixture
def proof(ledger: list[dict[str, Any]], sealed: Seal) -> dict[str, Any]:
    return build_proof(sealed, _of(ledger), _nip(ledger, NIPS[0]), nip=NIPS[0])


def _public(pem: bytes) -> Any:
    return seals.load_private_key(pem).public_key()


# -- the seal --------------------------------------------------------------------------------


def test_a_seal_covers_the_periods_entries_only(ledger: list[dict[str, Any]]) -> None:
    seal = seals.make_seal(PERIOD, _of(ledger), sealed_at=SEALED_AT)
    mine = _of(ledger)
    assert (seal.first_seq, seal.last_seq, seal.count) == (mine[0][0], mine[-1][0], len(mine))
    assert len(mine) < len(ledger)  # the other period's entries are no leaves
    leaves = [bytes.fromhex(hash_) for _, hash_ in mine]
    assert seal.root == MerkleTree.from_leaves(leaves).root.hex()
    assert seal.sealed_at == "2026-08-01T09:30:00.000000Z"
    assert seal.previous is None
    assert seal.key_id is None
    assert seal.signature is None
    empty = seals.make_seal(PERIOD, [], sealed_at=SEALED_AT)
    assert (empty.first_seq, empty.last_seq, empty.count) == (None, None, 0)
    assert empty.root == hashlib.sha256(b"").hexdigest()
    with pytest.raises(SealError, match="increasing seq"):
        seals.make_seal(PERIOD, [mine[1], mine[0]], sealed_at=SEALED_AT)
    with pytest.raises(SealError, match="64 lowercase hex"):
        seals.make_seal(PERIOD, [(1, "NOT-A-HASH")], sealed_at=SEALED_AT)


def test_the_seal_file_is_canonical_and_reads_back(sealed: Seal) -> None:
    text = seals.to_json(sealed)
    assert text == canonical_json(json.loads(text))
    assert " " not in text
    assert json.loads(text)["format"] == seals.SEAL_FORMAT
    assert seals.from_json(text) == sealed
    assert seals.from_json(text.encode("utf-8")) == sealed
    unsigned = replace(sealed, key_id=None, signature=None)
    assert seals.from_json(seals.to_json(unsigned)) == unsigned


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format="other/1"), "not a seal"),
        (lambda d: d.update(extra=1), "other keys"),
        (lambda d: d.pop("root"), "other keys"),
        (lambda d: d.update(root="ABC"), "root is malformed"),
        (lambda d: d.update(count=-1), "count must be a whole number"),
        (lambda d: d.update(count=True), "count must be a whole number"),
        (lambda d: d.update(first_seq=None), "null exactly when count is 0"),
        (lambda d: d.update(last_seq=d["first_seq"]), "cannot run from"),
        (lambda d: d.update(sealed_at="yesterday"), "sealed_at is malformed"),
        (lambda d: d.update(signature=None), "both a key_id and a signature"),
        (lambda d: d.update(previous={"count": 1}), "previous must hold"),
    ],
)
def test_a_malformed_seal_file_is_refused(
    sealed: Seal, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    data = seals.to_dict(sealed)
    change(data)
    with pytest.raises(SealError, match=message):
        seals.from_json(json.dumps(data))
    with pytest.raises(SealError, match="not JSON"):
        seals.from_json("{")


# -- keys and signatures ---------------------------------------------------------------------


def test_keys_load_print_and_name_themselves(key_pem: bytes) -> None:
    private = seals.load_private_key(key_pem)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert seals.key_id(private) == hashlib.sha256(raw).hexdigest()[:16]
    pem = seals.public_key_pem(private)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    line = seals.public_key_base64(private)
    assert base64.b64decode(line) == raw
    for published in (pem.encode("ascii"), line.encode("ascii") + b"\n"):
        assert seals.key_id(seals.load_public_key(published)) == seals.key_id(private)


def test_bad_keys_are_refused_with_a_way_out(key_pem: bytes) -> None:
    encrypted = seals.load_private_key(key_pem).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(SealError, match="encrypted") as caught:
        seals.load_private_key(encrypted)
    assert "secret" not in str(caught.value)
    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SealError, match=r"not an Ed25519 key.*openssl genpkey"):
        seals.load_private_key(other_pem)
    with pytest.raises(SealError, match="not a PEM private key"):
        seals.load_private_key(b"hello")
    with pytest.raises(SealError, match="that is a private key"):
        seals.load_public_key(key_pem)
    with pytest.raises(SealError, match="not an Ed25519 public key"):
        seals.load_public_key(b"bm90IGEga2V5")
    other_public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SealError, match="not an Ed25519 key"):
        seals.load_public_key(other_public)


def test_a_signature_holds_and_any_change_breaks_it(sealed: Seal, key_pem: bytes) -> None:
    public = _public(key_pem)
    assert seals.verify_signature(sealed, public)
    assert seals.signature_problem(sealed, public) is None
    previous = seals.Previous(1, "0" * 64, ())
    changes = [
        replace(sealed, root="f" * 64),
        replace(sealed, count=sealed.count - 1),
        replace(sealed, last_seq=(sealed.last_seq or 0) + 1),
        replace(sealed, period=OTHER),
        replace(sealed, sealed_at="2026-08-02T09:30:00.000000Z"),
        replace(sealed, previous=previous),
    ]
    for changed in changes:
        assert not seals.verify_signature(changed, public)
        assert "bad signature" in (seals.signature_problem(changed, public) or "")
    signature = bytearray(base64.b64decode(sealed.signature or ""))
    signature[5] ^= 1
    flipped = replace(sealed, signature=base64.b64encode(bytes(signature)).decode("ascii"))
    assert "bad signature" in (seals.signature_problem(flipped, public) or "")
    assert "bad signature" in (
        seals.signature_problem(replace(sealed, signature="%"), public) or ""
    )
    stranger = _public(seals.generate_private_key_pem())
    assert "not with the public key given" in (seals.signature_problem(sealed, stranger) or "")
    unsigned = replace(sealed, key_id=None, signature=None)
    assert "not signed" in (seals.signature_problem(unsigned, public) or "")
    # The key id is signed too: pointing the seal at another key breaks the signature.
    renamed = replace(sealed, key_id=seals.key_id(stranger))
    assert not seals.verify_signature(renamed, stranger)


# -- proofs ----------------------------------------------------------------------------------


def test_a_proof_carries_the_teachers_entries_and_verifies(
    proof: dict[str, Any], sealed: Seal, key_pem: bytes, ledger: list[dict[str, Any]]
) -> None:
    assert proof["format"] == PROOF_FORMAT
    assert proof["nip"] == NIPS[0]
    assert [entry["seq"] for entry in proof["entries"]] == [
        row["seq"] for row in _nip(ledger, NIPS[0])
    ]
    first = proof["entries"][0]
    assert set(first) == {"seq", "hash", "leaf_index", "path", "fields"}
    for name in ("nip", "period", "action", "outcome", "http_status", "at"):
        assert first["fields"][name] == _nip(ledger, NIPS[0])[0][name]
    assert check_proof(proof) == []
    assert check_proof(proof, seal=sealed, public_key=_public(key_pem)) == []
    # The file as written reads back to the same verdict.
    assert check_proof(json.loads(proof_to_json(proof)), seal=sealed) == []


def test_every_entry_of_every_teacher_proves(ledger: list[dict[str, Any]], sealed: Seal) -> None:
    for nip in NIPS:
        made = build_proof(sealed, _of(ledger), _nip(ledger, nip), nip=nip)
        assert len(made["entries"]) == len(_nip(ledger, nip))
        assert check_proof(made, seal=sealed) == []


def test_a_proof_leaves_out_entries_after_the_seal(ledger: list[dict[str, Any]]) -> None:
    rows = ledger[:30]
    seal = seals.make_seal(PERIOD, _of(rows), sealed_at=SEALED_AT)
    made = build_proof(seal, _of(ledger), _nip(ledger, NIPS[1]), nip=NIPS[1])
    assert [entry["seq"] for entry in made["entries"]] == [
        row["seq"] for row in _nip(rows, NIPS[1])
    ]
    assert check_proof(made, seal=seal) == []


def test_no_proof_from_a_changed_ledger_or_of_nobody(
    ledger: list[dict[str, Any]], sealed: Seal
) -> None:
    changed = copy.deepcopy(ledger)
    mine = _nip(changed, NIPS[0])
    mine[0]["outcome"] = "delivered" if mine[0]["outcome"] != "delivered" else "rejected"
    with pytest.raises(ProofError, match="ledger verify"):
        build_proof(sealed, _of(changed), mine, nip=NIPS[0])
    mine[0]["hash"] = entry_hash(mine[0])  # recomputed: the leaves no longer give the root
    with pytest.raises(ProofError, match="no longer give the seal's root"):
        build_proof(sealed, _of(changed), mine, nip=NIPS[0])
    with pytest.raises(ProofError, match="no ledger entry of NIP 1"):
        build_proof(sealed, _of(ledger), [], nip="1")
    with pytest.raises(ProofError, match="not one of NIP"):
        build_proof(sealed, _of(ledger), _nip(ledger, NIPS[1]), nip=NIPS[0])


def _field(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(proof: dict[str, Any]) -> None:
        proof["entries"][0]["fields"][name] = value

    return change


def _path_element(proof: dict[str, Any]) -> None:
    path = proof["entries"][-1]["path"]
    path[1] = hashlib.sha256(path[1].encode()).hexdigest()


def _seal_root(proof: dict[str, Any]) -> None:
    proof["seal"]["root"] = hashlib.sha256(b"another tree").hexdigest()


def _hash_and_field(proof: dict[str, Any]) -> None:
    entry = proof["entries"][0]
    entry["fields"]["http_status"] = 201 if entry["fields"]["http_status"] != 201 else 500
    entry["hash"] = entry_hash(entry["fields"])


# Changes an auditor must see, and what check_proof says about each.
INCLUSION_TAMPERING: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "outcome": (_field("outcome", "delivered-later"), "was changed"),
    "http_status": (_field("http_status", 200), "was changed"),
    "time": (_field("at", "2026-07-01T08:00:00.000000Z"), "was changed"),
    "nip": (_field("nip", NIPS[1]), "was changed"),
    "action": (_field("action", "discard"), "was changed"),
    "name": (_field("employee_name", "Siti Nurhaliza"), "was changed"),
    "a field added": (_field("note", "forged"), "not the ledger's hashed fields"),
    "hash and field": (_hash_and_field, "leads to root"),
    "path element": (_path_element, "leads to root"),
    "path cut": (lambda p: p["entries"][0]["path"].pop(), "wrong path"),
    "path longer": (lambda p: p["entries"][0]["path"].append("0" * 64), "wrong path"),
    "leaf index": (lambda p: p["entries"][0].update(leaf_index=1), "leads to root"),
    "seal root": (_seal_root, "root mismatch"),
    "seal count": (lambda p: p["seal"].update(count=p["seal"]["count"] + 1), "path"),
    "seal period": (lambda p: p["seal"].update(period=OTHER), "is of period"),
    "format": (lambda p: p.update(format="other/1"), "not an ekinerja-sync proof"),
    "no entries": (lambda p: p.update(entries=[]), "no entry"),
    "proof nip": (lambda p: p.update(nip=NIPS[2]), "the proof is for NIP"),
}


@pytest.mark.parametrize("name", sorted(INCLUSION_TAMPERING))
def test_any_change_fails_the_proof(proof: dict[str, Any], name: str) -> None:
    change, message = INCLUSION_TAMPERING[name]
    tampered = copy.deepcopy(proof)
    change(tampered)
    problems = check_proof(tampered)
    assert problems, name
    assert any(message in problem for problem in problems), problems


def test_a_proof_is_checked_against_the_seal_kept_outside(
    proof: dict[str, Any], sealed: Seal, key_pem: bytes
) -> None:
    # A proof made consistent with a forged seal passes alone, but not against the kept seal.
    events = [_event(number) for number in range(1, 61)]
    events[2]["detail"] = "forged"
    forged_rows = _chain(events)
    forged_seal = seals.make_seal(PERIOD, _of(forged_rows), sealed_at=SEALED_AT)
    forged = build_proof(forged_seal, _of(forged_rows), _nip(forged_rows, NIPS[0]), nip=NIPS[0])
    assert check_proof(forged) == []
    problems = check_proof(forged, seal=sealed)
    differs = [item for item in problems if "differs from the seal file" in item]
    assert differs, problems
    assert "root" in differs[0]
    assert any("root mismatch" in item or "leads to root" in item for item in problems)
    # Signed with the dinas's key, or not at all: the public key tells.
    public = _public(key_pem)
    assert any("not signed" in item for item in check_proof(forged, public_key=public))
    resigned = build_proof(
        seals.sign(forged_seal, seals.generate_private_key_pem()),
        _of(forged_rows),
        _nip(forged_rows, NIPS[0]),
        nip=NIPS[0],
    )
    assert any("not with the public key" in item for item in check_proof(resigned, None, public))
    # The signature of the proof's own seal, changed after signing.
    tampered = copy.deepcopy(proof)
    tampered["seal"]["sealed_at"] = "2026-09-01T00:00:00.000000Z"
    assert any("bad signature" in item for item in check_proof(tampered, public_key=public))
    assert check_proof(tampered) == []  # the time is not in the tree: only the signature holds it


def test_a_malformed_proof_gives_messages_not_exceptions(proof: dict[str, Any]) -> None:
    junk: list[Any] = [None, [], "text", {"format": PROOF_FORMAT}, {**proof, "seal": {}}]
    for item in junk:
        assert check_proof(item)
    changes: list[Callable[[dict[str, Any]], Any]] = [
        lambda e: e.update(seq="1"),
        lambda e: e.update(path="abc"),
        lambda e: e.update(path=["xyz"]),
        lambda e: e.update(fields=[]),
        lambda e: e.update(hash=None),
        lambda e: e["fields"].pop("detail"),
    ]
    for entry_change in changes:
        tampered = copy.deepcopy(proof)
        entry_change(tampered["entries"][0])
        assert any("malformed" in item for item in check_proof(tampered))
    twice = copy.deepcopy(proof)
    twice["entries"].append(copy.deepcopy(twice["entries"][0]))
    assert any("the same entry twice" in item for item in check_proof(twice))


# -- two seals -------------------------------------------------------------------------------


def test_a_new_seal_extends_the_earlier_one(key_pem: bytes) -> None:
    before = _ledger(40)
    old = seals.sign(seals.make_seal(PERIOD, _of(before), sealed_at=SEALED_AT), key_pem)
    after = _ledger(75)  # the same first 40 entries, and more (after a reopen)
    assert after[:40] == before
    new = seals.make_seal(PERIOD, _of(after), sealed_at=SEALED_AT, previous=old)
    new = seals.sign(new, key_pem)
    assert new.previous is not None
    assert (new.previous.count, new.previous.root) == (old.count, old.root)
    assert seals.check_extends(old, new) == []
    assert seals.from_json(seals.to_json(new)) == new
    assert seals.verify_signature(new, _public(key_pem))
    # A seal extends itself, with nothing more.
    again = seals.make_seal(PERIOD, _of(before), sealed_at=SEALED_AT, previous=old)
    assert seals.check_extends(old, again) == []
    # Not an extension: no previous, or another previous.
    assert seals.check_extends(old, seals.make_seal(PERIOD, _of(after), sealed_at=SEALED_AT))
    other = seals.make_seal(PERIOD, _of(before[:20]), sealed_at=SEALED_AT)
    assert any("not this one" in item for item in seals.check_extends(other, new))
    with pytest.raises(SealError, match="cannot be extended"):
        seals.make_seal(OTHER, _of(after, OTHER), sealed_at=SEALED_AT, previous=old)


def test_a_rewritten_history_fails_the_consistency_proof() -> None:
    before = _ledger(40)
    old = seals.make_seal(PERIOD, _of(before), sealed_at=SEALED_AT)
    events = [_event(number) for number in range(1, 76)]
    events[4]["outcome"] = "delivered-quietly"  # entry #5, sealed before, rewritten since
    rewritten = _chain(events)
    with pytest.raises(SealError, match="history was rewritten"):
        seals.make_seal(PERIOD, _of(rewritten), sealed_at=SEALED_AT, previous=old)
    # A new seal forged to claim it extends the old one: its consistency proof cannot hold.
    tree = seals.tree_of([hash_ for _, hash_ in _of(rewritten)])
    honest = seals.make_seal(PERIOD, _of(rewritten), sealed_at=SEALED_AT)
    forged = replace(
        honest,
        previous=seals.Previous(
            old.count, old.root, tuple(item.hex() for item in tree.consistency_proof(old.count))
        ),
    )
    problems = seals.check_extends(old, forged)
    assert any("history was rewritten" in item for item in problems), problems


# -- the auditors' stdlib script -------------------------------------------------------------


def _script(tmp_path: Path, proof: dict[str, Any], kept: Seal | None = None) -> int:
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(proof_to_json(proof), encoding="utf-8")
    arguments = [str(proof_file)]
    if kept is not None:
        seal_file = tmp_path / "seal.json"
        seal_file.write_text(seals.to_json(kept), encoding="utf-8")
        arguments.append(str(seal_file))
    # -S -I: no site-packages, no environment: the standard library alone.
    done = subprocess.run(
        [sys.executable, "-S", "-I", str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode


def test_the_stdlib_script_is_short_and_stdlib_only() -> None:
    lines = SCRIPT.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 60
    imports = {line.split()[1] for line in lines if line.startswith(("import ", "from "))}
    assert imports <= {"json", "sys", "hashlib"}


def test_the_stdlib_script_agrees_with_check_proof(
    tmp_path: Path, proof: dict[str, Any], sealed: Seal
) -> None:
    assert _script(tmp_path, proof) == 0
    assert _script(tmp_path, proof, sealed) == 0
    for name, (change, _) in sorted(INCLUSION_TAMPERING.items()):
        tampered = copy.deepcopy(proof)
        change(tampered)
        assert check_proof(tampered), name
        assert _script(tmp_path, tampered) == 1, name
    # Against the seal kept outside: a proof under another seal fails both.
    other = seals.make_seal(PERIOD, _of(_ledger(59)), sealed_at=SEALED_AT)
    assert check_proof(proof, seal=other)
    assert _script(tmp_path, proof, other) == 1
