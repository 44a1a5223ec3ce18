"""Identifier checks for ASN teachers and schools (see shared/domain.md, "Identifiers").

Each check returns ``None`` when the value is valid, or a reason a person can act on.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["check_nip", "check_npsn", "check_nuptk"]

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


def check_nuptk(nuptk: object) -> str | None:
    """NUPTK: 16 digits; ``None`` (absent) is allowed."""
    if nuptk is None:
        return None
    if not isinstance(nuptk, str) or not _DIGITS_16.fullmatch(nuptk):
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
