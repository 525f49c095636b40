"""Untrusted JSON and text, checked before they can fail somewhere deeper.

Three things a caller can send that Python or PostgreSQL would only refuse with
an exception nobody handles:
- JSON nested thousands deep: `json.loads` recurses and raises RecursionError.
  The depth is counted first, by a flat scan, and anything deeper than
  `MAX_JSON_DEPTH` is refused before it is parsed.
- `NaN`, `Infinity` and numbers too large for a float: Python reads them,
  jsonb refuses them.
- A NUL character or a lone surrogate (`"\\u0000"`, `"\\ud800"`): PostgreSQL's
  text and jsonb cannot hold the first, UTF-8 cannot encode the second.

The functions raise `UnsafeInput`, a ValueError with a message and per-field
details; `lib.http` turns it into a 400 and the auth code into a 401.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

# Deeper than any request this API defines (they are flat objects) by far, and
# far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64

# Possessive: a long string literal is skipped without building backtracking state.
_STRINGS = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")


class UnsafeInput(ValueError):
    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def nesting_depth(text: str) -> int:
    """The deepest `[`/`{` nesting of JSON text, counted without recursion.

    String literals are removed first so brackets inside them do not count; for
    malformed text the count is approximate, and the parser refuses it anyway.
    """
    depth = deepest = 0
    for char in _STRINGS.sub("", text):
        if char in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif char in _CLOSERS:
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise UnsafeInput(f"{name} is not a JSON number; send a finite number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeInput(f"{text[:40]} is too large for a number; send a finite number.")
    return value


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as PostgreSQL text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate such as \\ud800)"
    return None


def unstorable_text(value: Any, path: str = "") -> list[dict[str, Any]]:
    """Every string (key or value) in a parsed JSON value that PostgreSQL cannot store, walked iteratively."""
    details: list[dict[str, Any]] = []
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending:
        where, item = pending.pop()
        children: Iterable[tuple[str, Any]] = ()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                details.append({"field": where or "body", "message": problem, "type": "unstorable_text"})
        elif isinstance(item, dict):
            for key in item:
                problem = text_problem(key)
                if problem:
                    details.append({"field": where or "body", "message": f"a key {problem}", "type": "unstorable_text"})
            children = ((f"{where}.{key}" if where else str(key), child) for key, child in item.items())
        elif isinstance(item, list):
            children = ((f"{where}.{index}" if where else str(index), child) for index, child in enumerate(item))
        pending.extend(children)
    return sorted(details, key=lambda d: str(d["field"]))


def parse_json(data: bytes | str) -> Any:
    """Parse untrusted JSON (UTF-8 when bytes); raise UnsafeInput for anything unsafe to use or store."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeInput(f"The JSON is not valid UTF-8 (byte {exc.start}).") from None
    else:
        text = data
    if nesting_depth(text) > MAX_JSON_DEPTH:
        raise UnsafeInput(f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except UnsafeInput:
        raise
    except (ValueError, RecursionError) as exc:
        raise UnsafeInput(f"The JSON is malformed: {exc}.") from None
    details = unstorable_text(value)
    if details:
        raise UnsafeInput("The JSON holds text that cannot be stored.", details)
    return value
