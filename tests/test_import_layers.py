"""Which top-level folder may import which: read from every file's syntax tree, so a new file is checked too.

The tests depend on everything; nothing depends on the tests. The bundle
(`lib/`, `api/`) imports none of the tools around it, and the dev sandbox
(`sandbox/`) is the vendor, not the bundle: it never imports `lib`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.api import ROOT

# Folder → the top-level packages its files must not import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "lib": frozenset({"api", "bench", "sandbox", "scripts", "tests"}),
    "api": frozenset({"bench", "sandbox", "scripts", "tests"}),
    "sandbox": frozenset({"bench", "lib", "tests"}),
    "scripts": frozenset({"bench", "tests"}),
    "bench": frozenset({"tests"}),
}
# Any other folder (or a file at the root) must not import the tests either.
OTHERWISE = frozenset({"tests"})


def python_files() -> list[Path]:
    """Every .py file of the tree outside tests/, hidden folders (.venv, .ci, .dev) and node_modules."""
    files = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] == "tests" or any(p.startswith(".") or p == "node_modules" for p in parts):
            continue
        files.append(path)
    return sorted(files)


def imported_modules(source: str) -> set[str]:
    """The absolute module names a file imports: import statements at any depth, and import_module("…")."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.add(first.value)
    return found


def layer_problems(relative: str, source: str) -> list[str]:
    folder = relative.split("/", 1)[0] if "/" in relative else ""
    forbidden = FORBIDDEN.get(folder, OTHERWISE)
    return [
        f"{relative} imports {module}"
        for module in sorted(imported_modules(source))
        if module.split(".", 1)[0] in forbidden
    ]


def test_the_tree_has_files_in_every_layer() -> None:
    folders = {path.relative_to(ROOT).parts[0] for path in python_files()}
    assert set(FORBIDDEN) <= folders


def test_nothing_outside_tests_imports_tests_and_each_layer_imports_only_what_it_may() -> None:
    problems = []
    for path in python_files():
        problems += layer_problems(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
    assert problems == []


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("scripts/x.py", "from tests.support.api import request\n"),
        ("bench/x.py", "import tests.support.tokens as tokens\n"),
        ("scripts/devserver/x.py", "def f():\n    from tests.support import tokens\n"),
        ("setup.py", "import importlib\nimportlib.import_module('tests.support.api')\n"),
        ("sandbox/x.py", "from lib.http import Request\n"),
        ("lib/x.py", "from sandbox.game_platform import Dataset\n"),
        ("api/x.py", "from scripts.local_http import request\n"),
    ],
)
def test_a_forbidden_import_is_found_wherever_it_is_written(relative: str, source: str) -> None:
    assert len(layer_problems(relative, source)) == 1


def test_allowed_imports_pass() -> None:
    assert layer_problems("scripts/x.py", "from lib.http import Request\nfrom sandbox import game_platform\n") == []
    assert layer_problems("sandbox/x.py", "from scripts.local_http import LocalHTTPServer\nimport json\n") == []
    assert layer_problems("lib/x.py", "from . import tests\nimport testsuite\n") == []
