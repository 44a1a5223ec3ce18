"""A period's seal: the RFC 6962 Merkle root over its ledger entries, optionally signed with
Ed25519, kept outside the database by the dinas (issue 26). Pure: no database, no files.

What a leaf is
--------------
The leaves of a period's tree are the period's ledger entries (``period`` = P) in ``seq``
order, up to the seal's ``last_seq``; a leaf's bytes are the entry's own ledger hash
(``state.ledger``: SHA-256 of ``prev_hash`` + the canonical JSON of its fields), the 32 raw
bytes, so the tree's leaf hash is ``SHA-256(0x00 || bytes.fromhex(entry.hash))``.

Why that hash, and not the canonical JSON of the fields itself: a proof file carries every
hashed field of the teacher's entries (NIP, period, action, outcome, HTTP status, time, the
bodies, and ``prev_hash``), so an offline checker recomputes the hash from the fields with one
SHA-256 (a few lines of any language, ``docs/auditors/verify_proof.py``), then the leaf; and
the seal is built from the ``hash`` column alone, without reading a single body, so sealing a
period of 100,000 entries reads 64 bytes per entry. The seal then commits to the hash chain as
well: an entry edited with its hash recomputed changes its leaf, and so the root.

Entries of other periods are not leaves: the ledger is one chain for every period, the tree
one per period. The ledger being append-only, the period's entries up to an earlier seal are
the first ``count`` leaves of any later tree of that period, which is what a consistency
proof shows (``previous.consistency``, checked by ``check_extends``).

The seal file
-------------
``to_json`` writes the seal as canonical JSON (``state.canonical``: keys sorted, no spaces):
``format`` (``ekinerja-sync-seal/1``), ``period``, ``first_seq`` and ``last_seq`` (the first
and last entry sealed; ``null`` for a period with none), ``count``, ``root`` (64 lowercase hex
digits), ``sealed_at`` (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``), ``previous`` (``null``, or the
extended seal's ``count`` and ``root`` with the ``consistency`` proof from it to this one, hex),
``key_id`` and ``signature`` (``null`` when unsigned).

The signature is Ed25519 over the canonical JSON of every key but ``signature`` (so it covers
``key_id``, ``format`` and ``previous``), base64. ``key_id`` is the first 16 hex digits of the
SHA-256 of the raw 32-byte public key: it names the key the seal says it was signed with.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from state.canonical import canonical_json, canonical_json_bytes
from state.ledger import format_at
from state.merkle import MerkleTree, verify_consistency

__all__ = [
    "SEAL_FORMAT",
    "Previous",
    "Seal",
    "SealError",
    "check_extends",
    "from_dict",
    "from_json",
    "generate_private_key_pem",
    "key_id",
    "leaf_of",
    "load_private_key",
    "load_public_key",
    "make_seal",
    "public_key_base64",
    "public_key_pem",
    "sign",
    "signature_problem",
    "to_dict",
    "to_json",
    "tree_of",
    "verify_signature",
]

SEAL_FORMAT = "ekinerja-sync-seal/1"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_KEYS = frozenset(
    (
        "format",
        "period",
        "first_seq",
        "last_seq",
        "count",
        "root",
        "sealed_at",
        "previous",
        "key_id",
        "signature",
    )
)
_MAKE_KEY = "make one with: openssl genpkey -algorithm ed25519 -out seal-key.pem"


class SealError(ValueError):
    """A seal, a key or the entries to seal are not what they must be; the message says what
    to do, in one or two lines, and never holds key material."""


@dataclass(frozen=True)
class Previous:
    """The seal this one extends: its ``count`` and ``root``, and the RFC 6962 consistency
    proof (hex) that its tree is the first ``count`` leaves of this one's."""

    count: int
    root: str
    consistency: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seal:
    """A period's seal (module docstring); ``to_json``/``from_json`` write and read it."""

    period: str
    first_seq: int | None
    last_seq: int | None
    count: int
    root: str
    sealed_at: str
    previous: Previous | None = None
    key_id: str | None = None
    signature: str | None = None

    def signed_bytes(self) -> bytes:
        """What the signature is taken of: the canonical JSON of all but ``signature``."""
        content = to_dict(self)
        del content["signature"]
        return canonical_json_bytes(content)


# -- the tree of a period --------------------------------------------------------------------


def leaf_of(entry_hash: str) -> bytes:
    """A ledger entry's leaf: the 32 bytes of its ledger hash (module docstring)."""
    if not isinstance(entry_hash, str) or not _HEX64.fullmatch(entry_hash):
        raise SealError(f"a ledger hash is 64 lowercase hex digits, not {entry_hash!r:.80}")
    return bytes.fromhex(entry_hash)


def tree_of(entry_hashes: Sequence[str]) -> MerkleTree:
    """The RFC 6962 tree over the entries whose ledger hashes are given, in ``seq`` order."""
    return MerkleTree.from_leaves([leaf_of(item) for item in entry_hashes])


def make_seal(
    period: str,
    entries: Sequence[tuple[int, str]],
    *,
    sealed_at: dt.datetime,
    previous: Seal | None = None,
) -> Seal:
    """The (unsigned) seal of ``period`` over ``entries``: ``(seq, hash)`` of each of the
    period's ledger entries, in ``seq`` order. With ``previous`` (the period's last seal),
    the new seal extends it: its entries must be the first ones of ``entries``, unchanged.
    """
    if not period:
        raise SealError("a seal needs a period")
    seqs = [seq for seq, _ in entries]
    if any(later <= earlier for earlier, later in pairwise(seqs)):
        raise SealError("the entries to seal must be in increasing seq order, each once")
    tree = tree_of([hash_ for _, hash_ in entries])
    extended = None
    if previous is not None:
        if previous.period != period:
            raise SealError(f"the seal of {previous.period} cannot be extended by one of {period}")
        if previous.count > tree.size or tree.root_at(previous.count).hex() != previous.root:
            raise SealError(
                f"the ledger's entries of {period} no longer begin with the {previous.count} "
                f"entries sealed at {previous.sealed_at}: history was rewritten; run "
                f"`ekinerja-sync ledger verify` and keep the earlier seal file as evidence"
            )
        proof = tree.consistency_proof(previous.count)
        extended = Previous(previous.count, previous.root, tuple(item.hex() for item in proof))
    return Seal(
        period=period,
        first_seq=seqs[0] if seqs else None,
        last_seq=seqs[-1] if seqs else None,
        count=tree.size,
        root=tree.root.hex(),
        sealed_at=format_at(sealed_at),
        previous=extended,
    )


def check_extends(old: Seal, new: Seal) -> list[str]:
    """What is wrong with ``new`` as the extension of ``old`` (empty: it extends it; the old
    seal's entries are the new tree's first ``old.count`` leaves, unchanged)."""
    if new.period != old.period:
        return [f"the new seal is of {new.period}, the old one of {old.period}"]
    if new.previous is None:
        return ["the new seal does not say it extends an earlier seal (its previous is null)"]
    problems = []
    if (new.previous.count, new.previous.root) != (old.count, old.root):
        problems.append(
            f"the new seal extends a seal of {new.previous.count} entries with root "
            f"{new.previous.root[:16]}…, not this one ({old.count} entries, {old.root[:16]}…)"
        )
    if old.count and new.first_seq != old.first_seq:
        problems.append(
            f"the new seal starts at entry #{new.first_seq}, the old one at #{old.first_seq}"
        )
    try:
        proof = [bytes.fromhex(item) for item in new.previous.consistency]
        roots = bytes.fromhex(old.root), bytes.fromhex(new.root)
    except ValueError:
        return [*problems, "the new seal's consistency proof is not hex"]
    if not verify_consistency(old.count, new.count, roots[0], roots[1], proof):
        problems.append(
            f"the consistency proof does not show the old seal's {old.count} entries as the "
            f"first of the new seal's {new.count}: the period's history was rewritten between "
            f"the two seals"
        )
    return problems


# -- the seal file ---------------------------------------------------------------------------


def to_dict(seal: Seal) -> dict[str, Any]:
    """The seal as the JSON object of its file (every key present, ``null`` where empty)."""
    previous = seal.previous
    return {
        "format": SEAL_FORMAT,
        "period": seal.period,
        "first_seq": seal.first_seq,
        "last_seq": seal.last_seq,
        "count": seal.count,
        "root": seal.root,
        "sealed_at": seal.sealed_at,
        "previous": None
        if previous is None
        else {
            "count": previous.count,
            "root": previous.root,
            "consistency": list(previous.consistency),
        },
        "key_id": seal.key_id,
        "signature": seal.signature,
    }


def to_json(seal: Seal) -> str:
    """The seal file's text: canonical JSON (keys sorted, no spaces)."""
    return canonical_json(to_dict(seal))


def from_json(text: str | bytes) -> Seal:
    """Read a seal file; ``SealError`` says what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as error:  # UnicodeDecodeError included
        raise SealError(f"not a seal file: it is not JSON ({error})") from None
    return from_dict(data)


def _int(data: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = data.get(name)
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        raise SealError(f"the seal's {name} must be a whole number, not {value!r:.40}")
    return value


def _text(data: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or (pattern and not pattern.fullmatch(value)):
        raise SealError(f"the seal's {name} is malformed: {value!r:.80}")
    return value


def from_dict(data: Any) -> Seal:
    """The seal from the JSON object of its file, every key checked (``SealError``)."""
    if not isinstance(data, dict) or data.get("format") != SEAL_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise SealError(f"not a seal: its format is {found!r:.40}, not {SEAL_FORMAT!r}")
    if set(data) != _KEYS:
        odd = sorted(set(data) ^ _KEYS)
        raise SealError(f"the seal has other keys than a seal has: {', '.join(odd)}")
    count = _int(data, "count")
    first, last = _int(data, "first_seq", optional=True), _int(data, "last_seq", optional=True)
    assert count is not None
    if (first is None) != (count == 0) or (last is None) != (count == 0):
        raise SealError("a seal's first_seq and last_seq are null exactly when count is 0")
    if first is not None and last is not None and last - first + 1 < count:
        raise SealError(f"a seal of {count} entries cannot run from #{first} to #{last}")
    previous = None
    raw = data["previous"]
    if raw is not None:
        if not isinstance(raw, dict) or set(raw) != {"count", "root", "consistency"}:
            raise SealError("the seal's previous must hold count, root and consistency")
        old_count = _int(raw, "count")
        assert old_count is not None
        if old_count > count:
            raise SealError(f"a seal of {count} entries cannot extend one of {old_count}")
        proof = raw["consistency"]
        if not isinstance(proof, list) or not all(
            isinstance(item, str) and _HEX64.fullmatch(item) for item in proof
        ):
            raise SealError("the seal's consistency proof must be a list of 64-digit hex hashes")
        previous = Previous(old_count, _text(raw, "root", _HEX64), tuple(proof))
    key, signature = data["key_id"], data["signature"]
    if (key is None) != (signature is None):
        raise SealError("a seal has both a key_id and a signature, or neither")
    return Seal(
        period=_text(data, "period"),
        first_seq=first,
        last_seq=last,
        count=count,
        root=_text(data, "root", _HEX64),
        sealed_at=_text(data, "sealed_at", _AT),
        previous=previous,
        key_id=None if key is None else _text(data, "key_id", _KEY_ID),
        signature=None if signature is None else _text(data, "signature"),
    )


# -- keys and signatures ---------------------------------------------------------------------


def generate_private_key_pem() -> bytes:
    """A new Ed25519 private key as unencrypted PKCS8 PEM (what ``load_private_key`` reads)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS8, unencrypted); ``SealError`` otherwise."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise SealError(
            f"the signing key file is encrypted: give an unencrypted one ({_MAKE_KEY})"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SealError(f"the signing key file is not a PEM private key: {_MAKE_KEY}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SealError(f"the signing key is not an Ed25519 key: {_MAKE_KEY}")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (SubjectPublicKeyInfo) or from the base64 of its raw 32
    bytes (what ``public_key_base64`` prints); ``SealError`` otherwise."""
    text = data.strip()
    if b"PRIVATE KEY" in text:
        raise SealError("that is a private key: give the public key (keep the private one secret)")
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, UnsupportedAlgorithm, binascii.Error):
        raise SealError(
            "not an Ed25519 public key: give the published public key, as its PEM file or "
            "as the one base64 line of its 32 bytes"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise SealError("the public key is not an Ed25519 key")
    return key


def _public(key: Ed25519PublicKey | Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def _raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    return _public(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo), for publication."""
    return (
        _public(key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def public_key_base64(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key's raw 32 bytes in base64: one line, for a letter or a web page."""
    return base64.b64encode(_raw(key)).decode("ascii")


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The first 16 hex digits of SHA-256 of the raw public key."""
    return hashlib.sha256(_raw(key)).hexdigest()[:16]


def sign(seal: Seal, private_key_pem: bytes) -> Seal:
    """The seal signed with the Ed25519 key in ``private_key_pem`` (``key_id`` set to it)."""
    key = load_private_key(private_key_pem)
    unsigned = replace(seal, key_id=key_id(key), signature=None)
    signature = key.sign(unsigned.signed_bytes())
    return replace(unsigned, signature=base64.b64encode(signature).decode("ascii"))


def signature_problem(seal: Seal, public_key: Ed25519PublicKey) -> str | None:
    """Why ``seal``'s signature does not hold for ``public_key``; ``None`` when it does."""
    if seal.signature is None or seal.key_id is None:
        return "the seal is not signed, so the public key cannot vouch for it"
    expected = key_id(public_key)
    if seal.key_id != expected:
        return (
            f"the seal says it was signed with key {seal.key_id}, not with the public key "
            f"given ({expected})"
        )
    try:
        signature = base64.b64decode(seal.signature, validate=True)
        public_key.verify(signature, seal.signed_bytes())
    except (binascii.Error, ValueError, InvalidSignature):
        return (
            "bad signature: the seal's signature does not match its content (the seal was "
            "changed after it was signed, or the signature was)"
        )
    return None


def verify_signature(seal: Seal, public_key: Ed25519PublicKey) -> bool:
    """Whether ``seal`` carries a good signature by ``public_key``."""
    return signature_problem(seal, public_key) is None
