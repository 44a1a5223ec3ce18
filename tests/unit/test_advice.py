"""sync.advice: every failure and quarantine kind says what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync.advice import QUARANTINE_CODES, TARGET_CODES, advice

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_FAILURES = [
    "NIP_TIDAK_DITEMUKAN",
    "UNOR_TIDAK_AKTIF",
    "PERIODE_TIDAK_ADA",
    "VALIDASI",
    "PREDIKAT_TIDAK_SESUAI",
    "PENILAI_BELUM_ADA_SKP",
    "SKP_TERKUNCI",
    "PENILAIAN_SUDAH_ADA",
    "IDEMPOTENCY_KEY_REUSED",
    "retries_exhausted",
    "retries_exhausted_server_error",
    "retries_exhausted_timeout",
    "retries_exhausted_rate_limited",
    "retries_exhausted_busy",
    "rate_limited",
    "target_busy",
]


@pytest.mark.parametrize("code", DOMAIN_FAILURES)
def test_every_target_failure_has_advice(code: str) -> None:
    assert code in TARGET_CODES
    assert len(advice(code)) > 40


def test_every_quarantine_code_of_the_source_reader_and_engine_has_advice() -> None:
    """The codes are read from the code that rejects, so a new one cannot go unadvised."""
    source = (ROOT / "mappings" / "source.py").read_text("utf-8")
    engine = "".join(p.read_text("utf-8") for p in (ROOT / "sync" / "pipeline").glob("*.py"))
    codes = set(re.findall(r'(?:return \(?\s*|reject\(\s*)"([a-z_]+)",', source))
    codes |= set(re.findall(r'"\?", None, None, None, "([a-z_]+)"', source))
    codes |= set(re.findall(r'reason_code\s*=\s*"([a-z_]+)"', engine))
    assert {"invalid_nip", "indicator_count", "malformed", "mapping_failed"} <= codes
    assert codes <= set(QUARANTINE_CODES)


def test_replay_advice_names_the_command() -> None:
    text = advice("NIP_TIDAK_DITEMUKAN", replay_id="2025-1/198503152010012003/skp")
    assert "Dapodik" in text
    assert "`ekinerja-sync replay 2025-1/198503152010012003/skp`" in text


def test_locked_advice_says_replay_cannot_help() -> None:
    for code in ("SKP_TERKUNCI", "PENILAIAN_SUDAH_ADA"):
        text = advice(code, replay_id="2025-1/198503152010012003/skp")
        assert "by hand" in text
        assert "ekinerja-sync replay" not in text


@pytest.mark.parametrize("code", [None, "", "SOMETHING_NEW"])
def test_an_unknown_code_gets_general_advice(code: str | None) -> None:
    assert "failures show" in advice(code)
