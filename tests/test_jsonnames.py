"""camelCase JSON keys are produced one way: lib.jsonnames."""

from __future__ import annotations

import pytest
from pydantic import ConfigDict, ValidationError

from lib.jsonnames import CamelModel, camel, camel_keys


def test_camel_keeps_the_case_of_later_parts() -> None:
    assert camel("task_type") == "taskType"
    assert camel("failed_last_24h") == "failedLast24h"
    assert camel("id") == "id"
    assert camel_keys({"max_attempts": 3, "status": "pending"}) == {"maxAttempts": 3, "status": "pending"}


class _Body(CamelModel):
    model_config = ConfigDict(extra="forbid")

    task_type: str
    run_at: str | None = None


def test_a_camel_model_reads_and_writes_camel_case_only() -> None:
    body = _Body.model_validate({"taskType": "x"})
    assert body.model_dump() == {"taskType": "x", "runAt": None}
    with pytest.raises(ValidationError):
        _Body.model_validate({"task_type": "x"})
    assert set(_Body.model_json_schema()["properties"]) == {"taskType", "runAt"}


def test_no_module_names_json_keys_another_way() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    offenders = [
        str(path.relative_to(root))
        for folder in ("lib", "api", "scripts")
        for path in (root / folder).rglob("*.py")
        if (
            path.name != "jsonnames.py"
            and any(marker in path.read_text(encoding="utf-8") for marker in ("to_camel", "alias_generator"))
        )
        # A hand-written alias; the settings' aliases are environment variable names, not JSON keys.
        or (path.name != "settings.py" and 'alias="' in path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
