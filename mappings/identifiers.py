"""Identifier checks for ASN teachers and schools (docs/domain.md, "Identifiers").

Each check returns ``None`` when the value is valid, or a reason a person can act on.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = [
    "check_birth_date",
    "check_nip",
    "check_npsn",
    "check_nuptk",
    "check_tmt_cpns_age",
    "check_tmt_cpns_period",
    "nip_birth_date",
]

_DIGITS_18 = re.compile(r"\d{18}", re.ASCII)
_DIGITS_16 = re.compile(r"\d{16}", re.ASCII)
_NPSN = re.compile(r"[0-9A-Z]{8}")


def _real_date(yyyymmdd: str) -> bool:
    try:
        dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return True


def check_nip(nip: object, employment_status: str) -> str | None:
    """Check an 18-digit NIP (PNS) or NI PPPK; ``employment_status`` is ``PNS`` or ``PPPK``.

    PNS:  birth date YYYYMMDD + TMT CPNS YYYYMM + sex + sequence (not 000).
    PPPK: birth date YYYYMMDD + appointment year YYYY + 2-digit code (not a month) + sex + seq.
    """
    if not isinstance(nip, str) or not _DIGITS_18.fullmatch(nip):
        return f"NIP {nip!r} is not 18 digits"
    if not _real_date(nip[:8]):
        return f"NIP {nip}: birth date {nip[:8]} is not a real date"
    if employment_status == "PNS":
        month = int(nip[12:14])
        if not 1 <= month <= 12:
            return f"NIP {nip}: TMT CPNS month {nip[12:14]} is not 01-12"
    elif employment_status != "PPPK":
        return f"NIP {nip}: unknown employment status {employment_status!r} (PNS or PPPK)"
    if nip[14] not in "12":
        return f"NIP {nip}: sex digit {nip[14]} is not 1 or 2"
    if nip[15:] == "000":
        return f"NIP {nip}: sequence number 000 is not issued"
    return None


def nip_birth_date(nip: str) -> dt.date:
    """The birth date in the first 8 digits of a NIP or NI PPPK that ``check_nip`` passed."""
    return dt.date(int(nip[:4]), int(nip[4:6]), int(nip[6:8]))


def check_birth_date(nip: str, written_on: dt.date) -> str | None:
    """A birth date after the day the record was written is impossible (any NIP's first 8
    digits; ``check_nip`` passed). The day itself is allowed: nothing is guessed."""
    birth = nip_birth_date(nip)
    if birth > written_on:
        return (
            f"NIP {nip}: birth date {birth.isoformat()} is in the future (PMM wrote the record "
            f"on {written_on.isoformat()})"
        )
    return None


def _tmt_cpns(nip: str) -> tuple[int, int]:
    return int(nip[8:12]), int(nip[12:14])


def check_tmt_cpns_age(nip: str) -> str | None:
    """A PNS NIP's TMT CPNS (digits 9-14, a month) before its own 18th birthday (the minimum
    age of a CPNS) is impossible. The month of that birthday is allowed (a TMT is a month),
    and both dates come from the NIP itself: nothing is guessed about a plausible age.
    ``check_nip`` passed for a PNS."""
    birth = nip_birth_date(nip)
    year, month = _tmt_cpns(nip)
    if (year, month) < (birth.year + 18, birth.month):
        return (
            f"NIP {nip}: TMT CPNS {year:04d}-{month:02d} is before the 18th birthday (born "
            f"{birth.isoformat()}), so one of the two dates in the NIP is wrong"
        )
    return None


def check_tmt_cpns_period(nip: str, period_end: dt.date) -> str | None:
    """A PNS NIP's TMT CPNS after the period ended is impossible: nobody with this NIP was a
    PNS during it. A TMT in the period's last month is allowed."""
    year, month = _tmt_cpns(nip)
    if (year, month) > (period_end.year, period_end.month):
        return (
            f"NIP {nip}: TMT CPNS {year:04d}-{month:02d} is after the period ended "
            f"({period_end.isoformat()}), so no PNS with this NIP was assessed in it"
        )
    return None


def check_nuptk(nuptk: object) -> str | None:
    """NUPTK: 16 digits; absent (``None``, or empty as Dapodik exports often have it) is
    allowed. NUPTK is never sent to e-Kinerja: a bad one is a note, never a refusal."""
    if nuptk is None or nuptk == "":
        return None
    if not isinstance(nuptk, str):
        return f"NUPTK {nuptk!r} is not a text of 16 digits"
    if not _DIGITS_16.fullmatch(nuptk):
        return f"NUPTK {nuptk!r} is not 16 digits"
    return None


def check_npsn(npsn: object) -> str | None:
    """NPSN: 8 characters, digits or capital letters, and nothing more can be known here.

    Most schools have 8 digits with any first digit; PKBM/SKB have ``P`` + 7 digits, LKP
    ``K`` + 7 digits. Whether the school exists and is active is the national register's
    answer (e-Kinerja's ``UNOR_TIDAK_AKTIF``): a guess at the inner structure here would
    silently drop a whole school.
    """
    if not isinstance(npsn, str) or not _NPSN.fullmatch(npsn):
        return f"NPSN {npsn!r} is not 8 digits or capital letters"
    return None
