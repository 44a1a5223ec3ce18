"""state.lifecycle on SQLite and PostgreSQL: a period goes open -> closed -> sealed, a change
request needs a second person, each transition is in the ledger, and a seal after a reopen
extends the earlier one (issue 26)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from state import ledger
from state.change_requests import ChangeAction, ChangeRequests, RequestState
from state.ledger import LedgerEvent
from state.lifecycle import Lifecycle, LifecycleRefused, PeriodState, same_person
from state.proof import build_proof, check_proof
from state.seal import check_extends, generate_private_key_pem, load_private_key, verify_signature

PERIOD, OTHER = "2025-1", "2025-2"
NIP = "198503152010012003"
T0 = dt.datetime(2025, 7, 2, 3, 4, 5, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def _deliveries(engine: Engine, n: int, period: str = PERIOD) -> None:
    with Session(engine) as session:
        for i in range(n):
            ledger.append(
                session,
                LedgerEvent(
                    actor="daemon",
                    action="create_skp",
                    outcome="delivered",
                    period=period,
                    nip=NIP if i % 2 == 0 else f"19900101201501100{i % 10}",
                    http_status=201,
                    answer_body={"id": f"skp-{i}"},
                ),
                at=T0,
            )
        session.commit()


def _entries(engine: Engine) -> list[tuple[str, str, str | None, str | None]]:
    with Session(engine) as session:
        return [
            (e.actor, e.action, e.period, e.detail)
            for e in ledger.query(session)
            if e.action not in ("create_skp",)
        ]


def test_a_period_closes_once_and_says_who_why_and_when(engine: Engine) -> None:
    lifecycle = Lifecycle(engine, clock=Clock())
    assert lifecycle.status(PERIOD).state is PeriodState.OPEN
    closed = lifecycle.close(PERIOD, by="ana", why="batas penilaian lewat")
    assert closed.state is PeriodState.CLOSED
    assert (closed.changed_by, closed.why) == ("ana", "batas penilaian lewat")
    assert closed.changed_at is not None
    assert closed.changed_at > T0
    assert "closed by ana on 2025-07-02" in closed.since()
    with pytest.raises(LifecycleRefused) as refused:
        lifecycle.close(PERIOD, by="budi", why="again")
    assert refused.value.code == "not_open"
    assert "already closed by ana" in refused.value.message
    assert lifecycle.not_sending([PERIOD, OTHER]) == {PERIOD: lifecycle.status(PERIOD)}
    assert _entries(engine) == [
        ("operator:ana", "period_close", PERIOD, "batas penilaian lewat"),
    ]
    with Session(engine) as session:
        assert ledger.verify(session).ok


def test_a_request_needs_a_second_person(engine: Engine) -> None:
    lifecycle = Lifecycle(engine, clock=Clock())
    requests = ChangeRequests(lifecycle)
    with pytest.raises(LifecycleRefused) as refused:
        requests.add(PERIOD, ChangeAction.RESET, [], by="ana", why="x")
    assert refused.value.code == "open"  # an open period needs no request
    lifecycle.close(PERIOD, by="ana", why="done")
    request = requests.add(
        PERIOD, ChangeAction.REPLAY, [f"{PERIOD}/{NIP}/skp"], by="ana", why="BKN fixed the NIP"
    )
    assert request.state == RequestState.PENDING
    assert [r.id for r in requests.requests()] == [request.id]
    assert requests.pending_counts() == {PERIOD: 1}
    assert request.id is not None
    for me in ("ana", "operator:ana", "Ana"):
        with pytest.raises(LifecycleRefused) as refused:
            requests.approve(request.id, by=me)
        assert refused.value.code == "own_request"
    approved = requests.approve(request.id, by="citra")
    assert (approved.state, approved.approved_by) == (RequestState.APPROVED, "citra")
    with pytest.raises(LifecycleRefused) as refused:
        requests.approve(request.id, by="dewi")  # once only
    assert refused.value.code == "not_pending"
    done = requests.finish(request.id, ok=True, result="delivered")
    assert done.state == RequestState.DONE
    assert requests.requests() == []
    actions = _entries(engine)
    assert [a[:2] for a in actions] == [
        ("operator:ana", "period_close"),
        ("operator:ana", "change_request"),
        ("operator:citra", "change_approve"),
        ("operator:citra", "change_done"),
    ]
    # Both names in the ledger: the approver as actor, the requester in the detail.
    assert "operator:ana" in (actions[2][3] or "")
    assert "operator:ana" in (actions[3][3] or "")
    assert "operator:citra" in (actions[3][3] or "")
    with pytest.raises(LifecycleRefused) as refused:
        requests.approve(9999, by="citra")
    assert refused.value.code == "unknown_request"


def test_seal_reopen_and_seal_again_extends_the_first_seal(engine: Engine) -> None:
    lifecycle = Lifecycle(engine, clock=Clock())
    requests = ChangeRequests(lifecycle)
    _deliveries(engine, 7)
    _deliveries(engine, 3, period=OTHER)
    with pytest.raises(LifecycleRefused) as refused:
        lifecycle.seal(PERIOD, by="ana")
    assert refused.value.code == "not_closed"
    lifecycle.close(PERIOD, by="ana", why="done")
    key = generate_private_key_pem()
    first = lifecycle.seal(PERIOD, by="ana", private_key_pem=key)
    assert first.count == 8  # 7 deliveries and the close; not the other period's
    assert first.previous is None
    assert verify_signature(first, load_private_key(key).public_key())
    status = lifecycle.status(PERIOD)
    assert status.state is PeriodState.SEALED
    assert status.seal == first
    with pytest.raises(LifecycleRefused) as refused:
        lifecycle.seal(PERIOD, by="ana")
    assert refused.value.code == "already_sealed"
    # Sealed: no change is even asked for, only a reopen.
    with pytest.raises(LifecycleRefused) as refused:
        requests.add(PERIOD, ChangeAction.DISCARD, ["x"], by="ana", why="x")
    assert refused.value.code == "sealed"
    assert "reopen" in refused.value.message

    reopen = requests.add(PERIOD, ChangeAction.REOPEN, [], by="ana", why="koreksi")
    assert reopen.id is not None
    requests.approve(reopen.id, by="budi")
    opened = lifecycle.reopen(
        PERIOD, request_id=reopen.id, requested_by="ana", approved_by="budi", why="koreksi"
    )
    requests.finish(reopen.id, ok=True, result="reopened")
    assert opened.state is PeriodState.OPEN
    assert opened.seal == first
    _deliveries(engine, 2)
    lifecycle.close(PERIOD, by="budi", why="koreksi selesai")
    second = lifecycle.seal(PERIOD, by="budi")
    assert second.previous is not None
    assert second.previous.count == first.count
    assert check_extends(first, second) == []
    assert second.count > first.count

    # A teacher's proof under the second seal holds, built from what the store gives.
    seal, leaves, rows = lifecycle.proof_material(PERIOD, NIP)
    assert seal == second
    proof = build_proof(second, leaves, rows, nip=NIP)
    assert check_proof(proof, second) == []
    assert len(proof["entries"]) == 5  # 4 of the first deliveries, 1 of the later ones
    with Session(engine) as session:
        assert ledger.verify(session).ok


def test_a_proof_needs_a_seal(engine: Engine) -> None:
    assert Lifecycle(engine).proof_material(PERIOD, NIP) == (None, [], [])


def test_same_person() -> None:
    assert same_person("ana", "operator:ana")
    assert same_person("Ana", "ana ")
    assert not same_person("ana", "anna")
