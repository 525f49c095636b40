"""lib/jsonb.py agrees with PostgreSQL: what it accepts, jsonb stores as is; what jsonb refuses, it refuses."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from lib.jsonb import NotStorableAsJson, storable_json


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": [1, float("nan")]}, "$.a[1] is nan"),
        ({"a": float("-inf")}, "$.a is -inf"),
        ({"s": "x\x00"}, "$.s holds the NUL character"),
        ({"k\x00": 1}, "$ key 'k\\x00' holds the NUL character"),
        ({"s": {1, 2}}, "$.s is a set"),
        ({"b": b"raw"}, "$.b is a bytes"),
        ({"t": "\udc00"}, "$.t holds a lone surrogate"),
        ({(1, 2): "tuple key"}, "$ key (1, 2) is a tuple"),
    ],
)
def test_refusals_name_the_place_and_the_reason(value: Any, where: str) -> None:
    with pytest.raises(NotStorableAsJson, match=rf"^{__import__('re').escape(where)}"):
        storable_json(value)


def test_the_text_backslash_u0000_is_not_a_nul() -> None:
    assert json.loads(storable_json({"s": "\\u0000"})) == {"s": "\\u0000"}


def test_deep_nesting_is_refused_not_a_crash() -> None:
    value: Any = []
    for _ in range(5000):
        value = [value]
    with pytest.raises(NotStorableAsJson):
        storable_json(value)


_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=6) | st.sampled_from(
    ["\x00", "\ud800", "a\\u0000", "\\\x00", "\U0001f600"]
)
_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | _text
_values = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_values)
def test_agrees_with_postgresql(sql: psycopg.Connection, value: Any) -> None:
    try:
        text = storable_json(value)
    except NotStorableAsJson:
        text = None
    if text is not None:  # accepted: jsonb stores exactly this value
        stored = sql.execute("select %s::text::jsonb as v", (str(text),)).fetchone()["v"]
        assert _same(stored, json.loads(text))
        return
    # Refused: psycopg's own adapter, as the worker used to send it, fails somewhere.
    try:
        sql.execute("select %s as v", (Jsonb(value),))
    except (TypeError, ValueError, psycopg.DataError, psycopg.errors.UntranslatableCharacter):
        return
    # jsonb took it: only a surrogate pair held as two code points is refused here and stored there.
    assert any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False))


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: jsonb keeps numbers as decimals, so 4.5e16 comes back as the integer it reads as."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)
