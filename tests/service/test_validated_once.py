"""A record is validated once (issue 24): the ingester validates each record it reads and
hands the valid model on; planning reads no stored body of a record the run has just read:
on a first run, on a run after changes, and when the record that counts came unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

import sync.pipeline.ingest
import sync.pipeline.planner
from connectors.sandbox import generate_world
from mappings.source import Rejection, read_record
from state.models import DeliveryKind
from tests.service.harness import InProcessSandbox, app_for, record_of

Box = Callable[..., InProcessSandbox]
PERIOD = "2026"


def _counting(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many records the ingester and the planner validate (``read_record`` calls)."""
    calls: Counter[str] = Counter()
    for module in (sync.pipeline.ingest, sync.pipeline.planner):
        where = module.__name__.rpartition(".")[2]

        def counted(raw: object, where: str = where) -> object:
            calls[where] += 1
            return read_record(raw)

        monkeypatch.setattr(module, "read_record", counted)
    return calls


def test_each_record_a_run_reads_is_validated_once(
    sandbox: Box, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = generate_world(schools=6, teachers_per_school=30, seed=3, periods=[PERIOD])
    calls = _counting(monkeypatch)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        first = app.engine.run(PERIOD)
        assert first.pulled == len(world.records(PERIOD))
        assert calls == Counter(ingest=first.pulled)  # none again from the store
        calls.clear()

        # A teacher gets a record at a second school (a move), and another record changes.
        mover, other = world.records(PERIOD)[:2]
        moved = {**mover, "id": "", "sekolah": other["sekolah"]}
        world.add_record(moved)
        world.update_record(other["id"], lambda r: r["pegawai"].update(nama="Nama Baru"))
        again = app.engine.run(PERIOD)
        # The two read now, and the quarantine checked again with this release's rules.
        assert calls == Counter(ingest=again.pulled + again.quarantined)
        assert calls["planner"] == 0


def test_a_record_served_again_unchanged_is_planned_as_read(
    sandbox: Box, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk reads on from its cursor's instant, so the newest record comes again,
    unchanged; a cancelled record of the same teacher beside it leaves it the one that counts,
    and the planner takes it as the ingester read it."""
    world = generate_world(schools=2, teachers_per_school=4, seed=5, periods=[PERIOD])
    valid = [r for r in world.records(PERIOD) if not isinstance(read_record(r), Rejection)]
    teacher = next(r for r in valid if not r["dibatalkan"])
    elsewhere = next(r for r in valid if r["sekolah"]["npsn"] != teacher["sekolah"]["npsn"])
    calls = _counting(monkeypatch)
    box = sandbox(world)
    with app_for(box, sqlite_url) as app:
        newest = world.update_record(teacher["id"], lambda r: r["pegawai"].update(nama="Baru"))
        app.engine.run(PERIOD)
        calls.clear()
        world.add_record({**newest, "id": "", "sekolah": elsewhere["sekolah"], "dibatalkan": True})
        again = app.engine.run(PERIOD)
        assert again.pulled == 2  # the newest again, unchanged, and the cancelled one
        assert calls["planner"] == 0
        nip = teacher["pegawai"]["nip"]
        assert record_of(app, PERIOD, nip, DeliveryKind.SKP).source_id == teacher["id"]
