"""sync.mapping_diff.diff_payloads: which fields of a payload change, with before and after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sync.operations.mapping_diff import FieldChange, diff_payloads

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def test_equal_payloads_have_no_changes() -> None:
    body = {"nip": "1", "periode": {"tahun": 2025}, "list": [1, {"a": None}]}
    assert diff_payloads(body, json.loads(json.dumps(body))) == []


def test_a_changed_leaf_is_named_by_its_path() -> None:
    before = {"rencana_hasil_kerja": [{"indikator": [{"kode": "G-01", "target": "a"}]}]}
    after = {"rencana_hasil_kerja": [{"indikator": [{"kode": "G-01", "target": "b"}]}]}
    assert diff_payloads(before, after) == [
        FieldChange("rencana_hasil_kerja[0].indikator[0].target", "changed", "a", "b")
    ]


def test_added_and_removed_keys() -> None:
    before = {"angka_kredit": 12.5, "catatan": None}
    after = {"catatan": None, "extra": {"x": 1}}
    assert diff_payloads(before, after) == [
        FieldChange("angka_kredit", "removed", 12.5, None),
        FieldChange("extra", "added", None, {"x": 1}),
    ]


def test_null_and_absent_differ() -> None:
    assert diff_payloads({"catatan": None}, {}) == [FieldChange("catatan", "removed", None, None)]
    assert diff_payloads({"catatan": " x "}, {"catatan": None}) == [
        FieldChange("catatan", "changed", " x ", None)
    ]


def test_a_longer_list_adds_whole_items() -> None:
    one = {"uraian": "u", "indikator": [{"kode": "K-01"}]}
    two = {"uraian": "u", "indikator": [{"kode": "K-06"}]}
    changes = diff_payloads({"rhk": [one]}, {"rhk": [one, two]})
    assert changes == [FieldChange("rhk[1]", "added", None, two)]
    assert diff_payloads({"rhk": [one, two]}, {"rhk": [one]}) == [
        FieldChange("rhk[1]", "removed", two, None)
    ]


def test_numbers_compare_as_json_numbers_but_booleans_do_not_equal_numbers() -> None:
    assert diff_payloads({"n": 50}, {"n": 50.0}) == []
    assert diff_payloads({"b": True}, {"b": 1}) == [FieldChange("b", "changed", True, 1)]


def test_a_type_change_is_one_change() -> None:
    assert diff_payloads({"x": [1]}, {"x": {"a": 1}}) == [
        FieldChange("x", "changed", [1], {"a": 1})
    ]


def test_whole_body_scalar() -> None:
    assert diff_payloads(1, 2) == [FieldChange("(body)", "changed", 1, 2)]


def test_changes_render_as_json() -> None:
    change = FieldChange("a.b", "added", None, [1])
    assert json.loads(json.dumps(change.as_dict())) == {
        "path": "a.b",
        "change": "added",
        "before": None,
        "after": [1],
    }


def test_golden_kepala_sekolah_from_2025_1_to_2026_1() -> None:
    """The real switch on the golden files: two indicators become two rencana hasil kerja."""
    name = "v2_kepala_sekolah_2026_two_indicators_final.skp.json"
    before = json.loads((GOLDEN / "2025.1" / name).read_text("utf-8"))
    after = json.loads((GOLDEN / "2026.1" / name).read_text("utf-8"))
    changes = diff_payloads(before, after)
    paths = [c.path for c in changes]
    assert paths == [
        "rencana_hasil_kerja[0].indikator[0].target",
        "rencana_hasil_kerja[0].indikator[1]",
        "rencana_hasil_kerja[1]",
    ]
    assert changes[1].change == "removed"
    assert changes[2].change == "added"
    assert changes[2].after["indikator"][0]["kode"] == "K-06"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def _apply(before: Any, changes: list[FieldChange]) -> Any:
    """Rebuild ``after`` from ``before`` and the changes (paths are unambiguous here)."""
    import copy
    import re

    value = copy.deepcopy(before)
    # Removals first, of list items from the end, so indexes stay right.
    removed = sorted((c for c in changes if c.change == "removed"), key=lambda c: c.path)
    for change in [*reversed(removed), *(c for c in changes if c.change != "removed")]:
        if change.path == "(body)":
            value = copy.deepcopy(change.after)
            continue
        parts: list[str | int] = []
        for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", change.path):
            parts.append(int(index) if index else key)
        node = value
        for part in parts[:-1]:
            node = node[part]
        last = parts[-1]
        if change.change == "removed":
            del node[last]
        elif isinstance(node, list) and change.change == "added":
            node.append(copy.deepcopy(change.after))
        else:
            node[last] = copy.deepcopy(change.after)
    return value


SAFE_KEYS = st.text(alphabet="abcdef", min_size=1, max_size=3)
SAFE_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_KEYS, inner, max_size=3),
    max_leaves=12,
)


@given(SAFE_JSON, SAFE_JSON)
def test_the_changes_turn_before_into_after(before: Any, after: Any) -> None:
    changes = diff_payloads(before, after)
    same = json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
    assert (changes == []) == same
    rebuilt = _apply(before, changes)
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(after, sort_keys=True)


@given(JSON)
def test_a_value_has_no_changes_against_itself(value: Any) -> None:
    assert diff_payloads(value, value) == []
