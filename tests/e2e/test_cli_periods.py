"""Issue 26 through the CLI against the sandbox: a closed period refuses each operator action
alone and takes it from two operators; a sealed period takes no change until two operators
reopen it; a seal, a teacher's proof and its check (the CLI's and the stdlib script's); a new
seal after a reopen extends the first one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session
from typer.testing import CliRunner

from connectors.sandbox import Faults, SandboxWorld, generate_world, running_sandbox
from state import ledger
from state.db import make_engine
from state.models import DeliveryKind, RecordStatus
from state.seal import check_extends, from_json, generate_private_key_pem
from state.store import StateStore
from sync.cli import app
from tests.e2e.helpers import expected_after_sync

PERIOD = "2025-1"  # its batas_penilaian (2025-06-30) is past: it closes without --force
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "auditors" / "verify_proof.py"
runner = CliRunner()


def _config(path: Path, state_url: str, pmm: str, target: str) -> list[str]:
    path.write_text(
        f'[state]\nurl = "{state_url}"\n[source]\nbase_url = "{pmm}"\n'
        f'[target]\nbase_url = "{target}"\nrate_limit_per_s = 0\n',
        encoding="utf-8",
    )
    return ["--config", str(path)]


def _cli(config: list[str], *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*config, *args])
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output
        return result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _gurus(world: SandboxWorld, n: int) -> list[str]:
    expected = expected_after_sync(world, PERIOD)
    return [
        r["pegawai"]["nip"]
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    ][:n]


def _status(state_url: str, nip: str) -> RecordStatus:
    engine = make_engine(state_url)
    try:
        record = StateStore(engine).reports.record(PERIOD, nip, DeliveryKind.SKP)
        assert record is not None
        return record.status
    finally:
        engine.dispose()


def _ledger(state_url: str) -> list[tuple[str, str, str | None]]:
    engine = make_engine(state_url)
    try:
        with Session(engine) as session:
            return [(e.actor, e.action, e.detail) for e in ledger.query(session, period=PERIOD)]
    finally:
        engine.dispose()


def test_a_closed_period_takes_changes_from_two_operators_only(
    state_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=12, periods=[PERIOD])
    replayed, discarded = _gurus(world, 2)
    faults = Faults(unknown_nips={replayed, discarded})
    with running_sandbox(world, faults=faults) as box:
        config = _config(tmp_path / "c.toml", state_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD, code=1)
        replay_id, discard_id = (f"{PERIOD}/{nip}/skp" for nip in (replayed, discarded))
        out = _cli(config, "periods", "close", PERIOD, "--why", "berita acara 7", "--actor", "ana")
        assert f"{PERIOD} is closed by ana" in out
        listed = _cli(config, "periods", "list", "--json")
        assert [(p["period"], p["state"], p["failed"]) for p in listed] == [(PERIOD, "closed", 2)]

        # Alone, each action is refused with one line that says how to ask for it.
        box.faults.update({"unknown_nips": []})  # it would succeed if it were let through
        said = _cli(config, "replay", replay_id, "--actor", "ana", code=1)
        assert f"actions request replay {replay_id}" in said
        said = _cli(config, "discard", discard_id, "--why", "x", "--actor", "ana", code=1)
        assert f"actions request discard {discard_id}" in said
        said = _cli(config, "reset", "--period", PERIOD, "--actor", "ana", code=1)
        assert f"actions request reset --period {PERIOD}" in said
        assert len(said.strip().splitlines()) == 1
        creates = box.target.stats()["creates"]["skp"]
        assert f"{replayed}/{PERIOD}" not in creates
        # `run` leaves it alone and says so (the mapping switch a run would make, too).
        result = runner.invoke(app, [*config, "run", "--period", PERIOD])
        assert result.exit_code == 0, result.output
        assert "not synced" in result.stderr
        assert box.target.stats()["creates"]["skp"] == creates

        # Asked by one, approved by another.
        asked = _cli(config, "actions", "request", "replay", replay_id, "--why", "BKN fixed it",
                     "--actor", "ana")  # fmt: skip
        assert "request #1 by ana" in asked
        assert [r["id"] for r in _cli(config, "actions", "list", "--json")] == [1]
        said = _cli(config, "actions", "approve", "1", "--actor", "ana", code=1)
        assert "your own" in said
        assert _status(state_url, replayed) is RecordStatus.FAILED
        done = _cli(config, "actions", "approve", "1", "--actor", "budi")
        assert "failed -> delivered" in done
        assert _status(state_url, replayed) is RecordStatus.DELIVERED
        assert box.target.stats()["creates"]["skp"][f"{replayed}/{PERIOD}"] == 1
        _cli(config, "actions", "approve", "1", "--actor", "citra", code=1)  # once only

        _cli(config, "actions", "request", "discard", discard_id, "--why", "pensiun",
             "--actor", "budi")  # fmt: skip
        _cli(config, "actions", "approve", "2", "--actor", "ana")
        assert _status(state_url, discarded) is RecordStatus.CANCELLED
        _cli(config, "actions", "request", "reset", "--period", PERIOD, "--why", "PMM restored",
             "--actor", "ana")  # fmt: skip
        _cli(config, "actions", "approve", "3", "--actor", "budi")
        _cli(config, "actions", "request", "mapping", "--period", PERIOD, "--to", "2026.2",
             "--why", "PermenPAN 2026", "--actor", "ana")  # fmt: skip
        switched = _cli(config, "actions", "approve", "4", "--actor", "budi")
        assert "synced with mapping 2026.2" in switched
        every = _cli(config, "actions", "list", "--all", "--json")
        assert [(r["action"], r["state"], r["requested_by"], r["approved_by"]) for r in every] == [
            ("replay", "done", "ana", "budi"),
            ("discard", "done", "budi", "ana"),
            ("reset", "done", "ana", "budi"),
            ("mapping", "done", "ana", "budi"),
        ]
        assert _cli(config, "actions", "list", "--json") == []

    entries = _ledger(state_url)
    approvals = [e for e in entries if e[1] == "change_approve"]
    assert [a[0] for a in approvals] == [
        "operator:budi",
        "operator:ana",
        "operator:budi",
        "operator:budi",
    ]
    assert "operator:ana" in (approvals[0][2] or "")  # both names
    discard = next(e for e in entries if e[1] == "discard")
    assert discard[0] == "operator:ana"
    assert "request #2 of operator:budi, approved by operator:ana" in (discard[2] or "")
    assert ("operator:budi", "replay") in [(e[0], e[1]) for e in entries]


def test_seal_prove_check_reopen_and_seal_again(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'state.db'}"
    world = generate_world(schools=2, teachers_per_school=4, seed=5, periods=[PERIOD])
    nip = _gurus(world, 1)[0]
    with running_sandbox(world) as box:
        config = _config(tmp_path / "c.toml", sqlite_url, box.pmm_url, box.ekinerja_url)
        _cli(config, "run", "--create-store", "--period", PERIOD)
        said = _cli(config, "periods", "seal", PERIOD, code=1)
        assert "close it first" in said
        _cli(config, "periods", "close", PERIOD, "--why", "selesai", "--actor", "ana")
        key = tmp_path / "seal-key.pem"
        key.write_bytes(generate_private_key_pem())
        public = tmp_path / "seal-key.pub"
        public.write_text(_cli(config, "periods", "public-key", "--key", str(key)))
        first = tmp_path / "seal-1.json"
        printed = _cli(
            config, "periods", "seal", PERIOD, "--key", str(key), "--out", str(first),
            "--actor", "ana",
        )  # fmt: skip
        assert printed == first.read_text(encoding="utf-8")
        seal1 = from_json(first.read_text(encoding="utf-8"))
        assert seal1.signature is not None

        # One teacher's proof, checked by the CLI and by the stdlib script.
        proof = tmp_path / "proof.json"
        _cli(config, "ledger", "prove", "--period", PERIOD, "--nip", nip, "--out", str(proof))
        checked = _cli(config, "ledger", "check-proof", str(proof), "--seal", str(first),
                       "--public-key", str(public))  # fmt: skip
        assert checked.startswith(f"OK: the 2 entries of NIP {nip}")
        assert "signature good" in checked
        script = subprocess.run(
            [sys.executable, str(SCRIPT), str(proof), str(first)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (script.returncode, script.stdout.strip()) == (
            0,
            "OK: 2 entries are in the sealed tree",
        )
        # A changed answer fails both.
        forged = json.loads(proof.read_text(encoding="utf-8"))
        forged["entries"][0]["fields"]["http_status"] = 200
        bad = tmp_path / "forged.json"
        bad.write_text(json.dumps(forged), encoding="utf-8")
        said = _cli(config, "ledger", "check-proof", str(bad), "--seal", str(first), code=1)
        assert "was changed" in said
        assert subprocess.run([sys.executable, str(SCRIPT), str(bad)], check=False).returncode

        # Sealed: no change, not even a request; a reopen by two people.
        said = _cli(config, "actions", "request", "reset", "--period", PERIOD, "--why", "x",
                    "--actor", "ana", code=1)  # fmt: skip
        assert "sealed" in said
        _cli(config, "periods", "reopen", PERIOD, "--why", "koreksi", "--actor", "ana")
        _cli(config, "actions", "approve", "1", "--actor", "budi")
        assert _cli(config, "periods", "list", "--json")[0]["state"] == "open"
        _cli(config, "run", "--period", PERIOD)
        _cli(config, "periods", "close", PERIOD, "--why", "koreksi selesai", "--actor", "budi")
        second = tmp_path / "seal-2.json"
        _cli(config, "periods", "seal", PERIOD, "--key", str(key), "--out", str(second))
        seal2 = from_json(second.read_text(encoding="utf-8"))
        assert seal2.previous is not None
        assert seal2.previous.count == seal1.count
        assert check_extends(seal1, seal2) == []
        said = _cli(config, "ledger", "check-seal", str(second), "--extends", str(first),
                    "--public-key", str(public))  # fmt: skip
        assert "signature good" in said
        assert "those entries are the first of this seal, unchanged" in said
        # A seal over a rewritten history does not extend the first one.
        rewritten = json.loads(second.read_text(encoding="utf-8"))
        rewritten["previous"]["consistency"][0] = "0" * 64
        (tmp_path / "seal-x.json").write_text(json.dumps(rewritten), encoding="utf-8")
        said = _cli(config, "ledger", "check-seal", str(tmp_path / "seal-x.json"),
                    "--extends", str(first), code=1)  # fmt: skip
        assert "history was rewritten" in said
        # The old proof is of the old seal; a new one is of the new seal.
        said = _cli(config, "ledger", "check-proof", str(proof), "--seal", str(second), code=1)
        assert "differs from the seal file" in said
        _cli(config, "ledger", "prove", "--period", PERIOD, "--nip", nip, "--out", str(proof))
        _cli(config, "ledger", "check-proof", str(proof), "--seal", str(second))
