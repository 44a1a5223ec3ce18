"""Logs: JSON lines with context bound, and no secret in any line (sync.logs).

The daemon's own run is checked the same way end to end in tests/e2e/test_daemon.py, with
every token the sandbox issued to it.
"""

from __future__ import annotations

import json

import pytest
import structlog

from connectors.errors import RetriableError
from sync.logs import REDACTED, configure_logging, redact_secrets

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.dG9rZW4-_x"
SECRET = "s3cr3t-Do-Not-Leak-42"
PASSWORD = "pg-Pa55word"


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _log_secrets_every_way() -> None:
    log = structlog.get_logger("test")
    log.info("token.issued", access_token=TOKEN, token_type="Bearer", expires_in=3600)
    log.info("auth", client_secret=SECRET, client_id="sandbox")
    log.info("request", headers={"Authorization": f"Bearer {TOKEN}", "Accept": "x"})
    log.info("request.sent", detail=f"GET /api/v1/skp Authorization: Bearer {TOKEN}")
    log.warning("answer", body=json.dumps({"access_token": TOKEN, "expires_in": 60}))
    log.warning("form", body=f"grant_type=client_credentials&client_secret={SECRET}&scope=a")
    log.warning("nested", answers=[{"token": TOKEN}, {"ok": True}], note=f"password={PASSWORD}")
    log.error("db", url=f"postgresql+psycopg://ekinerja:{PASSWORD}@db.internal/ekinerja")
    log.info(f"Bearer {TOKEN} in the event itself")
    try:
        raise RetriableError(f"token endpoint said no; sent client_secret={SECRET}", status=503)
    except RetriableError:
        log.exception("with.traceback")


@pytest.mark.parametrize("json_lines", [True, False])
def test_no_token_secret_or_password_reaches_a_line(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json=json_lines, level="DEBUG")
    _log_secrets_every_way()
    err = capsys.readouterr().err
    assert err.count("\n") >= 10
    for secret in (TOKEN, SECRET, PASSWORD, TOKEN.split(".")[0]):
        assert secret not in err
    assert REDACTED in err
    if json_lines:
        lines = _lines(err)  # every line is one JSON object
        assert {line["event"] for line in lines} >= {"token.issued", "db", "with.traceback"}
        by_event = {line["event"]: line for line in lines}
        # What is not secret stays readable.
        assert by_event["auth"]["client_id"] == "sandbox"
        assert by_event["token.issued"]["expires_in"] == 3600
        assert by_event["request"]["headers"] == {"Authorization": REDACTED, "Accept": "x"}
        assert (
            by_event["db"]["url"]
            == f"postgresql+psycopg://ekinerja:{REDACTED}@db.internal/ekinerja"
        )
        assert "RetriableError" in str(by_event["with.traceback"]["exception"])


def test_the_processor_masks_keys_and_text() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "x",
            "Authorization": "Basic abc",
            "refresh_token": "r",
            "escaped": '{\\"access_token\\": \\"abc123\\"}',
            "count": 3,
            "flag": None,
        },
    )
    assert event == {
        "event": "x",
        "Authorization": REDACTED,
        "refresh_token": REDACTED,
        "escaped": '{\\"access_token\\": \\"' + REDACTED + '\\"}',
        "count": 3,
        "flag": None,
    }


def test_context_is_bound_to_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="INFO")
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(job="sync", period="2025-1"):
        log.bind(run_id="r-1", npsn="20100001", nip="198503152010012003").info("deliver.ok")
        log.info("run.start")
    log.info("outside")
    lines = {line["event"]: line for line in _lines(capsys.readouterr().err)}
    assert lines["deliver.ok"]["run_id"] == "r-1"
    assert lines["deliver.ok"]["nip"] == "198503152010012003"
    assert lines["deliver.ok"]["npsn"] == "20100001"
    assert lines["deliver.ok"]["period"] == lines["run.start"]["period"] == "2025-1"
    assert lines["run.start"]["job"] == "sync"
    assert "period" not in lines["outside"]
    assert {"timestamp", "level"} <= set(lines["outside"])
