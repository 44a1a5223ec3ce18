"""``ekinerja-sync ledger``: show, export (CSV, JSONL, redacted), verify and head, on SQLite
and PostgreSQL, through the real command line (typer's CliRunner)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from state import ledger
from state.db import create_schema, make_engine
from state.ledger import LedgerEvent
from state.ledger_guards import install_guards
from sync.cli import app

runner = CliRunner()
T0 = dt.datetime(2025, 2, 3, 1, 0, tzinfo=dt.UTC)  # 08:00 WIB
SITI = "198202022006042002"
BUDI = "198001012005011001"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "auditors" / "index.md"


@dataclass
class Ledger:
    config: Path
    engine: Engine

    def run(self, *args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, ["--config", str(self.config), "ledger", *args])
        return result.exit_code, result.stdout, result.stderr


def _events() -> list[tuple[dt.datetime, LedgerEvent]]:
    common = {"run_id": "run-1", "kind": "skp", "mapping_version": "2025.1"}
    return [
        (
            T0,
            LedgerEvent(
                actor="daemon",
                action="create_skp",
                outcome="delivered",
                period="2025-1",
                npsn="20100001",
                nip=SITI,
                employee_name="Siti Aminah",
                idempotency_key="eks-create_skp-1",
                request_body='{"nip":"198202022006042002","catatan":"baik, \\"rapi\\"\\nbaris 2"}',
                http_status=201,
                answer_body='{"id":"skp-1"}',
                duration_ms=41,
                **common,
            ),
        ),
        (
            T0 + dt.timedelta(hours=1),
            LedgerEvent(
                actor="daemon",
                action="create_skp",
                outcome="rejected",
                period="2025-1",
                npsn="20100002",
                nip=BUDI,
                employee_name='=HYPERLINK("http://x","Budi")',  # a formula, as a name
                http_status=422,
                answer_body='{"kode":"NIP_TIDAK_DITEMUKAN"}',
                detail="-1+1",
                **common,
            ),
        ),
        (
            T0 + dt.timedelta(days=1),
            LedgerEvent(
                actor="operator:budi santoso",
                action="replay",
                outcome="done",
                period="2025-1",
                nip=BUDI,
                detail="@SUM(A1:A2) replayed after the NIP was fixed in PMM",
            ),
        ),
        (
            T0 + dt.timedelta(days=1, hours=1),
            LedgerEvent(
                actor="daemon",
                action="create_skp",
                outcome="delivered",
                period="2025-1",
                npsn="20100002",
                nip=BUDI,
                employee_name="Budi Santoso",
                http_status=201,
                answer_body='{"id":"skp-2"}',
                **common,
            ),
        ),
        (
            T0 + dt.timedelta(days=200),
            LedgerEvent(
                actor="daemon",
                action="create_skp",
                outcome="delivered",
                period="2025-2",
                npsn="20100001",
                nip=SITI,
                employee_name="Siti Aminah",
                http_status=201,
                answer_body='{"id":"skp-3"}',
                **common,
            ),
        ),
    ]


def _append(engine: Engine, events: list[tuple[dt.datetime, LedgerEvent]]) -> None:
    with Session(engine) as session:
        for at, event in events:
            ledger.append(session, event, at=at)
        session.commit()


@pytest.fixture
def book(state_url: str, tmp_path: Path) -> Iterator[Ledger]:
    engine = make_engine(state_url)
    create_schema(engine)
    _append(engine, _events())
    config = tmp_path / "config.toml"
    config.write_text(f'[state]\nurl = "{state_url}"\n', encoding="utf-8")
    yield Ledger(config, engine)
    engine.dispose()


def _head(engine: Engine) -> tuple[str, int]:
    with Session(engine) as session:
        return ledger.head(session)


def _tamper(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER ledger_entry_no_update")
            conn.exec_driver_sql("DROP TRIGGER ledger_entry_no_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE ledger_entry DISABLE TRIGGER ALL")
        conn.exec_driver_sql(statement)
    install_guards(engine)


# -- show ------------------------------------------------------------------------------------


def test_show_a_teachers_history(book: Ledger) -> None:
    code, out, _ = book.run("show", "--nip", BUDI, "--period", "2025-1", "--json")
    assert code == 0
    entries = json.loads(out)
    assert [e["seq"] for e in entries] == [2, 3, 4]
    assert [e["outcome"] for e in entries] == ["rejected", "done", "delivered"]
    assert entries[0]["answer_body"] == '{"kode":"NIP_TIDAK_DITEMUKAN"}'

    code, out, _ = book.run("show", "--nip", BUDI, "--period", "2025-1")
    assert code == 0
    assert "time (WIB)" in out
    assert "2025-02-03 09:00:00" in out  # 02:00 UTC shown in WIB
    assert "operator:budi santoso" in out
    assert SITI not in out


def test_show_filters_by_school_and_time(book: Ledger) -> None:
    def seqs(*args: str) -> list[int]:
        code, out, _ = book.run("show", "--json", *args)
        assert code == 0
        return [e["seq"] for e in json.loads(out)]

    assert seqs("--npsn", "20100001") == [1, 5]
    assert seqs("--period", "2025-2") == [5]
    assert seqs("--since", "2025-02-04") == [3, 4, 5]  # from midnight WIB
    assert seqs("--until", "2025-02-03") == [1, 2]  # the whole day, WIB
    assert seqs("--since", "2025-02-03T09:00:00+07:00", "--until", "2025-02-03") == [2]
    assert seqs("--since", "2025-02-04T01:30:00Z") == [4, 5]
    assert seqs("--nip", SITI, "--limit", "1") == [1]


def test_show_full_prints_the_bodies(book: Ledger) -> None:
    code, out, _ = book.run("show", "--nip", SITI, "--period", "2025-1", "--full")
    assert code == 0
    assert "request as sent:" in out
    assert '"catatan": "baik, \\"rapi\\"\\nbaris 2"' in out
    assert "answer (HTTP 201):" in out
    assert '"id": "skp-1"' in out


def test_show_without_match_and_with_bad_filters(book: Ledger) -> None:
    code, out, err = book.run("show", "--nip", "199999999999999999")
    assert (code, out) == (0, "")
    assert "No ledger entries match (NIP 199999999999999999)" in err
    assert book.run("show", "--period", "2025-3")[0] == 2
    code, _, err = book.run("show", "--since", "yesterday")
    assert code == 2
    assert "'yesterday' is not a date" in err


# -- export ----------------------------------------------------------------------------------


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: spreadsheets read the accents right
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_csv_for_a_spreadsheet(book: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "ledger-2025-1.csv"
    code, _, err = book.run("export", "--format", "csv", "--period", "2025-1", "-o", str(target))
    assert code == 0
    assert "exported 4 ledger entries (period 2025-1)" in err
    data = target.read_bytes()
    assert data.splitlines(keepends=True)[0].endswith(b"\r\n")  # RFC 4180 line ends
    rows = _csv_rows(data)
    assert [r["seq"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0])[:3] == ["seq", "at", "time_wib"]
    assert rows[0]["at"] == "2025-02-03T01:00:00.000000Z"
    assert rows[0]["time_wib"] == "2025-02-03 08:00:00"
    assert rows[0]["employee_name"] == "Siti Aminah"
    # Quotes, commas and a newline inside a cell survive the round trip.
    assert json.loads(rows[0]["request_body"])["catatan"] == 'baik, "rapi"\nbaris 2'
    with Session(book.engine) as session:
        assert [r["hash"] for r in rows] == [e.hash for e in ledger.query(session, limit=4)]
    # Cells a spreadsheet would run as formulas are neutralised with a leading apostrophe.
    assert rows[1]["employee_name"] == '\'=HYPERLINK("http://x","Budi")'
    assert rows[1]["detail"] == "'-1+1"
    assert rows[2]["detail"].startswith("'@SUM(A1:A2)")
    assert all(not v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())


def test_export_csv_to_stdout(book: Ledger) -> None:
    result = runner.invoke(app, ["--config", str(book.config), "ledger", "export"])
    assert result.exit_code == 0
    assert len(_csv_rows(result.stdout_bytes)) == 5


def test_export_redacted_masks_names(book: Ledger) -> None:
    result = runner.invoke(
        app, ["--config", str(book.config), "ledger", "export", "--redact", "--nip", BUDI]
    )
    assert result.exit_code == 0
    rows = _csv_rows(result.stdout_bytes)
    assert [r["employee_name"] for r in rows] == ["'=***", "", "B*** S***"]
    assert rows[1]["actor"] == "operator:b*** s***"
    text = result.stdout_bytes.decode("utf-8-sig")
    assert "Santoso" not in text
    assert "santoso" not in text
    assert BUDI in text  # the NIP stays: it is what an auditor looks for

    code, out, _ = book.run("export", "--format", "jsonl", "--redact", "--nip", SITI)
    assert code == 0
    assert [json.loads(line)["employee_name"] for line in out.splitlines()] == ["S*** A***"] * 2


def _auditor_script() -> str:
    """The stdlib-only checker printed in the auditors' guide (docs/auditors/index.md)."""
    match = re.search(
        r"```python\n(# check-ledger-export\.py.*?)```", DOCS.read_text("utf-8"), re.S
    )
    assert match is not None, "the auditor's script is missing from the auditors' guide"
    return match[1]


def test_export_jsonl_verifies_with_the_auditors_own_script(
    book: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "ledger.jsonl"
    code, _, _ = book.run("export", "--format", "jsonl", "-o", str(target))
    assert code == 0
    lines = target.read_text("utf-8").splitlines()
    assert len(lines) == 5
    first = json.loads(lines[0])
    assert first["employee_name"] == "Siti Aminah"
    assert first["at"] == "2025-02-03T01:00:00.000000Z"
    assert set(first) == {*ledger.HASHED_FIELDS, "hash"}

    script = _auditor_script()
    namespace = {"__name__": "__main__", "__file__": "check-ledger-export.py"}
    argv, sys.argv = sys.argv, ["check-ledger-export.py", str(target)]
    try:
        with pytest.raises(SystemExit) as done:
            exec(compile(script, "check-ledger-export.py", "exec"), namespace)  # noqa: S102
    finally:
        sys.argv = argv
    assert done.value.code == 0
    assert f"5 entries OK, last #5 {_head(book.engine)[0]}" in capsys.readouterr().out

    lines[2] = lines[2].replace("replayed after", "replayed long after")
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sys.argv = ["check-ledger-export.py", str(target)]
    try:
        with pytest.raises(SystemExit) as done:
            exec(compile(script, "check-ledger-export.py", "exec"), namespace)  # noqa: S102
    finally:
        sys.argv = argv
    assert done.value.code == 1
    assert "entry #3" in capsys.readouterr().out


# -- verify and head -------------------------------------------------------------------------


def test_verify_ok_then_broken(book: Ledger) -> None:
    code, out, _ = book.run("verify")
    assert code == 0
    digest, _count = _head(book.engine)
    assert out.splitlines()[0] == f"ledger OK: 5 entries, head {digest}"

    _tamper(book.engine, "UPDATE ledger_entry SET http_status = 201 WHERE seq = 2")
    code, out, _ = book.run("verify")
    assert code == 1
    assert out.startswith("ledger BROKEN at entry #2: entry #2 was edited")
    assert "the chain holds from entry #1 to #1" in out


def test_head_round_trips_into_against(book: Ledger) -> None:
    code, out, _ = book.run("head")
    assert code == 0
    written_down = out.strip()
    assert re.fullmatch(r"[0-9a-f]{64}@5", written_down)

    code, out, _ = book.run("verify", "--against", written_down)
    assert code == 0
    assert f"matches the head written down: entry #5 is {written_down[:64]}" in out

    _append(book.engine, _events()[:1])  # the ledger grows: the old head still holds
    assert book.run("verify", "--against", written_down)[0] == 0
    assert book.run("head")[1].strip().endswith("@6")

    _tamper(book.engine, "DELETE FROM ledger_entry WHERE seq >= 4")  # cut the tail
    assert book.run("verify")[0] == 0  # alone, a shorter chain looks sound...
    code, out, _ = book.run("verify", "--against", written_down)  # ...but not against the head
    assert code == 1
    assert out.startswith("ledger BROKEN at entry #4: entry #4 is missing")
    assert "the tail was cut" in out


def test_verify_refuses_a_malformed_head(book: Ledger) -> None:
    code, _, err = book.run("verify", "--against", "abc@5")
    assert code == 2
    assert "HASH@N" in err


def test_a_missing_sqlite_store_is_not_an_empty_ledger(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    missing = tmp_path / "typo.db"
    config.write_text(f'[state]\nurl = "sqlite:///{missing}"\n', encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "ledger", "verify"])
    assert result.exit_code == 2
    assert "no state store at" in result.stderr
    assert not missing.exists()
