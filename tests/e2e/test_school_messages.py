"""Each school told what only it can fix (issue 25), end to end on SQLite and PostgreSQL: the
sandbox's APIs, a real SMTP server (aiosmtpd, the sandbox's mail sink) and a real webhook
receiver on loopback, through the CLI as an operator runs it."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import httpx
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox import running_sandbox
from connectors.sandbox.contacts import school_addresses
from connectors.sandbox.mailsink import MailSink, running_mail_sink
from connectors.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from state.db import make_engine
from state.ledger import LedgerEntry
from state.notices import SchoolNotice
from sync.cli import app
from tests.e2e.notify_helpers import (
    PERIOD,
    SECRET,
    make_final,
    waiting_ids,
    webhook_receiver,
    world_with_a_clean_school,
    write_config,
)

runner = CliRunner()
ENV = {"EKINERJA_SYNC_NOTIFY__WEBHOOK__SECRET": SECRET}


def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(config), *args], env=ENV)
    return result.exit_code, result.output


def _per_school(sink: MailSink, world_schools: list[dict[str, str]]) -> dict[str, int]:
    counts = {}
    for index, school in enumerate(world_schools):
        address = school_addresses(school["npsn"], index)[0]
        counts[school["npsn"]] = len(sink.to(address))
    return counts


def test_each_affected_school_is_told_once_and_a_fix_drops_the_record(
    state_url: str, tmp_path: Path
) -> None:
    world, clean = world_with_a_clean_school()
    schools = world.schools
    with (
        running_sandbox(world) as box,
        running_mail_sink(tmp_path / "mail") as sink,
        webhook_receiver() as hook,
    ):
        config = write_config(
            tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url, sink.port
        )
        code, out = _cli(config, "run", "--create-store", "--period", PERIOD)
        assert code in (0, 1), out
        contacts = tmp_path / "contacts.csv"
        contacts.write_text(httpx.get(f"{box.pmm_url}/_sandbox/contacts.csv").text)
        code, out = _cli(config, "schools", "contacts", "import", str(contacts))
        assert code == 0, out
        affected = sorted(s["npsn"] for s in schools if s["npsn"] != clean)
        hooked = affected[0]
        code, out = _cli(config, "schools", "contacts", "set", hooked, "--webhook-url", hook.url)
        assert code == 0, out

        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--json")
        lists = {s["npsn"]: s for s in json.loads(out)["schools"]}
        assert sorted(lists) == affected, "every other school has something to fix"

        # A dry run says who would be told, and writes and sends nothing.
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send", "--dry-run")
        assert code == 0, out
        assert f"{len(affected) + 1} new messages would be sent" in out
        assert sink.received == []
        assert (
            json.loads(_cli(config, "schools", "messages", "--period", PERIOD, "--json")[1]) == []
        )

        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 0, out
        told = _per_school(sink, schools)
        assert told == {s["npsn"]: (0 if s["npsn"] == clean else 1) for s in schools}
        for index, school in enumerate(schools):
            # The school's second address, where it has one, is on the same message.
            for address in school_addresses(school["npsn"], index)[1:]:
                assert len(sink.to(address)) == told[school["npsn"]]
        assert (tmp_path / "mail").is_dir()
        assert len(list((tmp_path / "mail").glob("*.eml"))) == len(affected)
        # The webhook: one signed JSON message, the same list.
        assert len(hook.received) == 1
        headers, body = hook.received[0]
        expected = hmac.new(
            SECRET.encode(), headers[TIMESTAMP_HEADER].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
        payload = json.loads(body)
        assert payload["npsn"] == hooked
        assert payload["content_hash"] == lists[hooked]["content_hash"]
        # Only what the school holds: no reason text from e-Kinerja, no secret.
        assert SECRET not in body.decode()
        assert "What to do" not in body.decode()

        # Nothing changed: sending again tells nobody.
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 0, out
        assert _per_school(sink, schools) == told
        assert len(hook.received) == 1

        # A school fixes one record in PMM; the next run reads it; its next message no
        # longer lists that teacher, and only that school is told.
        defects = {d.source_id for d in world.defects}
        fixable, fixed_id = next(
            (npsn, source_id)
            for npsn in affected
            if npsn != hooked
            for source_id in waiting_ids(world, npsn)
            if source_id not in defects
            and world.record(source_id)["pegawai"]["nip"]
            in {item["nip"] for item in lists[npsn]["items"]}
        )
        fixed_nip = world.record(fixed_id)["pegawai"]["nip"]
        world.update_record(fixed_id, make_final)
        code, out = _cli(config, "run", "--period", PERIOD)
        code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
        assert code == 0, out
        again = _per_school(sink, schools)
        assert again == {n: told[n] + (1 if n == fixable else 0) for n in told}
        index = [s["npsn"] for s in schools].index(fixable)
        newest = sink.to(school_addresses(fixable, index)[0])[-1]
        assert fixed_nip not in newest.text
        assert fixed_nip in sink.to(school_addresses(fixable, index)[0])[0].text

        # status says when each school was last told, and what changed since.
        code, out = _cli(config, "status", "--period", PERIOD, "--json")
        assert code in (0, 1), out
        by_school = {row["npsn"]: row for row in json.loads(out)["schools_told"]}
        assert by_school[fixable]["added_since"] == 0
        assert by_school[fixable]["last_told_at"] is not None
        assert clean not in by_school or by_school[clean]["last_told_at"] is None

    engine = make_engine(state_url)
    with Session(engine) as session:
        sends = [e for e in session.exec(select(LedgerEntry)) if e.action == "notify_school"]
        rows = list(session.exec(select(SchoolNotice)))
    engine.dispose()
    assert len(sends) == len(rows) == len(affected) + 1 + 1  # + the webhook, + the fix
    assert {e.outcome for e in sends} == {"sent"}
    assert {e.kind for e in sends} == {"email", "webhook"}
    assert all(e.npsn and e.idempotency_key and "content " in (e.detail or "") for e in sends)
    assert all((e.answer_body or "").startswith(("250", "200")) for e in sends)


def test_a_list_that_empties_gets_one_all_clear(state_url: str, tmp_path: Path) -> None:
    world, clean = world_with_a_clean_school()
    broken = {d.npsn for d in world.defects}
    with running_sandbox(world) as box, running_mail_sink(tmp_path / "mail") as sink:
        config = write_config(
            tmp_path / "config.toml", state_url, box.pmm_url, box.ekinerja_url, sink.port
        )
        _cli(config, "run", "--create-store", "--period", PERIOD)
        target = next(s["npsn"] for s in world.schools if s["npsn"] not in broken | {clean})
        code, out = _cli(config, "schools", "contacts", "set", target, "--email", "tu@sd.example")
        assert code == 0, out
        _cli(config, "schools", "actions", "--period", PERIOD, "--send", "--npsn", target)
        assert len(sink.to("tu@sd.example")) == 1
        for source_id in waiting_ids(world, target):
            world.update_record(source_id, make_final)
        _cli(config, "run", "--period", PERIOD)
        for _ in range(2):
            code, out = _cli(config, "schools", "actions", "--period", PERIOD, "--send")
            assert code == 0, out
        got = sink.to("tu@sd.example")
        # The kepala sekolah's own penilaian (assessed by the dinas's side) is not the school's.
        assert len(got) == 2, [m.message["Subject"] for m in got]
        assert "semua beres" in str(got[1].message["Subject"])


def test_the_demo_ends_by_saying_where_the_school_messages_went(tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    result = runner.invoke(
        app,
        [
            "demo",
            "--state-url",
            f"sqlite:///{tmp_path / 'demo.db'}",
            "--schools",
            "3",
            "--teachers-per-school",
            "4",
            "--mail-dir",
            str(mail),
        ],
    )
    assert result.exit_code == 0, result.output
    files = sorted(mail.glob("*.eml"))
    assert files
    assert f"{len(files)} schools with something to fix were told by e-mail" in result.output
    assert str(mail) in result.output.replace("\n", "")
    assert "schools messages --period" in result.output
