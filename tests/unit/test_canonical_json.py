"""state.canonical: orjson's speed, json.dumps' bytes, for every value (issue 14, item 6).

Canonical JSON is defined as ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``; content hashes, idempotency keys and the ledger's hash chain are taken
of it, so the fast path must give exactly those bytes, and raise where json.dumps raises.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import uuid
from collections import OrderedDict, namedtuple
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings.model import PerformanceRecord
from mappings.source import read_record
from mappings.versions import MAPPING_VERSIONS
from state import ledger
from state.canonical import canonical_json, canonical_json_bytes
from sync.hashing import canonical_json_and_hash, content_hash, idempotency_key
from sync.pipeline.plan import plan_record

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _outcome(function: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", function(value)
    except Exception as exc:  # the exception's type and message are part of the behaviour
        return "raises", (type(exc), str(exc))


def _check(value: Any) -> None:
    """Both functions behave as json.dumps (the bytes: as its text encoded as UTF-8)."""
    assert _outcome(canonical_json, value) == _outcome(_reference, value)
    expected = _outcome(lambda v: _reference(v).encode("utf-8"), value)
    assert _outcome(canonical_json_bytes, value) == expected


# -- arbitrary JSON-like values ------------------------------------------------------------

_SPECIAL_CHARS = st.sampled_from(
    [
        *("\x00", "\x08", "\x1f", '"', "\\", "/", "\x7f", "\x80", "\u2028", "\u2029", "\ufeff"),
        *("\uffff", "\U0001f600", "\U0010ffff", "é"),
        *("\ud800", "\udbff", "\udc00", "\udfff"),  # lone surrogates
    ]
)
# Every code point, surrogates included (hypothesis leaves them out unless asked).
_CHARS = st.one_of(st.characters(codec=None, exclude_categories=()), _SPECIAL_CHARS)
_TEXT = st.text(_CHARS, max_size=12)
_INTS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    # orjson's limits: [-2**63, 2**64 - 1]
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 0, -1]),
)
_FLOATS = st.one_of(
    st.floats(),  # NaN, infinities, -0.0, subnormals, every exponent
    st.floats(min_value=-1e-3, max_value=1e-3),  # where Python's repr writes e-05..e-09
    st.sampled_from([1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 1.234e-7, 5e-324, -0.0]),
    st.decimals(places=2, min_value=0, max_value=1000, allow_nan=False).map(float),
)
_LEAVES = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT)
_JSON = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(_TEXT, inner, max_size=5),
    ),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_arbitrary_json_values_give_json_dumps_bytes(value: Any) -> None:
    _check(value)


class _Color(enum.Enum):
    RED = 1


class _Level(enum.IntEnum):
    ONE = 1


class _Name(enum.StrEnum):
    A = "a"


class _Str(str):
    pass


class _Int(int):
    def __repr__(self) -> str:
        return "not a number"


class _Items(dict[str, Any]):
    """json.dumps reads a dict subclass through items(); orjson reads the dict itself."""

    def items(self) -> Any:
        return [("swapped", True)]


@dataclasses.dataclass
class _Point:
    x: int


_Pair = namedtuple("_Pair", "a b")


# Values json.dumps writes differently from orjson or refuses: each must behave as json.dumps.
_ODD = st.sampled_from(
    [
        (1, 2),
        _Pair(1, 2),
        _Color.RED,
        _Level.ONE,
        _Name.A,
        _Str("x"),
        _Int(5),
        _Items(a=1),
        OrderedDict(b=1, a=2),
        uuid.UUID(int=1),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        dt.date(2026, 1, 1),
        _Point(1),
        {1: "int key"},
        {True: "bool key"},
        {None: "none key"},
        {1.5: "float key"},
        {_Str("k"): "str subclass key"},
        {"a": 1, 2: "mixed keys"},
        b"bytes",
        set(),
    ]
)
_ANY = st.recursive(
    st.one_of(_LEAVES, _ODD),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_TEXT, inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ANY)
def test_values_json_dumps_refuses_or_writes_its_own_way_behave_as_json_dumps(value: Any) -> None:
    _check(value)


# -- each known difference between orjson and json.dumps, by name --------------------------


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    "value",
    [
        1e16,  # json 1e+16
        {"a": 1e-05},  # json 1e-05; orjson 0.00001
        [1.234e-07],  # json 1.234e-07; orjson 1.234e-7
        float("nan"),  # json NaN; orjson null
        {"x": float("inf")},
        [float("-inf")],
        -0.0,
        5e-324,
        1.7976931348623157e308,
        {"angka_kredit": 75.0, "b": 12.5, "c": 3.13},
        2**64,  # beyond orjson's 64 bits
        -(2**63) - 1,
        2**64 - 1,
        "\ud800",  # a lone surrogate: json.dumps keeps it; encoding it raises
        {"\udfff": 1},
        '\x00\x1f\x7f\u2028\u2029\U0001f600é"\\/',
        {1: 2, "1": 3},  # json.dumps writes the key twice
        {None: 1},
        {1.5: 1},
        {True: 1, "b": 2},  # json.dumps cannot sort bool against str: TypeError
        {"z": 1, "a": {"y": 2, "b": [3, {"\U0001f600": 0, "\uffff": 1}]}},
        (1, "a", None),
        _Color.RED,
        _Level.ONE,
        _Name.A,
        _Str("x"),
        _Int(5),
        _Items(a=1),
        uuid.UUID(int=1),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        _Point(1),
        _nested(300),  # deeper than orjson's limit: json.dumps writes it
        _circular(),  # json.dumps: ValueError
    ],
    ids=repr,
)
def test_known_differences_behave_as_json_dumps(value: Any) -> None:
    _check(value)


def test_every_code_point_is_escaped_as_json_dumps_does() -> None:
    # Both escape character by character, so one string holding every code point is a proof
    # for all strings (lone surrogates, which orjson refuses, are the property tests' part).
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert canonical_json_bytes(every) == _reference(every).encode("utf-8")
    keys = {chr(c): c for c in range(0, 0x110000, 97) if not 0xD800 <= c <= 0xDFFF}
    assert canonical_json_bytes(keys) == _reference(keys).encode("utf-8")


# -- hashes of real payloads, as they were before orjson ------------------------------------

# Computed with the json.dumps implementation (commit 76330c9) and written down: a change of
# canonical JSON would change what is stored, sent and chained, so these must never change.
_GOLDEN_HASHES = {
    ("2026.2", "annual_guru_ahli_utama_very_good"): (
        "add99ea5e4bab3c741bfa127d85bf75942c33dad972807cd5aeb42b6282f63e0",
        "01171812967edf4db5303353172d9e8dc70b8f572658352769ce82f5c04b381a",
        "12ee1302cfbdfbb47d4186081c76de518a79195a5c0896039453032fc2606bfd",
    ),
    ("2025.1", "v1_guru_final"): (
        "df373e752d94de226aec7fc388a104b9f9f4fd9d6f55505ac3674191be66c5b7",
        "e9dde35d3b5b67604351cb795e06b99ed5ad20e4410aaf85d917bbbcf3c9fa30",
        "20cacc9da4dcfafd77225b85e3279ff4b988b2c842c54035cab6f950c50806e9",
    ),
}


@pytest.mark.parametrize(("version", "case"), sorted(_GOLDEN_HASHES))
def test_hashes_of_real_payloads_are_unchanged(version: str, case: str) -> None:
    raw = json.loads((GOLDEN / version / f"{case}.source.json").read_text(encoding="utf-8"))
    record = read_record(raw)
    assert isinstance(record, PerformanceRecord)
    skp, assessment = plan_record(record, None, None, MAPPING_VERSIONS[version])
    assert skp.send is not None
    assert assessment.send is not None
    source_hash, skp_hash, assessment_hash = _GOLDEN_HASHES[(version, case)]
    assert content_hash(raw) == source_hash  # what ingest stores of PMM's record
    assert skp.send.payload_hash == skp_hash
    assert assessment.send.payload_hash == assessment_hash  # holds a float (angka_kredit)
    for send in (skp.send, assessment.send):
        body = json.loads(send.body_json)
        assert send.body_json == _reference(body)
        assert canonical_json_and_hash(body) == (send.body_json, send.payload_hash)
    if case == "annual_guru_ahli_utama_very_good":
        key = idempotency_key("create_skp", "196802021990032006", "2026", skp.send.body_json)
        assert (
            key == "eks-create_skp-ae3055bfeca48ccd6f0bf4c07ce0301a42916368500a09d3107485fbe1cac6be"
        )


def test_a_ledger_entry_hash_is_unchanged() -> None:
    body = {"angka_kredit": 12.5, "catatan": "Sangat baik — “rapi”\u2028😀", "kecil": 1e-07}
    row = {
        "seq": 7,
        "at": dt.datetime(2026, 5, 1, 1, 2, 3, 4567, tzinfo=dt.UTC),
        "run_id": "run-1",
        "actor": "daemon",
        "action": "create_assessment",
        "outcome": "rejected",
        "period": "2026",
        "npsn": "80004321",
        "nip": "196802021990032006",
        "employee_name": "Ni Luh Putu Ayu Wulandari, S.Pd.",
        "kind": "penilaian",
        "mapping_version": "2026.2",
        "idempotency_key": "eks-create_assessment-" + "ab" * 32,
        "request_body": ledger._body_text(body),
        "http_status": 422,
        "answer_body": '{"pesan":"VALIDASI"}',
        "duration_ms": 37,
        "detail": None,
        "prev_hash": "0" * 64,
    }
    assert row["request_body"] == _reference(body)  # 1e-07: written by the fallback
    assert ledger.entry_hash(row) == (
        "7a18e16c403b952a9a838efe55817b01067c62e53866e234dd628597054f500b"
    )
    # The module docstring's recipe, step by step, gives the same hash.
    content = ledger.entry_content(row)
    material = row["prev_hash"] + _reference(content)
    assert ledger.entry_hash(row) == hashlib.sha256(material.encode("utf-8")).hexdigest()
