"""Validation errors are formatted in one place (lib.validation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from lib.validation import field_errors, summary, within

ROOT = Path(__file__).resolve().parents[1]


class _Inner(BaseModel):
    count: int


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inner: _Inner
    name: str = "x"

    @model_validator(mode="after")
    def _not_empty(self) -> _Body:
        if self.name == "":
            raise ValueError("name is empty")
        return self


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate(data)
    return caught.value


def test_fields_are_dotted_and_the_whole_input_is_named() -> None:
    problems = field_errors(_error({"inner": {"count": "many"}, "extra": 1}), whole="body")
    assert [(p["field"], p["type"]) for p in problems] == [("inner.count", "int_parsing"), ("extra", "extra_forbidden")]
    [whole] = field_errors(_error({"inner": {"count": 1}, "name": ""}), whole="body")
    assert whole["field"] == "body"
    assert "name is empty" in whole["message"]


def test_nested_problems_and_their_one_line_summary() -> None:
    problems = field_errors(_error({"inner": {}}), whole="payload")
    assert [p["field"] for p in within("payload", problems)] == ["payload.inner.count"]
    assert within("payload", [{"field": "payload", "message": "m", "type": "t"}])[0]["field"] == "payload"
    assert summary(problems) == "inner.count: Field required"


def test_no_other_module_formats_pydantic_errors() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("lib", "api", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "validation.py" and ".errors(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
