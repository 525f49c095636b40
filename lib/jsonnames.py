"""JSON names: snake_case in Python, camelCase on the wire, and this module the one place that maps them.

    camel("failed_last_24h") == "failedLast24h"
    camel_keys({"task_type": "x"}) == {"taskType": "x"}

    class Body(CamelModel):        # a model whose JSON keys are camelCase
        task_type: str             # validated from and dumped as "taskType"

A `CamelModel` accepts only the camelCase keys (`task_type` in a request is an
unknown field) and dumps them by default (`model_dump()` gives camelCase). A
model that Python code also builds by field name adds
`model_config = ConfigDict(validate_by_name=True)`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def camel(name: str) -> str:
    """`task_type` → `taskType`; parts after the first keep their case (`last_24h` → `last24h`)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_keys(row: dict[str, Any]) -> dict[str, Any]:
    """A row's keys in camelCase (one level: values are kept as they are)."""
    return {camel(key): value for key, value in row.items()}


class CamelModel(BaseModel):
    """The base of every model with JSON keys: field names in snake_case, aliases from `camel`."""

    model_config = ConfigDict(
        alias_generator=camel, validate_by_alias=True, validate_by_name=False, serialize_by_alias=True
    )
