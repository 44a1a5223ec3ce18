"""School messages when things go wrong (issue 25), on SQLite and PostgreSQL: an SMTP server
that refuses never stops a sync and the message goes later; a sender killed with SIGKILL
while sending never sends the same content twice."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import httpx
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox import running_sandbox
from connectors.sandbox.contacts import school_addresses
from connectors.sandbox.mailsink import MailSink, running_mail_sink
from state.db import make_engine
from state.ledger import LedgerEntry
from state.notices import SchoolNotice
from sync.bootstrap import build_store
from sync.cli import app
from sync.notify.build import build_notifier
from sync.settings import load_settings
from tests.e2e.notify_helpers import PERIOD, world_with_a_clean_school, write_config

runner = CliRunner()


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.output


def _told(sink: MailSink, schools: list[dict[str, str]]) -> dict[str, int]:
    return {
        s["npsn"]: len(sink.to(school_addresses(s["npsn"], i)[0])) for i, s in enumerate(schools)
    }


def _import_contacts(config: Path, pmm_url: str, tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(httpx.get(f"{pmm_url}/_sandbox/contacts.csv").text)
    code, out = _cli(config, "schools", "contacts", "import", str(contacts))
    assert code == 0, out


def test_a_refusing_smtp_server_never_blocks_the_sync_and_the_message_goes_later(
    state_url: str, tmp_path: Path
) -> None:
    world, clean = world_with_a_clean_school()
    with running_sandbox(world) as box, running_mail_sink(tmp_path / "mail") as sink:
        config = write_config(
            tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url, sink.port
        )
        sink.refuse = "451 4.3.0 mail system busy, try again later"
        code, out = _cli(config, "run", "--create-store", "--period", PERIOD)
        assert code in (0, 1), out
        _import_contacts(config, box.pmm_url, tmp_path)
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 1, out
        assert "waiting for a later send: 3" in out
        assert sink.received == []
        # The sync goes on as before: a second run completes, the refusal changes nothing.
        delivered = box.target.stats()["skp_created"]
        assert delivered > 0
        code, out = _cli(config, "run", "--period", PERIOD)
        assert code in (0, 1), out
        code, out = _cli(config, "schools", "messages", "--period", PERIOD, "--json")
        rows = json.loads(out)
        assert {r["state"] for r in rows} == {"pending"}
        # The first message was tried (3 times) and refused; the channel was then taken as
        # down for this send: the others were not tried at all.
        answers = [r["answer"] for r in rows if r["answer"]]
        assert len(answers) == 1
        assert "451" in answers[0]

        sink.refuse = None
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 0, out
        told = _told(sink, world.schools)
    assert told == {s["npsn"]: (0 if s["npsn"] == clean else 1) for s in world.schools}
    engine = make_engine(state_url)
    with Session(engine) as session:
        outcomes = [
            e.outcome for e in session.exec(select(LedgerEntry)) if e.action == "notify_school"
        ]
    engine.dispose()
    # The first message's three tries in the first send (the others waited), then each sent.
    assert outcomes.count("retry") == 3
    assert outcomes.count("sent") == 3


def _send_in_child(config: str) -> None:
    app(["--config", config, "schools", "actions", "--period", PERIOD, "--send"])


def test_killed_while_sending_never_sends_the_same_content_twice(
    state_url: str, tmp_path: Path
) -> None:
    world, clean = world_with_a_clean_school()
    with running_sandbox(world) as box, running_mail_sink(tmp_path / "mail") as sink:
        config = write_config(
            tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url, sink.port
        )
        code, out = _cli(config, "run", "--create-store", "--period", PERIOD)
        assert code in (0, 1), out
        _import_contacts(config, box.pmm_url, tmp_path)
        # The sink keeps the first message, then holds its "250" back: the sender is killed
        # after the message left and before it heard so (the hardest moment).
        sink.reply_delay_s = 30
        child = multiprocessing.get_context("fork").Process(
            target=_send_in_child, args=(str(config),)
        )
        child.start()
        deadline = time.monotonic() + 60
        while not sink.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sink.received) == 1
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        sink.reply_delay_s = 0
        first = sink.received[0].recipients[0]

        # Sent again at once: the message being sent is left alone, the others go.
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 0, out
        # Long after: the abandoned message is found, marked uncertain, and not sent again.
        settings = load_settings(config)
        store = build_store(settings, create=False)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        with build_notifier(settings, store, actor="cli", clock=lambda: later) as notifier:
            outcome = notifier.send_due([PERIOD])
        assert outcome.counts == {("email", "uncertain"): 1}
        with build_notifier(settings, store, actor="cli", clock=lambda: later) as notifier:
            assert notifier.send_due([PERIOD]).counts == {}
            assert notifier.plan(PERIOD, later.date()).messages == []
        told = _told(sink, world.schools)
        with Session(store.engine) as session:
            states = {(n.npsn, n.state) for n in session.exec(select(SchoolNotice))}
            uncertain = [
                e
                for e in session.exec(select(LedgerEntry))
                if e.action == "notify_school" and e.outcome == "uncertain"
            ]
        store.engine.dispose()
    assert told == {s["npsn"]: (0 if s["npsn"] == clean else 1) for s in world.schools}
    assert len(sink.received) == 3
    assert len(uncertain) == 1
    assert first in (uncertain[0].detail or "")
    assert sorted(state for _npsn, state in states) == ["sent", "sent", "uncertain"]
