"""What an operator does about each kind of failure, in plain words.

Keyed by the code the state store keeps (``SyncRecord.reason_code``: e-Kinerja's answer code, or
the service's own: ``retries_exhausted_<cause>`` for a record whose retries ran out, plain
``retries_exhausted`` on rows from before the cause was kept, ``rate_limited`` /
``target_busy`` for a record left pending because e-Kinerja said "later") or the quarantine
code (``SourceRecord.reason_code``, from ``mappings.source`` and the engine). The reason stored
with a failure ends with this advice, so ``failures list``, ``status`` and the ledger say what
to do, not only what happened.
"""

from __future__ import annotations

__all__ = ["QUARANTINE_CODES", "TARGET_CODES", "advice", "replay_hint"]

_REPLAY = "then replay it"
_BY_HAND = "replay cannot help"

# e-Kinerja's answer codes (docs/apis.md, "Target: error codes") and the service's own.
TARGET_CODES: dict[str, str] = {
    "NIP_TIDAK_DITEMUKAN": (
        "BKN does not know this NIP: check the NIP in Dapodik / Verval PTK against the one in "
        "BKN's register (SIASN); correct it where it is wrong (a correction in Dapodik reaches "
        f"PMM), {_REPLAY}"
    ),
    "UNOR_TIDAK_AKTIF": (
        "the school's unit kerja is inactive or not matched in BKN's register: ask the BKD / "
        f"BKPSDM to activate or map the unit kerja (NPSN) in SIASN, {_REPLAY}"
    ),
    "PERIODE_TIDAK_ADA": (
        "the period is not open on e-Kinerja yet: wait until BKN opens it (or ask the BKD), "
        f"{_REPLAY}"
    ),
    "VALIDASI": (
        "e-Kinerja refused a field (named in the answer): correct the value in PMM / Dapodik; "
        "if PMM is right, the mapping is wrong: report it to the dinas IT with "
        f"`ekinerja-sync failures show`; {_REPLAY}"
    ),
    "PREDIKAT_TIDAK_SESUAI": (
        "the predikat does not follow the two ratings (PermenPANRB 6/2022): the penilai "
        f"corrects the penilaian in PMM, {_REPLAY}"
    ),
    "PENILAI_BELUM_ADA_SKP": (
        "the penilai (kepala sekolah) has no SKP for the period on e-Kinerja yet: the record is "
        "held and sent again on every run; see why the penilai's own SKP is missing "
        "(`ekinerja-sync status`)"
    ),
    "SKP_TERKUNCI": (
        "e-Kinerja has locked this SKP (its penilaian is final): it takes no change any more; "
        f"correct it in e-Kinerja by hand if the change matters ({_BY_HAND})"
    ),
    "PENILAIAN_SUDAH_ADA": (
        "e-Kinerja already holds a penilaian for this SKP and takes one only: correct it in "
        f"e-Kinerja by hand if it differs ({_BY_HAND})"
    ),
    "IDEMPOTENCY_KEY_REUSED": (
        "e-Kinerja saw this request's key with another body (a fault on either side, never "
        "expected): keep `ekinerja-sync failures show` for the dinas IT, who report it; "
        f"{_REPLAY} once it is understood"
    ),
    "SKP_SUDAH_ADA": (
        "e-Kinerja already holds an SKP for this NIP and period that the service could not "
        f"update: compare it in e-Kinerja with `ekinerja-sync failures show`, {_REPLAY}"
    ),
    # The retries ran out (the attempts' answers are in `failures show`), by the last cause.
    "retries_exhausted": (
        "e-Kinerja kept answering with an error (a server error, a timeout, or 'later') until "
        "the retries gave up: read its answers with `ekinerja-sync failures show`; once "
        f"e-Kinerja answers normally, {_REPLAY}"
    ),
    "retries_exhausted_server_error": (
        "e-Kinerja answered a server error (5xx) again and again: a fault on its side; check "
        f"its status or ask its operator (BKN); once it answers normally, {_REPLAY}"
    ),
    "retries_exhausted_timeout": (
        "e-Kinerja, or the gateway in front of it, timed out again and again (408 / 504): it "
        "is overloaded or the network path is slow; check that it answers in time (and that "
        f"`target.timeout_s` is not too short), {_REPLAY}"
    ),
    "retries_exhausted_rate_limited": (
        "e-Kinerja's rate limit (429) answered last, after server errors among the attempts "
        "(`ekinerja-sync failures show`); if 429s come often, lower `target.rate_limit_per_s` "
        f"(it is for the whole installation) or the number of workers, {_REPLAY}"
    ),
    "retries_exhausted_busy": (
        "e-Kinerja said it was busy or in maintenance (503) at the last attempt, after server "
        "errors among the attempts (`ekinerja-sync failures show`): wait until its maintenance "
        f"is over, {_REPLAY}"
    ),
    # Pending, not failed: e-Kinerja said "later" until this run's retries ran out.
    "rate_limited": (
        "nothing to do: e-Kinerja's rate limit (429) asked to wait, and the record is sent "
        "again by the next run or the daemon's retry; if it happens on every run, lower "
        "`target.rate_limit_per_s` (it is for the whole installation) or the number of workers"
    ),
    "target_busy": (
        "nothing to do: e-Kinerja said it was busy or in maintenance (503), and the record is "
        "sent again by the next run or the daemon's retry; if it lasts for days, ask its "
        "operator (BKN)"
    ),
}

# Quarantine codes: bad data in PMM (mappings/source.py) or a mapping that refused a record.
QUARANTINE_CODES: dict[str, str] = {
    "invalid_nip": (
        "correct the NIP in Dapodik (it reaches PMM); the next run reads the record again"
    ),
    # Held back by releases before issue 23; a NUPTK is never sent, so the next run sends the
    # record and shows the NUPTK as a note (`status`).
    "invalid_nuptk": (
        "nothing holds the record back any more: the next run sends it; the school corrects "
        "the NUPTK in Dapodik (NUPTK is never sent to e-Kinerja)"
    ),
    "birth_date_in_future": (
        "the birth date in the NIP (its first 8 digits) is in the future: the school's operator "
        "checks the NIP in Dapodik / Verval PTK against BKN's register (SIASN) and corrects it "
        "in Dapodik (it reaches PMM); the next run reads the record again"
    ),
    "tmt_cpns_under_age": (
        "the NIP's TMT CPNS (digits 9-14) is before its holder's 18th birthday (digits 1-8), "
        "so one of them is wrong: the school's operator checks the NIP against BKN's register "
        "(SIASN) and corrects it in Dapodik; the next run reads the record again"
    ),
    "tmt_cpns_after_period": (
        "the NIP's TMT CPNS (digits 9-14) is after the period ended: the school's operator "
        "checks the NIP against BKN's register (SIASN) and corrects it in Dapodik; if the NIP "
        "is right, PMM holds the record under the wrong period: report it to the PMM helpdesk "
        "with the source id"
    ),
    "invalid_npsn": "correct the school's NPSN in PMM / Dapodik; the next run reads it again",
    "invalid_assessor_nip": (
        "correct the penilai (or the penilai's NIP) in PMM; the next run reads it again"
    ),
    "no_assessor": (
        "the dinas (not the school) acts: it assigns a Plt kepala sekolah for a guru's school, "
        "or the penilai of a kepala sekolah, in Dapodik/PMM; the next run reads it again"
    ),
    "self_assessment": (
        "the teacher is set as their own penilai: set the right penilai in PMM; the next run "
        "reads it again"
    ),
    "unknown_indicator": (
        "the plan must pick an indicator from the catalogue (G-01..G-08, K-01..K-08): correct "
        "the perencanaan in PMM; the next run reads it again"
    ),
    "indicator_role_mismatch": (
        "a guru picks a G- indicator, a kepala sekolah a K- one: correct the perencanaan (or the "
        "jenis PTK) in PMM; the next run reads it again"
    ),
    "indicator_count": (
        "a guru picks exactly one indicator, a kepala sekolah one (two from 2026 on): correct "
        "the perencanaan in PMM; the next run reads it again"
    ),
    "duplicate_indicator": (
        "the plan picks the same indicator twice: the kepala sekolah corrects the perencanaan "
        "in PMM (keep it once, or pick another one) and the penilai approves it; the next run "
        "reads it again"
    ),
    "finalised_before_period": (
        "PMM dates the penilaian before its period began (the wrong period, or a wrong date), "
        "which no one at the school can change: report it to the PMM helpdesk with the source "
        "id; the next run reads it again once PMM serves it right"
    ),
    "predicate_mismatch": (
        "the predikat breaks the matrix of PermenPANRB 6/2022: the penilai corrects the "
        "penilaian in PMM; the next run reads it again"
    ),
    "final_incomplete": (
        "a final penilaian lacks a rating, the predikat or its date: the penilai completes it "
        "in PMM; the next run reads it again"
    ),
    "malformed": (
        "PMM sent a record that breaks its own contract: report it to the PMM helpdesk with the "
        "source id; the next run reads it again once PMM serves it right"
    ),
    "unknown_schema_version": (
        "PMM serves a schema version this release cannot read: upgrade ekinerja-sync (or set "
        "`source.schema_version` to one it reads)"
    ),
    "mapping_failed": (
        "the active mapping version cannot map this record (a gap in the mapping, not bad "
        "data): report it to the dinas IT with the record's source id; after a fixed release "
        "the record is read again"
    ),
}

_FALLBACK = (
    "read the request and every answer with `ekinerja-sync failures show`, fix the cause, "
    f"{_REPLAY}"
)


def advice(code: str | None, *, replay_id: str | None = None) -> str:
    """What to do about a failure or quarantine of kind ``code``, in plain words.

    With ``replay_id`` (a failure ID, ``<period>/<nip>/<kind>``) the replay step names the
    command to run. An unknown code gets general advice, never an error.
    """
    text = TARGET_CODES.get(code or "") or QUARANTINE_CODES.get(code or "") or _FALLBACK
    if replay_id is not None:
        text = text.replace(_REPLAY, f"then `{replay_hint(replay_id)}`").replace(
            "`ekinerja-sync failures show`", f"`ekinerja-sync failures show {replay_id}`"
        )
    return text


def replay_hint(replay_id: str) -> str:
    """The command that replays one failure."""
    return f"ekinerja-sync replay {replay_id}"
