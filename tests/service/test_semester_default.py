"""The default mapping of a semester (issue 23): a store that has delivered nothing for a
semester uses 2026.2 for it (months from tmt_jabatan, 3 decimals, the local date); a store
that delivered a semester with 2025.1 keeps it, sending nothing anew, until the operator
names another version in the config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from connectors.sandbox import generate_world
from sync.cli import app as cli
from tests.service.harness import InProcessSandbox, app_for, ledger_entries

Box = Callable[..., InProcessSandbox]
PERIOD = "2024-2"


def test_a_new_store_sends_a_semester_with_2026_2(sandbox: Box, sqlite_url: str) -> None:
    world = generate_world(schools=3, teachers_per_school=6, seed=23, periods=[PERIOD])
    promoted = next(
        r
        for r in world.records(PERIOD)
        if r["penilaian"]["status"] == "final"
        and r["pegawai"]["jenjang_jabatan"] == "ahli_muda"
        and r["penilaian"]["hasil"]["predikat"] == "baik"
    )
    # Took up the jabatan on 1 October 2024: October to December count, 3 months.
    world.update_record(promoted["id"], lambda r: r["pegawai"].update(tmt_jabatan="2024-10-01"))
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        summary = app.engine.run(PERIOD)
        assert (summary.kind, summary.mapping_version) == ("semester", "2026.2")
        assert app.store.periods.mapping(PERIOD) == "2026.2"
        sent = {
            (e.nip, e.kind): json.loads(e.request_body or "{}")
            for e in ledger_entries(app, period=PERIOD)
            if e.outcome == "delivered"
        }
    skps = [b for (_nip, kind), b in sent.items() if kind == "skp"]
    assert skps
    assert {b["periode"]["jenis"] for b in skps} == {"semester"}
    # An Ahli Muda with BAIK: 25 x 100 % x 3 / 12 = 6.25, with the months it counts (2025.1
    # would send 12.5 for 6 months).
    penilaian = sent[(promoted["pegawai"]["nip"], "assessment")]
    assert (penilaian["angka_kredit"], penilaian["bulan_dinilai"]) == (6.25, 3)


def test_a_store_that_delivered_a_semester_with_2025_1_keeps_it_until_the_switch(
    sandbox: Box, sqlite_url: str, tmp_path: Path
) -> None:
    world = generate_world(schools=3, teachers_per_school=6, seed=29, periods=[PERIOD])
    box = sandbox(world)
    # The store as a release before issue 23 left it: the semester delivered with 2025.1
    # (its default then; named here, since this release's default is 2026.2).
    with app_for(box, sqlite_url, sync={"mapping_versions": {"semester": "2025.1"}}) as app:
        assert app.engine.run(PERIOD).mapping_version == "2025.1"
    assert app.store.periods.mapping(PERIOD) is None  # nothing recorded for a configured kind
    before = box.target.stats()
    with app_for(box, sqlite_url) as app:  # upgraded, the config names no version
        again = app.engine.run(PERIOD)
        assert again.mapping_version == "2025.1"
        assert again.requests_sent == 0
        assert app.store.periods.mapping(PERIOD) == "2025.1"
    assert box.target.stats()["requests"] == before["requests"]
    # `mappings diff` names the period's own version as the active one, not the default.
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "{sqlite_url}"\n', encoding="utf-8")
    diff = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "mappings",
            "diff",
            "--period",
            PERIOD,
            "--to",
            "2026.2",
            "--json",
        ],
    )
    assert json.loads(diff.stdout)["active"] == "2025.1", diff.output
    # The operator's switch: the config names 2026.2 for semesters.
    with app_for(box, sqlite_url, sync={"mapping_versions": {"semester": "2026.2"}}) as app:
        switched = app.engine.run(PERIOD)
        assert switched.mapping_version == "2026.2"
        assert switched.count("skp", "updated") + switched.count("skp", "locked") > 0
