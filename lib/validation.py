"""Pydantic's validation errors as problems, `{"field", "message", "type"}`: the one place that formats them.

    field_errors(exc, whole="body")   # [{"field": "coachId", "message": "Input should be …", "type": "uuid_parsing"}]
    within("payload", problems)       # the same, fields under `payload.` (a payload inside a request body)
    summary(problems)                 # "coachId: Input should be …; limit: …", for an exception's text

A field is its dotted location (`cursor.runId`, `results.0.id`); an error of the
input as a whole (a model validator's) is named `whole`. The API's 400 `details`,
a refused job payload, the environment's settings and the vendor's bodies all
use these.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

Problem = dict[str, str]


def field_errors(exc: ValidationError, *, whole: str) -> list[Problem]:
    """One problem per error pydantic found, in its order."""
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or whole, "message": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def within(prefix: str, problems: Sequence[Problem]) -> list[Problem]:
    """The problems of a nested input named from the outside: `dryRun` → `payload.dryRun` (the whole: `payload`)."""
    return [{**p, "field": prefix if p["field"] == prefix else f"{prefix}.{p['field']}"} for p in problems]


def summary(problems: Sequence[Problem]) -> str:
    """The problems in one line: `field: message; field: message`."""
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems)
