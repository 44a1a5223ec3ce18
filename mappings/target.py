"""The e-Kinerja payloads (docs/apis.md, "Target: SKP" and "Target: penilaian"), as typed
models.

A mapping version builds these, so what we send is checked against the contract's shape
before it leaves (a mapping bug fails here, loudly, not as a 422 from the national system).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    model_validator,
)

from mappings._errors import describe

__all__ = [
    "AssessmentPayload",
    "AssessmentPayloadWithMonths",
    "MappingError",
    "SkpPayload",
    "SkpPayloadWithKind",
]


class MappingError(ValueError):
    """A mapping produced a payload that breaks the target's contract."""


RatingWire = Literal["DIATAS_EKSPEKTASI", "SESUAI_EKSPEKTASI", "DIBAWAH_EKSPEKTASI"]
JobKindWire = Literal["guru", "kepala_sekolah"]
PredicateWire = Literal["SANGAT_BAIK", "BAIK", "BUTUH_PERBAIKAN", "KURANG", "SANGAT_KURANG"]
Nip = Field(pattern=r"^[0-9]{18}$")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def build(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Check ``data`` against the contract and return the JSON body as sent."""
        try:
            return cls.model_validate(data).to_wire()
        except ValidationError as exc:
            raise MappingError(f"{cls.__name__} breaks the contract: {describe(exc)}") from None

    def to_wire(self) -> dict[str, Any]:
        """The JSON body as sent."""
        return self.model_dump(mode="json", exclude_none=False)


class Periode(_Payload):
    tahun: int
    semester: Literal[1, 2]
    tanggal_mulai: dt.date
    tanggal_selesai: dt.date


class PeriodeWithKind(_Payload):
    """The period with its kind (``jenis``): a semester, or a year with ``semester`` null."""

    tahun: int
    jenis: Literal["semester", "tahunan"]
    semester: Literal[1, 2] | None
    tanggal_mulai: dt.date
    tanggal_selesai: dt.date

    @model_validator(mode="after")
    def _semester_fits_kind(self) -> PeriodeWithKind:
        if (self.jenis == "tahunan") != (self.semester is None):
            raise ValueError("semester is null for a tahunan period and 1 or 2 for a semester")
        return self


class UnitKerja(_Payload):
    npsn: str = Field(pattern=r"^[0-9A-Z]{8}$")
    nama: str = Field(min_length=1)


class PejabatPenilai(_Payload):
    nip: str = Nip


class IndikatorRhk(_Payload):
    kode: str = Field(pattern=r"^[GK]-0[1-8]$")
    uraian: str
    target: str


class RencanaHasilKerja(_Payload):
    uraian: str
    indikator: list[IndikatorRhk] = Field(min_length=1, max_length=2)


class Sumber(_Payload):
    sistem: Literal["PMM"] = "PMM"
    id: str
    versi_skema: int


class SkpPayload(_Payload):
    nip: str = Nip
    periode: Periode
    jenis_jabatan: JobKindWire
    jabatan: str
    unit_kerja: UnitKerja
    pejabat_penilai: PejabatPenilai
    rencana_hasil_kerja: list[RencanaHasilKerja] = Field(min_length=1)
    sumber: Sumber


class SkpPayloadWithKind(SkpPayload):
    """The SKP body with the period's kind (mapping versions from 2026.2)."""

    periode: PeriodeWithKind  # type: ignore[assignment]


class AssessmentPayload(_Payload):
    rating_hasil_kerja: RatingWire
    rating_perilaku_kerja: RatingWire
    predikat_kinerja: PredicateWire
    tanggal_penilaian: dt.date
    pejabat_penilai: PejabatPenilai
    angka_kredit: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    catatan: str | None = Field(default=None, max_length=2000)

    @field_serializer("angka_kredit")
    def _number(self, value: Decimal | None) -> float | None:
        # A JSON number with at most 2 decimals; exact in Decimal until this last step.
        return None if value is None else float(value)

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        if body["angka_kredit"] is None:
            del body["angka_kredit"]  # only for jabatan fungsional: absent otherwise
        return body


class AssessmentPayloadWithMonths(AssessmentPayload):
    """The penilaian body with ``bulan_dinilai`` and angka kredit to 3 decimals (mapping
    versions from 2026.2). Both go together, or neither (no jabatan fungsional grade)."""

    angka_kredit: Decimal | None = Field(default=None, ge=0, decimal_places=3)
    bulan_dinilai: int | None = Field(default=None, ge=1, le=12)

    @model_validator(mode="after")
    def _months_with_credit(self) -> AssessmentPayloadWithMonths:
        if (self.angka_kredit is None) != (self.bulan_dinilai is None):
            raise ValueError("bulan_dinilai goes with angka_kredit, and only with it")
        return self

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        if body["bulan_dinilai"] is None:
            del body["bulan_dinilai"]
        return body
