"""School contacts in the state store (SQLite and PostgreSQL): an import, a set and a removal
each write the ledger, naming who; the same file again writes nothing; a webhook URL's token
never reaches the ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine
from sqlmodel import Session, select

from state import ledger
from state.ledger import LedgerEntry
from state.schools import SchoolContact
from state.store import StateStore
from sync.operations.contacts import import_csv, remove_contact, set_contact

T0 = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)
FILE = (
    "npsn,email,webhook_url\n"
    "20100001,tu@sd1.sch.id,https://hooks.example.org/T00/B00/tokenPart123456789abcdef\n"
    "20100002,ops@sd2.sch.id\n"
    "20100003,broken\n"
)


def _entries(engine: Engine) -> list[LedgerEntry]:
    with Session(engine) as session:
        return [e for e in session.exec(select(LedgerEntry)) if e.action.startswith("contact")]


def test_import_set_remove_each_in_the_ledger(engine: Engine) -> None:
    store = StateStore(engine)
    result = import_csv(store, FILE, actor="operator:rina", clock=lambda: T0)
    assert [(c.npsn, c.outcome) for c in result.changes] == [
        ("20100001", "added"),
        ("20100002", "added"),
    ]
    assert [r.line for r in result.refused] == [4]
    written = _entries(engine)
    assert [(e.action, e.npsn, e.actor) for e in written] == [
        ("contact_import", "20100001", "operator:rina"),
        ("contact_import", "20100002", "operator:rina"),
    ]
    assert "tokenPart" not in (written[0].detail or "")
    assert "https://hooks.example.org/" in (written[0].detail or "")

    again = import_csv(store, FILE, actor="operator:rina", clock=lambda: T0)
    assert {c.outcome for c in again.changes} == {"unchanged"}
    assert len(_entries(engine)) == 2

    change = set_contact(
        store,
        "20100002",
        emails=["ops@sd2.sch.id", "kepsek@sd2.sch.id"],
        webhook_url=None,
        keep_webhook=True,
        actor="operator:budi",
        clock=lambda: T0,
    )
    assert change.outcome == "changed"
    assert remove_contact(store, "20100001", actor="operator:budi", clock=lambda: T0)
    assert not remove_contact(store, "20100001", actor="operator:budi", clock=lambda: T0)
    tail = _entries(engine)[2:]
    assert [(e.action, e.npsn, e.actor) for e in tail] == [
        ("contact_set", "20100002", "operator:budi"),
        ("contact_remove", "20100001", "operator:budi"),
    ]
    assert "was: e-mail: ops@sd2.sch.id" in (tail[0].detail or "")
    with Session(engine) as session:
        rows = {r.npsn: r.emails for r in session.exec(select(SchoolContact))}
        assert ledger.verify(session).ok
    assert rows == {"20100002": ["ops@sd2.sch.id", "kepsek@sd2.sch.id"]}
