"""Who acts on a waiting record, and the school's words (sync/who_acts.py): every code the
service can keep is filed; a school is never told what only the dinas can do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sync.advice import QUARANTINE_CODES, TARGET_CODES
from sync.who_acts import ACTOR_ORDER, CODES, Actor, school_text, waiting_code, who_acts

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("code", sorted({*TARGET_CODES, *QUARANTINE_CODES}))
def test_every_code_the_advice_knows_is_filed(code: str) -> None:
    assert code in CODES, f"{code}: say in sync/who_acts.py who acts on it"


def test_the_quarantine_codes_mappings_give_are_filed() -> None:
    source = (ROOT / "mappings/source.py").read_text(encoding="utf-8")
    given = set(re.findall(r'(?:return|reject\()\s*\(?\s*"([a-z_]+)"', source))
    given |= set(re.findall(r'^\s+"([a-z_]+)",\n\s+f?"', source, re.MULTILINE))
    assert "invalid_nip" in given
    missing = sorted(code for code in given if code not in CODES)
    assert not missing


def test_each_code_a_school_acts_on_has_indonesian_words_and_no_command() -> None:
    for code, who in CODES.items():
        if who.actor in ACTOR_ORDER:
            assert who.text, code
            assert "replay" not in who.text.lower()
            assert "ekinerja-sync" not in who.text
            assert who.text.endswith("."), code
        else:
            assert who.text is None, f"{code}: the school is never told about it"


def test_the_waiting_reasons_of_planning_and_delivery_are_read() -> None:
    texts = (ROOT / "sync/pipeline/plan.py").read_text(encoding="utf-8")
    texts += (ROOT / "sync/delivery/deliver.py").read_text(encoding="utf-8")
    reasons = re.findall(r'RecordStatus\.WAITING, f?"([^"]+)"', texts)
    reasons += re.findall(r'reason = "(waiting[^"]+)"', texts)
    assert len(reasons) >= 3
    for reason in reasons:
        for state in ("belum", "draf"):
            assert waiting_code(reason.replace("{state}", state)) is not None, reason
    assert waiting_code("penilaian is belum in PMM, not final") == "assessment_not_started"
    assert waiting_code("penilaian is draf in PMM, not final") == "assessment_draft"
    assert waiting_code("perencanaan not approved yet in PMM") == "plan_not_approved"
    assert waiting_code(None) is None


def test_a_penilai_outside_the_school_is_the_dinas() -> None:
    assert who_acts("assessment_draft", assessor_role="principal") is Actor.ASSESSOR
    assert who_acts("assessment_draft", assessor_role=None) is Actor.ASSESSOR
    assert who_acts("assessment_draft", assessor_role="supervisor") is Actor.DINAS
    assert who_acts("plan_not_approved", assessor_role="head_of_office") is Actor.DINAS
    # The teacher's and the operator's steps stay the school's, whoever assesses.
    assert who_acts("indicator_role_mismatch", assessor_role="supervisor") is Actor.TEACHER
    assert who_acts("invalid_nip", assessor_role="supervisor") is Actor.SCHOOL_OPERATOR


def test_what_the_dinas_decides_and_unknown_codes_go_to_the_dinas() -> None:
    for code in ("no_assessor", "VALIDASI", "held", "locked", "retries_exhausted", "SKP_TERKUNCI"):
        assert who_acts(code) is Actor.DINAS
        assert school_text(code) is None
    assert who_acts("SOMETHING_NEW") is Actor.DINAS
    assert who_acts(None) is Actor.DINAS
    assert who_acts("waiting_for_skp") is Actor.NOBODY


def test_the_refusals_only_the_school_can_mend_are_the_schools() -> None:
    assert who_acts("NIP_TIDAK_DITEMUKAN") is Actor.SCHOOL_OPERATOR
    assert who_acts("UNOR_TIDAK_AKTIF") is Actor.SCHOOL_OPERATOR
    assert who_acts("PREDIKAT_TIDAK_SESUAI") is Actor.ASSESSOR
    assert "NIP" in (school_text("NIP_TIDAK_DITEMUKAN") or "")


def test_the_consoles_desks() -> None:
    """Issue 27: the console files unit kerja and NIP matters at BKD / BKPSDM, a penilai's
    step at the school (or the dinas when the penilai is outside it), and what goes by itself
    (a 429, a busy e-Kinerja, a penilaian waiting for its SKP) with nobody."""
    from sync.who_acts import Desk, desk

    assert desk("UNOR_TIDAK_AKTIF") is Desk.BKD
    assert desk("NIP_TIDAK_DITEMUKAN") is Desk.BKD
    assert desk("plan_not_approved") is Desk.SCHOOL
    assert desk("assessment_draft", assessor_role="supervisor") is Desk.DINAS
    assert desk("invalid_nip") is Desk.SCHOOL
    assert desk("held") is Desk.DINAS
    assert desk("SOMETHING_NEW") is Desk.DINAS
    for code in ("rate_limited", "target_busy", "waiting_for_skp"):
        assert who_acts(code) is Actor.NOBODY
        assert desk(code) is Desk.AUTO
