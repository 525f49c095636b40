"""Every api/ file has the one form Vercel's Python builder accepts for our handlers.

`@vercel/python` finds a function's entry point by reading the file's syntax tree:
a top-level `class handler(...)`, or else an `app`/`application` that it serves as
WSGI/ASGI instead (the first of them in the file wins). An assignment
`handler = SomeClass` is refused at build time, which no test that
imports the file would notice; so this reads the files the builder's way.
"""

from __future__ import annotations

import ast
from http.server import BaseHTTPRequestHandler

import pytest

from lib.http import Request, Response, Routes, VercelHandler, json_response
from tests.support.api import ROOT, load_api_module

API_FILES = sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "api").rglob("*.py"))


def entry_point_problems(source: str) -> list[str]:
    """What the builder would object to in an api file's top level (empty when none)."""
    tree = ast.parse(source)
    problems = []
    if ast.get_docstring(tree) is None:
        problems.append("no module docstring")
    names: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: node for t in targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update({(a.asname or a.name).split(".")[0]: node for a in node.names})
    for wsgi_name in ("app", "application"):
        if wsgi_name in names:
            problems.append(f"a top-level `{wsgi_name}` would be served as WSGI/ASGI instead of `handler`")
    handler = names.get("handler")
    if not isinstance(handler, ast.ClassDef):
        problems.append("no top-level `class handler(...)`")
    elif ast.get_docstring(handler) is None:
        problems.append("`class handler` has no docstring")
    return problems


@pytest.mark.parametrize("relative_path", API_FILES)
def test_api_file_has_a_class_handler_the_builder_accepts(relative_path: str) -> None:
    assert entry_point_problems((ROOT / relative_path).read_text()) == []
    handler = load_api_module(relative_path).handler
    assert isinstance(handler, type)
    assert issubclass(handler, BaseHTTPRequestHandler)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (
            '"""Doc."""\nfrom lib.http import VercelHandler\nhandler = VercelHandler\n',
            "no top-level `class handler(...)`",
        ),
        (
            '"""Doc."""\nfrom lib.http import Routes, VercelHandler\n'
            "class handler(VercelHandler):\n    routes = Routes()\n",
            "`class handler` has no docstring",
        ),
        (
            '"""Doc."""\nclass handler:\n    """Doc."""\napp = object()\n',
            "a top-level `app` would be served as WSGI/ASGI instead of `handler`",
        ),
        ('class handler:\n    """Doc."""\n', "no module docstring"),
    ],
)
def test_the_form_check_names_what_the_builder_refuses(source: str, problem: str) -> None:
    assert entry_point_problems(source) == [problem]


@pytest.mark.parametrize("relative_path", API_FILES)
def test_api_file_names_its_endpoints_in_a_routes_table(relative_path: str) -> None:
    handler = load_api_module(relative_path).handler
    assert issubclass(handler, VercelHandler)
    assert isinstance(handler.routes, Routes)
    assert len(handler.routes) > 0


def test_a_routes_table_refuses_a_method_it_cannot_serve_and_cannot_be_changed() -> None:
    def endpoint(request: Request) -> Response:
        return json_response({})

    with pytest.raises(ValueError, match="unsupported HTTP methods: \\['FETCH'\\]"):
        Routes(GET=endpoint, FETCH=endpoint)
    routes = Routes(GET=endpoint, POST=endpoint)
    assert sorted(routes) == ["GET", "POST"]
    with pytest.raises(TypeError):
        routes["PUT"] = endpoint
