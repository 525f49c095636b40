"""Build api/ files with Vercel's own Python builder and check what it ships.

The builder is `@vercel/python` from npm (pinned in scripts/vercel/package.json,
installed with `npm ci`), called by scripts/vercel/build.cjs the way `vercel build`
calls it for a zero-config project. It needs `uv` on PATH and a CPython 3.12 that
uv can list; both are found here, never assumed at a fixed path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DRIVER_DIR = ROOT / "scripts" / "vercel"
RUNTIME = "python3.12"
LAMBDA_HANDLER = "vc__handler__python.vc_handler"
# Top-level folders that must never ship in a function bundle.
FORBIDDEN_DIRS = ("tests", "bench", "sandbox", "scripts", "supabase", ".ci", "docs", "public")
# Distributions the builder adds itself: its bridge, and pip from the venv it seeds.
BUILDER_DISTRIBUTIONS = frozenset({"vercel-runtime", "pip"})
VERCEL_MARKERS = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


class CheckFailed(Exception):
    """The deploy check cannot go on; the message says why and what to do."""


class Toolchain(NamedTuple):
    node: str
    npm: str
    uv: str
    python312: str


def find_python312() -> str:
    """A CPython 3.12 interpreter: $VERCEL_CHECK_PYTHON, `uv python find 3.12`, or pyenv's."""
    explicit = os.environ.get("VERCEL_CHECK_PYTHON", "").strip()
    if explicit:
        return explicit
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if Path(uv).exists():
        found = subprocess.run([uv, "python", "find", "3.12"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False).stdout.strip()
        candidates = sorted(Path(root, "versions").glob("3.12*/bin/python3.12")) if root else []
        if candidates:
            return str(candidates[-1])
    raise CheckFailed(
        "No CPython 3.12 found (Vercel runs 3.12): install one (`pyenv install 3.12` or `uv python install 3.12`) "
        "or point VERCEL_CHECK_PYTHON at it."
    )


def find_toolchain() -> Toolchain:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise CheckFailed("node and npm are needed to run Vercel's builder (@vercel/python is an npm package).")
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        raise CheckFailed("uv is needed by Vercel's builder: pip install -r requirements-dev.txt")
    return Toolchain(node=node, npm=npm, uv=uv, python312=find_python312())


def install_builder(toolchain: Toolchain) -> None:
    """`npm ci` the pinned builder into scripts/vercel/node_modules (gitignored)."""
    result = subprocess.run(
        [toolchain.npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=DRIVER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise CheckFailed(f"npm ci in {DRIVER_DIR} failed:\n{result.stdout}{result.stderr}")


def api_entrypoints(root: Path) -> list[str]:
    """api/**/*.py as Vercel sees them: names starting with _ or . are not functions."""
    found = []
    for path in sorted((root / "api").rglob("*.py")):
        relative = path.relative_to(root)
        if any(part.startswith(("_", ".")) for part in relative.parts[1:]):
            continue
        found.append(relative.as_posix())
    return found


def copy_source_tree(root: Path, dest: Path) -> None:
    """What a clean checkout of this working tree holds: tracked and untracked, minus ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if not source.is_file():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def build_env(toolchain: Toolchain) -> dict[str, str]:
    """The builder's environment: our 3.12 and uv first on PATH, nothing of this venv's."""
    path = [str(Path(toolchain.python312).parent), str(Path(toolchain.uv).parent), os.environ.get("PATH", "")]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(path)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


def run_builder(
    toolchain: Toolchain,
    work: Path,
    out: Path,
    entrypoints: list[str],
    vercel_json: Mapping[str, Any],
    log: Path,
    extra_env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Call the builder's build() for each entrypoint; its own output goes to `log`."""
    out.mkdir(parents=True, exist_ok=True)
    request = out / "request.json"
    request.write_text(
        json.dumps({"workPath": str(work), "outDir": str(out), "entrypoints": entrypoints, "vercelJson": vercel_json})
    )
    env = build_env(toolchain)
    if (vercel_json.get("build") or {}).get("env"):
        env.update({k: str(v) for k, v in vercel_json["build"]["env"].items()})
    env.update(extra_env or {})
    with log.open("w") as sink:
        done = subprocess.run(
            [toolchain.node, str(DRIVER_DIR / "build.cjs"), str(request)],
            cwd=DRIVER_DIR,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=900,
        )
    results_file = out / "results.json"
    if done.returncode != 0 or not results_file.exists():
        raise CheckFailed(f"the builder driver failed (exit {done.returncode}); its output is in {log}")
    results: list[dict[str, Any]] = json.loads(results_file.read_text())
    return results


def read_lock(path: Path) -> dict[str, str]:
    """requirements.txt's pins that apply on Vercel (CPython 3.12, Linux): name → version."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(VERCEL_MARKERS):
            continue
        spec = next(iter(requirement.specifier), None)
        pins[canonicalize_name(requirement.name)] = spec.version if spec is not None else ""
    return pins


def bundled_distributions(bundle: Path) -> dict[str, str]:
    """name → version of every distribution installed in the bundle's _vendor folder."""
    found: dict[str, str] = {}
    for metadata in (bundle / "_vendor").glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1) for line in metadata.read_text(errors="replace").splitlines()[:20] if ": " in line
        )
        if "Name" in fields and "Version" in fields:
            found[canonicalize_name(fields["Name"])] = fields["Version"]
    return found


def bundle_problems(result: Mapping[str, Any], lock: Mapping[str, str], vercel_json: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one built function (empty when it is deployable)."""
    entrypoint = result["entrypoint"]
    if result.get("entrypointName") != "handler":
        found, error = result.get("entrypointName"), result.get("error")
        refusal = f"; the builder says: {error.splitlines()[0]}" if error else ""
        return [
            f"{entrypoint}: the builder finds no top-level `class handler` (found {found!r}); "
            f"write `class handler(VercelHandler):` (see lib/http.py){refusal}"
        ]
    if not result.get("ok"):
        return [f"{entrypoint}: the builder refused it: {result.get('error')}"]
    problems = []
    lambda_ = result["lambda"]
    if lambda_.get("runtime") != RUNTIME:
        problems.append(f"{entrypoint}: runtime {lambda_.get('runtime')!r}, not {RUNTIME} (api/.python-version)")
    if lambda_.get("handler") != LAMBDA_HANDLER:
        problems.append(f"{entrypoint}: Lambda handler {lambda_.get('handler')!r}, not {LAMBDA_HANDLER}")
    pattern = result.get("functionsPattern")
    if pattern is None:
        problems.append(f"{entrypoint}: no vercel.json `functions` entry matches it (no excludeFiles, no maxDuration)")
    wanted = ((vercel_json.get("functions") or {}).get(pattern) or {}).get("maxDuration")
    if wanted is not None and lambda_.get("maxDuration") != wanted:
        problems.append(f"{entrypoint}: maxDuration {lambda_.get('maxDuration')}, vercel.json says {wanted}")
    bundle = Path(result["dir"])
    for needed in (entrypoint, "lib/http.py", "vc__handler__python.py"):
        if not (bundle / needed).is_file():
            problems.append(f"{entrypoint}: {needed} is missing from the bundle")
    for name in FORBIDDEN_DIRS:
        if (bundle / name).exists():
            problems.append(f"{entrypoint}: {name}/ is in the bundle (add it to excludeFiles in vercel.json)")
    compileall = ((vercel_json.get("build") or {}).get("env") or {}).get("VERCEL_PYTHON_COMPILEALL", "")
    if str(compileall).lower() in ("1", "true") and not any((bundle / "lib").rglob("*.pyc")):
        problems.append(f"{entrypoint}: vercel.json asks for VERCEL_PYTHON_COMPILEALL but lib/ ships no bytecode")
    installed = bundled_distributions(bundle)
    for name, version in sorted(lock.items()):
        if name not in installed:
            problems.append(f"{entrypoint}: {name}=={version} (requirements.txt) is not in the bundle")
        elif installed[name] != version:
            problems.append(f"{entrypoint}: {name} {installed[name]} in the bundle, requirements.txt pins {version}")
    for name in sorted(set(installed) - set(lock) - BUILDER_DISTRIBUTIONS):
        problems.append(f"{entrypoint}: {name}=={installed[name]} is in the bundle but not in requirements.txt")
    return problems
