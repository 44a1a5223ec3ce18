"""Canonical JSON: the text every content hash, idempotency key and ledger hash is taken of.

The canonical form is, by definition, what
``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` writes:
keys sorted, no whitespace between tokens, non-ASCII characters as themselves. Hashes of
stored data depend on every byte of it, so it must never change.

orjson writes the same bytes several times faster, but not for every value (it writes NaN
as ``null``, some small floats as ``1e-7`` instead of ``1e-07``, serializes enums, UUIDs
and datetimes that ``json`` refuses, and refuses ints beyond 64 bits and lone surrogates).
So orjson's bytes are used only for values made of exactly these types, for which both
write the same text:

- ``dict`` with ``str`` keys: ``{`` + ``"key":value`` sorted by key, joined by ``,`` + ``}``
  (orjson sorts by UTF-8 bytes, which is code point order, as Python sorts ``str``);
- ``list``: ``[`` + values joined by ``,`` + ``]``;
- ``str``: the same escapes (``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f``,
  other characters below U+0020 as lowercase ``\\u00XX``), every other character as itself
  (a test checks every code point);
- ``int`` (not a subclass): decimal digits; ``bool`` and ``None``: ``true``/``false``/``null``;
- ``float`` (not a subclass) whose orjson text is exactly ``float.__repr__`` (what ``json``
  writes for a finite float): checked per float, so this holds whatever orjson's float
  formatting is, and NaN and the infinities (orjson writes ``null``) never pass.

Anything else (subclasses of str, int, dict and list, tuples, non-str keys, other types, a
float whose texts differ) is written by ``json.dumps`` itself, as is everything orjson
refuses (ints beyond 64 bits, lone surrogates, nesting deeper than orjson's limit, cycles),
so the result, and the exception where ``json.dumps`` raises one, are ``json.dumps``'s.
``tests/unit/test_canonical_json.py`` checks this on arbitrary values.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["canonical_json", "canonical_json_bytes"]

_OPTION = orjson.OPT_SORT_KEYS
# Types both write alike (module docstring), by exact type: a subclass may be written otherwise.
_LEAVES = frozenset((str, int, bool, type(None)))


def _json_dumps(value: Any) -> str:
    """The definition of the canonical form (module docstring)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _same_text(value: Any) -> bool:
    """Whether orjson's text of ``value`` is ``json.dumps``'s: only the types listed in the
    module docstring, and floats whose texts are compared one by one. Called after orjson
    accepted the value, so it is not a cycle and at most orjson's nesting limit deep."""
    kind = type(value)
    if kind in _LEAVES:
        return True
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return False
            # Leaves inline: most values of a payload are leaves, and a call costs more.
            if type(item) not in _LEAVES and not _same_text(item):
                return False
        return True
    if kind is list:
        return all(type(item) in _LEAVES or _same_text(item) for item in value)
    if kind is float:
        # json writes float.__repr__ for a finite float, NaN/Infinity for the others (whose
        # repr is nan/inf, and orjson's text null: never equal, so they fall back too).
        return orjson.dumps(value) == float.__repr__(value).encode("ascii")
    return False


def canonical_json_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` encoded as UTF-8 (what is hashed)."""
    try:
        data = orjson.dumps(value, option=_OPTION)
    except orjson.JSONEncodeError:
        data = None
    if data is not None and _same_text(value):
        return data
    # Raises UnicodeEncodeError for a lone surrogate, as encoding json.dumps' text did.
    return _json_dumps(value).encode("utf-8")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spacing: equal content gives equal text."""
    try:
        data = orjson.dumps(value, option=_OPTION)
    except orjson.JSONEncodeError:
        data = None
    if data is not None and _same_text(value):
        return data.decode("utf-8")
    # json.dumps keeps lone surrogates that orjson refuses: the text, not its encoding.
    return _json_dumps(value)
