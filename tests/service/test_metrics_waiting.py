"""The store's gauges at a scrape (issue 23 item 4): ``outbox_depth`` counts only the requests
that can be sent now, so "not draining" means e-Kinerja, never a record that waits on a person;
``waiting_records`` says who must act, by reason (a penilaian behind a refused SKP, ...)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from connectors.sandbox import Faults, generate_world
from state.models import DeliveryKind, RecordStatus
from state.store import StateStore
from sync.service.health import StoreCollector
from tests.e2e.helpers import expected_after_sync
from tests.service.harness import InProcessSandbox, app_for, outbox_of, record_of

Box = Callable[..., InProcessSandbox]
PERIOD = "2025-1"


def _samples(store: StateStore, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one gauge: {sorted labels: value}."""
    for family in StoreCollector(store).collect():
        if family.name == f"ekinerja_sync_{name}":
            return {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    raise AssertionError(f"no gauge {name}")


def test_outbox_depth_counts_what_can_go_and_waiting_records_say_who_must_act(
    sandbox: Box, state_url: str
) -> None:
    world = generate_world(schools=2, teachers_per_school=6, seed=21, periods=[PERIOD])
    expected = expected_after_sync(world, PERIOD)
    guru = next(
        r
        for r in world.records(PERIOD)
        if r["pegawai"]["jenis_ptk"] == "guru"
        and f"{r['pegawai']['nip']}/{PERIOD}" in expected.assessment
    )
    nip = guru["pegawai"]["nip"]
    faults = Faults(unknown_nips={nip})
    box = sandbox(world, faults=faults)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with app_for(box, state_url) as app:
        # e-Kinerja unreachable: every planned request can go as soon as it answers.
        box.intercept(refused)
        assert app.engine.run(PERIOD).target_unreachable
        planned = len(expected.skp) + len(expected.assessment)
        depth = _samples(app.store, "outbox_depth")
        assert depth == {(("period", PERIOD),): planned}

    # It answers, and refuses the guru's SKP: its penilaian waits for a replay of the SKP,
    # with its request still in the outbox, but nothing is left that can go.
    box.intercept(None)
    with app_for(box, state_url) as app:  # a new start: the circuit breaker closed
        app.engine.run(PERIOD)
        assert record_of(app, PERIOD, nip, DeliveryKind.SKP).status is RecordStatus.FAILED
        assert record_of(app, PERIOD, nip, DeliveryKind.ASSESSMENT).status is (RecordStatus.WAITING)
        assert [e.state.value for e in outbox_of(app, PERIOD, nip, DeliveryKind.ASSESSMENT)] == [
            "pending"
        ]
        assert _samples(app.store, "outbox_depth") == {(("period", PERIOD),): 0}
        waiting = _samples(app.store, "waiting_records")
        key = (("kind", "assessment"), ("period", PERIOD), ("reason", "skp_failed"))
        assert waiting[key] == 1
        assert waiting[(("kind", "skp"), ("period", PERIOD), ("reason", "failed"))] == 1
        assert waiting[(("kind", "skp"), ("period", PERIOD), ("reason", "penilai_missing"))] == 0
        # Draft penilaian wait on their penilai: as many as the run reported waiting.
        drafts = sum(
            1
            for r in app.store.reports.records(PERIOD)
            if r.kind is DeliveryKind.ASSESSMENT
            and r.status is RecordStatus.WAITING
            and r.nip != nip
        )
        assert waiting[(("kind", "assessment"), ("period", PERIOD), ("reason", "not_final"))] == (
            drafts
        )
