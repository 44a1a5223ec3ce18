"""Golden tests: for every registered mapping version, the exact bodies it sends per source record.

``tests/golden/<version>/<case>.source.json`` is a PMM ``Kinerja`` record (schema v1 or v2);
beside it ``<case>.skp.json`` and ``<case>.penilaian.json`` hold the body the version must send
for it as a new record (what ``sync.plan.plan_record`` puts in the outbox), or ``null`` when
nothing is sent (plan not approved; penilaian not final). The comparison is exact, on the
canonical JSON as sent: a number that turns from ``12.5`` into ``12.50`` or ``13`` fails.

Every version holds every case of the first version (2025.1), with the same source file: a
new version answers for all the records the old ones did.

To regenerate after a deliberate change (or to start the files of a new version, copied from
the first version's sources)::

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_golden.py

then read ``git diff tests/golden`` line by line before committing it: the files are the
review of what e-Kinerja will receive (angka kredit against docs/domain.md, "Angka kredit"
above all). A released version's files never change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from mappings.model import PerformanceRecord
from mappings.source import read_record
from mappings.versions import FIRST_VERSION, MAPPING_VERSIONS, MappingVersion
from sync.hashing import canonical_json
from sync.pipeline.plan import plan_record

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SOURCE = ".source.json"


def _case_names(version: str) -> list[str]:
    return sorted(p.name.removesuffix(SOURCE) for p in (GOLDEN / version).glob(f"*{SOURCE}"))


def _ensure_version_dir(version: str) -> None:
    """With UPDATE_GOLDEN=1, a new version starts from the first version's source files."""
    folder = GOLDEN / version
    if not UPDATE or version == FIRST_VERSION:
        return
    folder.mkdir(exist_ok=True)
    for name in _case_names(FIRST_VERSION):
        target = folder / f"{name}{SOURCE}"
        if not target.exists():
            shutil.copyfile(GOLDEN / FIRST_VERSION / f"{name}{SOURCE}", target)


for _version in MAPPING_VERSIONS:
    _ensure_version_dir(_version)

CASES = [
    pytest.param(version, name, id=f"{version}/{name}")
    for version in sorted(MAPPING_VERSIONS)
    for name in _case_names(version)
]


def _sent(record: PerformanceRecord, mapping: MappingVersion) -> dict[str, str | None]:
    """The bodies a new record goes out with, as canonical JSON (None: nothing sent)."""
    skp, assessment = plan_record(record, None, None, mapping)
    return {
        "skp": skp.send.body_json if skp.send is not None else None,
        "penilaian": assessment.send.body_json if assessment.send is not None else None,
    }


def _write(path: Path, body_json: str | None) -> None:
    value: Any = json.loads(body_json) if body_json is not None else None
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


@pytest.mark.parametrize(("version", "case"), CASES)
def test_version_sends_exactly_the_golden_bodies(version: str, case: str) -> None:
    folder = GOLDEN / version
    record = read_record(json.loads((folder / f"{case}{SOURCE}").read_text(encoding="utf-8")))
    assert isinstance(record, PerformanceRecord), f"golden source {case} is refused: {record}"
    sent = _sent(record, MAPPING_VERSIONS[version])
    for kind, body_json in sent.items():
        path = folder / f"{case}.{kind}.json"
        if UPDATE:
            _write(path, body_json)
            continue
        assert path.exists(), f"{path} is missing: UPDATE_GOLDEN=1 writes it (then review it)"
        expected = json.loads(path.read_text(encoding="utf-8"))
        if expected is None:
            assert body_json is None, f"{version} sends a {kind} for {case}; golden says none"
        else:
            assert body_json is not None, f"{version} sends no {kind} for {case}"
            assert body_json == canonical_json(expected), (
                f"{version} {kind} of {case} differs from {path.name}"
            )


@pytest.mark.parametrize("version", sorted(MAPPING_VERSIONS))
def test_every_version_answers_for_every_case_of_the_first(version: str) -> None:
    assert (GOLDEN / version).is_dir(), (
        f"no golden files for mapping version {version}: UPDATE_GOLDEN=1 starts them"
    )
    default = _case_names(FIRST_VERSION)
    assert default, "the default version has golden cases"
    assert set(default) <= set(_case_names(version))
    for name in default:
        ours = (GOLDEN / version / f"{name}{SOURCE}").read_bytes()
        assert ours == (GOLDEN / FIRST_VERSION / f"{name}{SOURCE}").read_bytes(), (
            f"{version}/{name}{SOURCE} differs from the default version's: one source, one case"
        )


def test_golden_cases_cover_both_schemas_both_roles_and_every_penilaian_state() -> None:
    records = []
    for name in _case_names(FIRST_VERSION):
        raw = json.loads((GOLDEN / FIRST_VERSION / f"{name}{SOURCE}").read_text("utf-8"))
        record = read_record(raw)
        assert isinstance(record, PerformanceRecord)
        records.append(record)
    assert {r.schema_version for r in records} == {1, 2}
    assert {r.employee.role.value for r in records} == {"teacher", "principal"}
    assert {r.assessment.status.value for r in records} == {"not_started", "draft", "final"}
    assert any(len(r.indicators) == 2 for r in records)
    assert any(r.employee.grade is None and r.assessment_final for r in records)


def test_no_stray_golden_files() -> None:
    """Every file belongs to a case of a registered version (a removed case leaves none)."""
    for folder in GOLDEN.iterdir():
        assert folder.name in MAPPING_VERSIONS, f"{folder} is not a registered mapping version"
        names = set(_case_names(folder.name))
        for path in folder.iterdir():
            case, _, suffix = path.name.partition(".")
            assert case in names, path
            assert suffix in {"source.json", "skp.json", "penilaian.json"}, path
