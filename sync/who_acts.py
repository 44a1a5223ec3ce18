"""Who must act on a record that waits, and what they do, in words a school understands.

One table, keyed by the code the state store keeps for a record that is not on its way to
e-Kinerja: a quarantine code (``SourceRecord.reason_code``: bad data read from PMM), an answer
code of e-Kinerja (``SyncRecord.reason_code`` of a failed record), or a waiting code this
module derives from a waiting record's reason (``waiting_code``: a plan not approved, a
penilaian still ``belum`` or ``draf``) or from its status (``held``, ``locked``,
``cancelled_after_delivery``). For each it says:

- **who acts** (``Actor``): the teacher (guru, or a kepala sekolah for their own plan), the
  kepala sekolah as penilai, the school's operator (Dapodik data), or the dinas (a failure it
  must decide, a held penilaian, anything a school cannot change); and
- **what to do** (``school_text``), in plain Bahasa Indonesia, for the school's own action
  list and its messages. It says nothing a school cannot do (no replay, no command).

``desk(code)`` files the same codes for the dinas's console (issue 27): the school, the dinas,
BKD / BKPSDM (``BKD_CODES``: a unit kerja or a NIP at BKN), or nobody (it goes by itself).

``who_acts(code, assessor_role=...)`` is the public entry: a penilai's step falls to the dinas
when the penilai is not the school's kepala sekolah (a pengawas sekolah or the Kepala Dinas
assesses a kepala sekolah). A code this table does not know goes to the dinas, never to a
school: the dinas reads the English reason (``sync.advice``) and decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ACTOR_LABELS",
    "ACTOR_ORDER",
    "BKD_CODES",
    "CODES",
    "DESK_LABELS",
    "DESK_ORDER",
    "Actor",
    "Desk",
    "Who",
    "desk",
    "school_text",
    "waiting_code",
    "who_acts",
]


class Actor(StrEnum):
    """Who can make a waiting record go."""

    TEACHER = "teacher"  # the guru (or kepala sekolah) whose own record it is
    ASSESSOR = "assessor"  # the kepala sekolah, as the guru's penilai
    SCHOOL_OPERATOR = "school_operator"  # the school's operator: Dapodik data
    DINAS = "dinas"  # the dinas: not on the school's list
    NOBODY = "nobody"  # it goes by itself (it waits for its SKP, say): on no list


# The groups of a school's list, in the order it shows them, with their headings.
ACTOR_ORDER = (Actor.TEACHER, Actor.ASSESSOR, Actor.SCHOOL_OPERATOR)
ACTOR_LABELS: dict[Actor, str] = {
    Actor.TEACHER: "Guru (dan kepala sekolah untuk kinerjanya sendiri)",
    Actor.ASSESSOR: "Kepala sekolah sebagai penilai",
    Actor.SCHOOL_OPERATOR: "Operator sekolah (data Dapodik)",
    Actor.DINAS: "Dinas pendidikan",
    Actor.NOBODY: "Tidak perlu tindakan",
}


@dataclass(frozen=True, slots=True)
class Who:
    """What the table holds for one code: who acts, and the school's words (``None``: the
    school is never told about it)."""

    actor: Actor
    text: str | None = None


_SIASN = (
    "Operator sekolah mencocokkan NIP di Dapodik / Verval PTK dengan data BKN (SIASN) dan "
    "memperbaikinya di Dapodik (perbaikan diteruskan ke PMM)."
)
_RESUBMIT = "lalu ajukan kembali agar disetujui penilai."

CODES: dict[str, Who] = {
    # -- the teacher's own plan (perencanaan) -------------------------------------------
    "unknown_indicator": Who(
        Actor.TEACHER,
        "Indikator pada perencanaan kinerja tidak ada di katalog. Pilih indikator dari "
        "katalog di PMM (guru: G-01 s.d. G-08; kepala sekolah: K-01 s.d. K-08), " + _RESUBMIT,
    ),
    "indicator_role_mismatch": Who(
        Actor.TEACHER,
        "Indikator yang dipilih bukan untuk perannya: guru memilih indikator G-, kepala "
        "sekolah indikator K-. Perbaiki perencanaan di PMM, " + _RESUBMIT,
    ),
    "indicator_count": Who(
        Actor.TEACHER,
        "Jumlah indikator pada perencanaan tidak sesuai aturan (guru tepat satu; kepala "
        "sekolah satu, atau dua mulai periode 2026). Perbaiki perencanaan di PMM, " + _RESUBMIT,
    ),
    "duplicate_indicator": Who(
        Actor.TEACHER,
        "Indikator yang sama dipilih dua kali. Perbaiki perencanaan di PMM (pilih sekali, atau "
        "pilih indikator lain), " + _RESUBMIT,
    ),
    # -- the kepala sekolah as penilai ------------------------------------------------------
    "plan_not_approved": Who(
        Actor.ASSESSOR,
        "Perencanaan kinerja belum disetujui. Kepala sekolah menyetujuinya di PMM (bila guru "
        "belum mengajukan perencanaannya, ingatkan guru untuk mengajukan).",
    ),
    "assessment_not_started": Who(
        Actor.ASSESSOR,
        "Penilaian kinerja belum diisi. Kepala sekolah sebagai penilai mengisi dan "
        "memfinalkan penilaian di PMM.",
    ),
    "assessment_draft": Who(
        Actor.ASSESSOR,
        "Penilaian kinerja masih draf. Kepala sekolah sebagai penilai memeriksa dan "
        "memfinalkannya di PMM.",
    ),
    "predicate_mismatch": Who(
        Actor.ASSESSOR,
        "Predikat tidak sesuai dengan rating hasil kerja dan rating perilaku (matriks "
        "PermenPANRB 6/2022). Penilai memperbaiki penilaian di PMM.",
    ),
    "PREDIKAT_TIDAK_SESUAI": Who(
        Actor.ASSESSOR,
        "e-Kinerja menolak penilaian ini: predikatnya tidak sesuai dengan kedua rating "
        "(PermenPANRB 6/2022). Penilai memperbaiki penilaian di PMM.",
    ),
    "final_incomplete": Who(
        Actor.ASSESSOR,
        "Penilaian sudah final tetapi belum lengkap (rating, predikat, atau tanggalnya "
        "kosong). Penilai melengkapinya di PMM.",
    ),
    # -- the school's operator: Dapodik ---------------------------------------------------
    "invalid_nip": Who(Actor.SCHOOL_OPERATOR, "NIP pegawai tidak sah. " + _SIASN),
    "NIP_TIDAK_DITEMUKAN": Who(
        Actor.SCHOOL_OPERATOR, "e-Kinerja (BKN) tidak mengenal NIP ini. " + _SIASN
    ),
    "birth_date_in_future": Who(
        Actor.SCHOOL_OPERATOR,
        "Tanggal lahir dalam NIP (8 digit pertama) ada di masa depan. " + _SIASN,
    ),
    "tmt_cpns_under_age": Who(
        Actor.SCHOOL_OPERATOR,
        "TMT CPNS dalam NIP (digit 9-14) jatuh sebelum pemiliknya berusia 18 tahun. " + _SIASN,
    ),
    "tmt_cpns_before_18": Who(
        Actor.SCHOOL_OPERATOR,
        "TMT CPNS dalam NIP (digit 9-14) jatuh sebelum pemiliknya berusia 18 tahun. " + _SIASN,
    ),
    "tmt_cpns_after_period": Who(
        Actor.SCHOOL_OPERATOR,
        "TMT CPNS dalam NIP (digit 9-14) jatuh sesudah periode berakhir. " + _SIASN,
    ),
    "invalid_nuptk": Who(
        Actor.SCHOOL_OPERATOR, "NUPTK tidak sah. Operator sekolah memperbaikinya di Dapodik."
    ),
    "invalid_npsn": Who(
        Actor.SCHOOL_OPERATOR,
        "NPSN sekolah pada data ini tidak sah. Operator sekolah memeriksa NPSN di Dapodik.",
    ),
    "invalid_assessor_nip": Who(
        Actor.SCHOOL_OPERATOR,
        "Penilai atau NIP penilai tidak sah. Operator sekolah memeriksa data kepala sekolah "
        "(penilai) di Dapodik / PMM.",
    ),
    "self_assessment": Who(
        Actor.SCHOOL_OPERATOR,
        "Pegawai tercatat sebagai penilai dirinya sendiri. Operator sekolah menetapkan penilai "
        "yang benar (kepala sekolah) di Dapodik / PMM.",
    ),
    "UNOR_TIDAK_AKTIF": Who(
        Actor.SCHOOL_OPERATOR,
        "Unit kerja sekolah belum aktif atau belum terpetakan di data BKN. Operator sekolah "
        "memastikan NPSN dan data sekolah di Dapodik benar, lalu meminta dinas mengajukan "
        "aktivasi unit kerja ke BKPSDM.",
    ),
    # -- the dinas: decided there, never on a school's list -------------------------------
    **{
        code: Who(Actor.DINAS)
        for code in (
            "no_assessor",
            "malformed",
            "unknown_schema_version",
            "mapping_failed",
            "finalised_before_period",
            "VALIDASI",
            "PERIODE_TIDAK_ADA",
            "PENILAI_BELUM_ADA_SKP",
            "SKP_TERKUNCI",
            "PENILAIAN_SUDAH_ADA",
            "IDEMPOTENCY_KEY_REUSED",
            "SKP_SUDAH_ADA",
            "retries_exhausted",
            "retries_exhausted_server_error",
            "retries_exhausted_timeout",
            "retries_exhausted_rate_limited",
            "retries_exhausted_busy",
            "held",
            "locked",
            "cancelled_after_delivery",
        )
    },
    # -- on no list: it goes by itself, or an operator closed it ----------------------------
    "waiting_for_skp": Who(Actor.NOBODY),
    "DISCARDED": Who(Actor.NOBODY),
    # e-Kinerja asked to wait (429) or was busy (503): the next run sends it again.
    "rate_limited": Who(Actor.NOBODY),
    "target_busy": Who(Actor.NOBODY),
}

# The reasons planning and delivery give a waiting record (sync.pipeline.plan,
# sync.delivery.deliver), by their start: the state store keeps the reason, not a code.
_WAITING_REASONS = (
    ("perencanaan not approved", "plan_not_approved"),
    ("penilaian is belum", "assessment_not_started"),
    ("penilaian is draf", "assessment_draft"),
    ("waiting for its skp", "waiting_for_skp"),
)


def waiting_code(reason: str | None) -> str | None:
    """The waiting code of a waiting record's reason, or None for a reason no one acts on."""
    text = (reason or "").lower()
    return next((code for start, code in _WAITING_REASONS if text.startswith(start)), None)


def who_acts(code: str | None, *, assessor_role: str | None = None) -> Actor:
    """Who must act on a record waiting with ``code``.

    ``assessor_role``: the record's penilai (``mappings.model.Role`` value: ``principal``,
    ``supervisor``, ``head_of_office``; None when unknown). A penilai's step is the school's
    only when the penilai is its kepala sekolah (or unknown); a pengawas sekolah or the
    Kepala Dinas is the dinas's side. An unknown code is the dinas's.
    """
    actor = CODES.get(code or "", Who(Actor.DINAS)).actor
    if actor is Actor.ASSESSOR and assessor_role not in (None, "principal"):
        return Actor.DINAS
    return actor


def school_text(code: str | None) -> str | None:
    """What the school does about ``code``, in Bahasa Indonesia (None: not the school's)."""
    return CODES.get(code or "", Who(Actor.DINAS)).text


class Desk(StrEnum):
    """Who acts, as the dinas's console groups what is open (issue 27): the school (its
    teachers, its penilai, its operator), the dinas, BKD / BKPSDM (a unit kerja or a NIP at
    BKN, which neither a school nor the dinas changes), or nobody (it goes by itself)."""

    SCHOOL = "school"
    DINAS = "dinas"
    BKD = "bkd"
    AUTO = "auto"


DESK_ORDER = (Desk.DINAS, Desk.BKD, Desk.SCHOOL, Desk.AUTO)
DESK_LABELS: dict[Desk, str] = {
    Desk.SCHOOL: "Sekolah / penilai",
    Desk.DINAS: "Dinas",
    Desk.BKD: "BKD / BKPSDM",
    Desk.AUTO: "Berjalan otomatis",
}

# The codes only BKD / BKPSDM can clear: the school's unit kerja in SIASN, a NIP BKN does not
# know. A school may have to check its Dapodik first (its list says so), but the fix is BKN's.
BKD_CODES = frozenset({"UNOR_TIDAK_AKTIF", "NIP_TIDAK_DITEMUKAN"})


def desk(code: str | None, *, assessor_role: str | None = None) -> Desk:
    """Where the dinas's console files ``code``: ``who_acts`` folded into the four desks, with
    the unit kerja and NIP matters of ``BKD_CODES`` at BKD / BKPSDM."""
    if code in BKD_CODES:
        return Desk.BKD
    actor = who_acts(code, assessor_role=assessor_role)
    if actor is Actor.NOBODY:
        return Desk.AUTO
    return Desk.DINAS if actor is Actor.DINAS else Desk.SCHOOL
