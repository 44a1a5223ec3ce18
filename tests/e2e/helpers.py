"""Test oracle and wiring for the end-to-end tests (real HTTP over loopback)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from connectors.sandbox import Sandbox, SandboxWorld
from sync.bootstrap import App, build_app
from sync.settings import load_settings


@contextmanager
def app_for(box: Sandbox, state_url: str, **sections: dict[str, Any]) -> Iterator[App]:
    overrides: dict[str, dict[str, Any]] = {
        "state": {"url": state_url},
        "source": {"base_url": box.pmm_url, "page_size": 50},
        "target": {"base_url": box.ekinerja_url, "rate_limit_per_s": 0},
        "retry": {"initial_backoff_s": 0.01, "max_backoff_s": 0.2, "max_attempts": 5},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    with build_app(load_settings(None, overrides=overrides)) as app:
        yield app


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@dataclass
class Expected:
    """What the target must hold after a full sync, worked out from the sandbox's own data
    independently of the engine: key "<nip>/<period>" (``…/2024-2``, ``…/2026``) -> 1 for each
    SKP and penilaian that must be created exactly once."""

    skp: dict[str, int]
    assessment: dict[str, int]
    held: set[str]  # NIPs whose SKP must wait for their penilai's SKP
    defects: set[str]  # source ids that must be quarantined


def expected_after_sync(world: SandboxWorld, period: str) -> Expected:
    defects = {d.source_id for d in world.defects}
    by_nip: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in world.records(period):
        by_nip[record["pegawai"]["nip"]].append(record)
    effective: dict[str, dict[str, Any]] = {}
    for nip, records in by_nip.items():
        live = [r for r in records if not r["dibatalkan"]]
        if not live:
            continue
        latest = max(live, key=lambda r: (_instant(r["diperbarui_pada"]), r["id"]))
        if latest["id"] in defects:
            continue
        if latest["perencanaan"]["disetujui_pada"] is None:
            continue
        effective[nip] = latest
    # A penilai's SKP must be on the target first: pengawas already are; kepala sekolah only
    # if their own SKP goes.
    on_target = set(world.assessor_nips_outside_sync)
    principals = {
        nip for nip, r in effective.items() if r["pegawai"]["jenis_ptk"] == "kepala_sekolah"
    }
    on_target |= {nip for nip in principals if effective[nip]["penilai"]["nip"] in on_target}
    skp, assessment, held = {}, {}, set()
    for nip, record in effective.items():
        key = f"{nip}/{period}"
        if record["penilai"]["nip"] not in on_target:
            held.add(nip)
            continue
        skp[key] = 1
        if record["penilaian"]["status"] == "final":
            assessment[key] = 1
    return Expected(skp, assessment, held, defects)


def refusals(state_url: str) -> list[tuple[str, int, str | None]]:
    """Every attempt e-Kinerja refused (4xx), from the ledger: (outcome, status, kode).

    With two workers, none is expected where every penilai's SKP goes: a guru's SKP waits
    for its penilai's while that one is on its way, and for its kepala sekolah's record
    while the other worker still walks the period (``tests/service/test_workers.py``), so
    no SKP reaches e-Kinerja before its penilai's (409 PENILAI_BELUM_ADA_SKP)."""
    from sqlalchemy import text

    from state.db import make_engine

    engine = make_engine(state_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT outcome, http_status, answer_body FROM ledger_entry "
                    "WHERE http_status >= 400 AND http_status < 500"
                )
            ).all()
    finally:
        engine.dispose()
    return [(outcome, status, _kode(body)) for outcome, status, body in rows]


def _kode(body: str) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:  # an answer without a JSON body is kept as its message
        return None
    return answer.get("kode") if isinstance(answer, dict) else None
