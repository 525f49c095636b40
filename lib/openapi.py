"""The OpenAPI 3.1 description of the bundle, built from `lib.endpoints.catalog`.

Request schemas are the models' validation schemas, response schemas their
serialization schemas, all under `components/schemas` (pydantic's JSON Schema is
the dialect OpenAPI 3.1 uses). `render()` is the exact text of
docs/openapi.json, so a test can compare the committed file with the code.
Not used by the deployed functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from lib.endpoints.catalog import ENDPOINTS, SECURITY_SCHEMES, Endpoint, ErrorBody, Operation

TITLE = "Job-processing bundle for Vercel + Supabase"
VERSION = "1.0.0"
REF_TEMPLATE = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]


def _models(endpoints: tuple[Endpoint, ...]) -> list[tuple[type[BaseModel], Mode]]:
    seen: dict[tuple[type[BaseModel], Mode], None] = {(ErrorBody, "serialization"): None}
    for endpoint in endpoints:
        for op in endpoint.operations:
            for model in (op.query, op.body):
                if model is not None:
                    seen[(model, "validation")] = None
            for answer in op.answers.values():
                for model in answer.models:
                    seen[(model, "serialization")] = None
    return list(seen)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is present or absent, never null: drop the model's `None` branch and default."""
    branches = schema.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [b for b in branches if b != {"type": "null"}]
        schema.pop("anyOf")
        schema = {**(rest[0] if len(rest) == 1 else {"anyOf": rest}), **schema}
        if schema.get("default", ...) is None:
            schema.pop("default")
    return schema


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _content(refs: list[dict[str, Any]]) -> dict[str, Any]:
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"application/json": {"schema": schema}}


def _operation(op: Operation, refs: Mapping[tuple[Any, Mode], dict[str, Any]], defs: dict[str, Any]) -> Any:
    body: dict[str, Any] = {"summary": op.summary, "operationId": None}
    if op.description:
        body["description"] = op.description
    body["security"] = [{name: []} for name in op.security]
    if op.query is not None:
        target = refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]
        parameters = _query_parameters(defs[target])
        if parameters:
            body["parameters"] = parameters
    if op.body is not None:
        body["requestBody"] = {
            "required": False,
            "description": "Optional; an empty body means every default. Unknown fields are refused.",
            "content": _content([refs[(op.body, "validation")]]),
        }
    responses: dict[str, Any] = {}
    for status, answer in op.answers.items():
        response: dict[str, Any] = {"description": answer.description}
        if op.method != "HEAD":
            response["content"] = _content([refs[(model, "serialization")] for model in answer.models])
        responses[str(status)] = response
    body["responses"] = responses
    return body


def _operation_id(path: str, method: str) -> str:
    words = [w for w in path.removeprefix("/api/").replace("-", "/").split("/") if w]
    return method.lower() + "".join(w.title() for w in words)


def build_openapi(endpoints: tuple[Endpoint, ...] = ENDPOINTS) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `endpoints` (by default every endpoint of the bundle)."""
    models = _models(endpoints)
    refs, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, Any] = {}
    for endpoint in sorted(endpoints, key=lambda e: e.path):
        item: dict[str, Any] = {}
        for op in endpoint.operations:
            operation = _operation(op, refs, defs)
            operation["operationId"] = _operation_id(endpoint.path, op.method)
            item[op.method.lower()] = operation
        paths[endpoint.path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Python functions on Vercel that drain a job queue kept in Supabase Postgres. "
            'Errors are `{"error", "message", "details"?}` JSON. Generated from the pydantic models '
            "the endpoints validate with (`python -m scripts.openapi`); see docs/endpoints.md.",
        },
        "servers": [{"url": "/", "description": "the deployment (or the dev server)"}],
        "paths": paths,
        "components": {"schemas": dict(sorted(defs.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def render(document: dict[str, Any] | None = None) -> str:
    """The text of docs/openapi.json: stable key order, two-space indent, a final newline."""
    return json.dumps(build_openapi() if document is None else document, indent=2, ensure_ascii=False) + "\n"
