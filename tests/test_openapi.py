"""docs/openapi.json: generated from the models the endpoints validate with, and kept current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from lib.endpoints.catalog import ENDPOINTS, ErrorBody
from lib.errors import InvalidRequest
from lib.http import Request, Response, dispatch, model_response
from lib.openapi import build_openapi, render
from scripts import openapi as openapi_script
from scripts.devserver.routes import RouteTable

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "openapi.json"


def test_the_committed_description_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is out of date: run python -m scripts.openapi"
    )


def test_the_script_rewrites_and_checks_the_file(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    target.write_text("{}\n")
    assert openapi_script.main(["--check", "--output", str(target)]) == 1
    assert openapi_script.main(["--output", str(target)]) == 0
    assert target.read_text() == render()
    assert openapi_script.main(["--check", "--output", str(target)]) == 0


def test_every_api_file_is_in_the_catalog_with_the_methods_it_serves() -> None:
    table = RouteTable(ROOT)
    assert table.errors == {}
    served = {route.path: (str(route.file.relative_to(ROOT)), route.methods) for route in table.routes()}
    catalogued = {e.path: (e.file, sorted(op.method for op in e.operations)) for e in ENDPOINTS}
    assert catalogued == served


def test_it_is_openapi_3_1_and_every_reference_resolves() -> None:
    document = build_openapi()
    assert document["openapi"] == "3.1.0"
    schemas = document["components"]["schemas"]
    schemes = document["components"]["securitySchemes"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/"), ref
                assert ref.rsplit("/", 1)[1] in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["responses"], operation["operationId"]
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_request_models_are_the_ones_the_endpoints_validate_with() -> None:
    document = build_openapi()
    trigger = document["paths"]["/api/admin/jobs/trigger-totals-sweep"]["post"]
    assert trigger["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SweepRequest"
    }
    sweep = document["components"]["schemas"]["SweepRequest"]
    assert sweep["additionalProperties"] is False
    assert sweep["properties"]["batchSize"]["maximum"] == 1000
    worker_get = document["paths"]["/api/jobs/run"]["get"]
    assert [p["name"] for p in worker_get["parameters"]][:2] == ["limit", "force"]


def _request() -> Request:
    return Request(method="GET", path="/x", query=(), headers={}, body=b"")


class _Shape(BaseModel):
    count: int


def test_a_response_that_breaks_its_model_is_a_500_not_a_silent_lie() -> None:
    def wrong(request: Request) -> Response:
        return model_response(_Shape, {"count": "many"})

    def right(request: Request) -> Response:
        return model_response(_Shape, {"count": 3, "extra": True})

    assert dispatch({"GET": wrong}, _request()).status == 500
    answer = dispatch({"GET": right}, _request())
    assert (answer.status, answer.body) == (200, {"count": 3, "extra": True})


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("The request has invalid fields.", details=[{"field": "limit", "message": "m", "type": "t"}]),
        InvalidRequest("Each query parameter may appear once."),
    ],
)
def test_error_bodies_match_the_published_error_shape(error: InvalidRequest) -> None:
    def failing(request: Request) -> Response:
        raise error

    answer = dispatch({"GET": failing}, _request())
    assert answer.status == 400
    ErrorBody.model_validate(answer.body)
    assert json.loads(json.dumps(answer.body))["error"] == "invalid_request"
