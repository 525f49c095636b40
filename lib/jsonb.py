"""What PostgreSQL's jsonb will store, checked in Python before a statement depends on it.

A job's output is written with others in one statement; one value jsonb refuses
would fail them all. psycopg's `Jsonb` adapter sends `json.dumps(value)`, and
jsonb then refuses more than `json.dumps` does: NaN and ±Infinity (not JSON),
`\\u0000` in any string or key (jsonb text cannot hold NUL), and lone UTF-16
surrogates (not Unicode). `json.dumps` itself refuses what is not JSON at all
(a set, bytes, a datetime) and nesting deeper than Python's recursion limit.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# An escaped NUL in JSON text: `\u0000` after an even number of backslashes
# (an odd one would make it the literal text "\u0000", which jsonb stores).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class NotStorableAsJson(ValueError):
    """The value cannot be stored in a jsonb column; the message says where and why."""


class JsonText(str):
    """JSON text that `storable_json` produced: sent to jsonb as it is, not serialised again."""


def storable_json(value: Any) -> JsonText:
    """The JSON text jsonb will accept for `value`, or `NotStorableAsJson` naming the first problem."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        text.encode("utf-8")  # a lone surrogate cannot be encoded
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotStorableAsJson(_locate(value) or f"{type(exc).__name__}: {exc}") from None
    if _ESCAPED_NUL.search(text):
        raise NotStorableAsJson(_locate(value) or "a string holds the NUL character (\\u0000)")
    return JsonText(text)


def _locate(value: Any, path: str = "$", depth: int = 0) -> str | None:
    """Where in `value` the first unstorable part is, as `$.key[3]: why`; None if not found."""
    if depth > 200:
        return f"{path}: nested too deeply"
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value!r} (JSON has no NaN or Infinity)"
    if isinstance(value, str):
        return _text_problem(value, f"{path}")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _locate(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                found = _text_problem(key, f"{path} key {key!r}")
                if found:
                    return found
            elif isinstance(key, float) and not math.isfinite(key):
                return f"{path} key {key!r} (JSON has no NaN or Infinity)"
            elif not (key is None or isinstance(key, bool | int | float)):
                return f"{path} key {key!r} is a {type(key).__name__} (JSON keys are strings)"
            found = _locate(item, f"{path}.{key}", depth + 1)
            if found:
                return found
        return None
    return f"{path} is a {type(value).__name__}, which JSON cannot represent"


def _text_problem(text: str, where: str) -> str | None:
    if "\x00" in text:
        return f"{where} holds the NUL character (\\u0000), which jsonb cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{where} holds a lone surrogate, which is not Unicode"
    return None
