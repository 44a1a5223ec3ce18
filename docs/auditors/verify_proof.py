"""Check an ekinerja-sync proof file with Python's standard library alone:
python3 verify_proof.py PROOF.json [SEAL.json]; exit 0 when all holds, else 1. Each entry's
fields give its ledger hash (SHA-256 of prev_hash followed by the fields as JSON: keys sorted,
no spaces, UTF-8), a leaf of the period's RFC 6962 Merkle tree; the entry's path must lead from
it to the seal's root (RFC 9162, 2.1.3.2). With SEAL.json, the seal file kept outside the
database, the proof's seal must equal it. The seal's Ed25519 signature is NOT checked here (the
standard library has no Ed25519): `ekinerja-sync ledger check-proof PROOF --seal SEAL
--public-key KEY` checks it.
"""

import json
import sys
from hashlib import sha256


def root_from_path(index, size, node, path):
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    for sibling in (bytes.fromhex(item) for item in path):
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            node = sha256(b"\x01" + sibling + node).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = sha256(b"\x01" + node + sibling).digest()
        fn, sn = fn >> 1, sn >> 1
    return node if sn == 0 else None


def problems(proof, kept):
    seal = kept or proof["seal"]
    if proof["format"] != "ekinerja-sync-proof/1" or not proof["entries"]:
        yield "not a proof file, or a proof of no entry"
    if kept and kept != proof["seal"]:
        yield "the seal in the proof differs from the seal file"
    for entry in proof["entries"]:
        fields, seq = entry["fields"], entry["seq"]
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = sha256((fields["prev_hash"] + text).encode("utf-8")).hexdigest()
        if digest != entry["hash"] or fields["seq"] != seq or fields["period"] != seal["period"]:
            yield f"entry #{seq} was changed: its fields are not the ones sealed"
        if proof.get("nip") not in (None, fields["nip"]):
            yield f"entry #{seq} is of another NIP than the proof's"
        leaf = sha256(b"\x00" + bytes.fromhex(digest)).digest()
        reached = root_from_path(entry["leaf_index"], seal["count"], leaf, entry["path"])
        if reached != bytes.fromhex(seal["root"]):
            yield f"entry #{seq}: its path does not lead to the seal's root"


if __name__ == "__main__":
    try:
        files = [json.load(open(name, encoding="utf-8")) for name in sys.argv[1:3]]  # noqa: SIM115
        found = list(problems(files[0], files[1] if len(files) > 1 else None))
    except (OSError, LookupError, TypeError, ValueError, AttributeError) as error:
        found = [f"usage: verify_proof.py PROOF.json [SEAL.json]; cannot read them: {error!r}"]
    print("\n".join(found) or f"OK: {len(files[0]['entries'])} entries are in the sealed tree")
    sys.exit(1 if found else 0)
