"""Who a stored PMM record is about, read best-effort from its raw body (either schema
version), for the people who must act on it: the teacher's name and role, the penilai's
role, the school's name.

``read_record`` validates a record in full and returns nothing but a reason for a bad one;
a school's action list still names the teacher of a quarantined record, so this reads the
few fields it needs from whatever the record holds and never raises: a missing or odd value
is ``None``. The contract's field names stay here, in ``mappings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mappings.model import Role

__all__ = ["RecordPeople", "people_of"]

_ROLES = {
    "guru": Role.TEACHER,
    "kepala_sekolah": Role.PRINCIPAL,
    "pengawas_sekolah": Role.SUPERVISOR,
    "kepala_dinas": Role.HEAD_OF_OFFICE,
}


@dataclass(frozen=True, slots=True)
class RecordPeople:
    """The people a record names; each ``None`` when the record does not say it plainly."""

    name: str | None
    role: Role | None  # the teacher's own: TEACHER or PRINCIPAL
    assessor_role: Role | None  # PRINCIPAL, SUPERVISOR or HEAD_OF_OFFICE
    school_name: str | None


def _text(raw: Mapping[str, Any], *path: str) -> str | None:
    node: Any = raw
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node.strip() or None if isinstance(node, str) else None


def people_of(raw: object) -> RecordPeople:
    """The people of a raw ``Kinerja`` record (schema 1: ``pegawai.peran``; 2: ``jenis_ptk``)."""
    if not isinstance(raw, Mapping):
        return RecordPeople(None, None, None, None)
    role = _text(raw, "pegawai", "jenis_ptk") or _text(raw, "pegawai", "peran")
    assessor = _text(raw, "penilai", "peran")
    return RecordPeople(
        name=_text(raw, "pegawai", "nama"),
        role=_ROLES.get(role or ""),
        assessor_role=_ROLES.get(assessor or ""),
        school_name=_text(raw, "sekolah", "nama"),
    )
