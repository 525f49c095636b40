"""scripts/vercel_check.py's verdicts: what makes a built function undeployable.

The check itself runs in .ci/run (it builds with Vercel's builder and serves each
bundle through Vercel's bridge); these tests pin the rules it applies to a bundle,
on bundles laid out here the way the builder writes them, and ask the builder's
own analyser (from the pinned npm package) which api-file forms it accepts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.vercelcheck.build import (
    ROOT,
    api_entrypoints,
    bundle_problems,
    find_toolchain,
    install_builder,
    read_lock,
)

LOCK = read_lock(ROOT / "requirements.txt")
VERCEL_JSON = json.loads((ROOT / "vercel.json").read_text())


def lay_out_bundle(bundle: Path, distributions: dict[str, str]) -> None:
    for name in ("api/jobs/run.py", "lib/http.py", "lib/__pycache__/http.cpython-312.pyc", "vc__handler__python.py"):
        (bundle / name).parent.mkdir(parents=True, exist_ok=True)
        (bundle / name).write_text("")
    for name, version in distributions.items():
        info = bundle / "_vendor" / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def built(bundle: Path, **overrides: Any) -> dict[str, Any]:
    result = {
        "entrypoint": "api/jobs/run.py",
        "ok": True,
        "entrypointName": "handler",
        "functionsPattern": "api/jobs/run.py",
        "dir": str(bundle),
        "lambda": {"handler": "vc__handler__python.vc_handler", "runtime": "python3.12", "maxDuration": 300},
    }
    result.update(overrides)
    return result


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    lay_out_bundle(tmp_path, {**LOCK, "vercel-runtime": "0.23.2", "pip": "26.3"})
    return tmp_path


def test_a_complete_bundle_passes(bundle: Path) -> None:
    assert bundle_problems(built(bundle), LOCK, VERCEL_JSON) == []


def test_a_missing_dependency_fails(bundle: Path) -> None:
    shutil.rmtree(next((bundle / "_vendor").glob("pydantic_core-*.dist-info")))
    assert bundle_problems(built(bundle), LOCK, VERCEL_JSON) == [
        f"api/jobs/run.py: pydantic-core=={LOCK['pydantic-core']} (requirements.txt) is not in the bundle"
    ]


def test_a_version_other_than_the_lock_fails(bundle: Path) -> None:
    shutil.rmtree(next((bundle / "_vendor").glob("httpx-*.dist-info")))
    info = bundle / "_vendor" / "httpx-0.27.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: httpx\nVersion: 0.27.0\n")
    problems = bundle_problems(built(bundle), LOCK, VERCEL_JSON)
    assert problems == [f"api/jobs/run.py: httpx 0.27.0 in the bundle, requirements.txt pins {LOCK['httpx']}"]


def test_a_package_outside_the_lock_fails(bundle: Path) -> None:
    info = bundle / "_vendor" / "six-1.16.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: six\nVersion: 1.16.0\n")
    assert bundle_problems(built(bundle), LOCK, VERCEL_JSON) == [
        "api/jobs/run.py: six==1.16.0 is in the bundle but not in requirements.txt"
    ]


@pytest.mark.parametrize("folder", ["tests", "bench", "sandbox", "scripts", "supabase", ".ci", "docs", "public"])
def test_a_folder_that_must_not_ship_fails(bundle: Path, folder: str) -> None:
    (bundle / folder).mkdir()
    assert bundle_problems(built(bundle), LOCK, VERCEL_JSON) == [
        f"api/jobs/run.py: {folder}/ is in the bundle (add it to excludeFiles in vercel.json)"
    ]


def test_an_api_file_without_class_handler_fails(bundle: Path) -> None:
    result = built(bundle, ok=False, entrypointName=None, error="PYTHON_ENTRYPOINT_NOT_FOUND: ...")
    [problem] = bundle_problems(result, LOCK, VERCEL_JSON)
    assert "no top-level `class handler`" in problem


def test_the_wrong_runtime_or_duration_fails(bundle: Path) -> None:
    result = built(bundle, **{"lambda": {"handler": "vc__handler__python.vc_handler", "runtime": "python3.13"}})
    assert bundle_problems(result, LOCK, VERCEL_JSON) == [
        "api/jobs/run.py: runtime 'python3.13', not python3.12 (api/.python-version)",
        "api/jobs/run.py: maxDuration None, vercel.json says 300",
    ]


def test_every_api_file_is_a_function(tmp_path: Path) -> None:
    for name in ("api/a.py", "api/_private.py", "api/x/.hidden.py", "api/x/b-c.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert api_entrypoints(tmp_path) == ["api/a.py", "api/x/b-c.py"]


def test_the_builders_analyser_accepts_class_handler_and_nothing_else() -> None:
    """What @vercel/python-analysis (the pinned builder's) finds in each form; `vercel build` skips a None."""
    toolchain = find_toolchain()
    install_builder(toolchain)
    forms = {
        "class": "from lib.http import Routes, VercelHandler\nclass handler(VercelHandler):\n    '''Doc.'''\n"
        "    routes = Routes()\n",
        "assignment": "from lib.http import VercelHandler\nhandler = VercelHandler\n",
        "app above it": "from x import app\nclass handler:\n    pass\n",
    }
    script = (
        "const { findAppOrHandler } = require('@vercel/python-analysis');"
        "const forms = JSON.parse(process.argv[1]);"
        "(async () => { const out = {};"
        " for (const [k, v] of Object.entries(forms)) out[k] = await findAppOrHandler(v);"
        " console.log(JSON.stringify(out)); })();"
    )
    done = subprocess.run(
        [toolchain.node, "-e", script, json.dumps(forms)],
        cwd=ROOT / "scripts" / "vercel",
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == {"class": "handler", "assignment": None, "app above it": "app"}


def test_a_bundle_without_the_bytecode_vercel_json_asks_for_fails(bundle: Path) -> None:
    (bundle / "lib" / "__pycache__" / "http.cpython-312.pyc").unlink()
    assert bundle_problems(built(bundle), LOCK, VERCEL_JSON) == [
        "api/jobs/run.py: vercel.json asks for VERCEL_PYTHON_COMPILEALL but lib/ ships no bytecode"
    ]


def test_a_function_no_vercel_json_entry_matches_fails(bundle: Path) -> None:
    assert bundle_problems(built(bundle, functionsPattern=None), LOCK, VERCEL_JSON) == [
        "api/jobs/run.py: no vercel.json `functions` entry matches it (no excludeFiles, no maxDuration)"
    ]
