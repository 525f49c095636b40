"""requirements.txt is a lock: every run-time package, directly needed or not, at one exact version.

Vercel installs requirements.txt as it is; a package the lock forgets is resolved
afresh on every deploy (the newest release allowed), and a range lets one deploy
differ from the next. This reads the lock against the installed packages' own
metadata (no network), for this interpreter and for the CPython 3.12 on Linux that
Vercel runs; scripts/vercel_check.py then proves it on the builder's real install.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.api import ROOT

LOCK = ROOT / "requirements.txt"

# The function's interpreter on Vercel, as marker variables.
VERCEL_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.12.0",
    "python_version": "3.12",
    "sys_platform": "linux",
}


def read_lock(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pinned_version(requirement: Requirement) -> str | None:
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return specs[0].version
    return None


def applies(requirement: Requirement, environment: dict[str, str], extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""}))


def lock_problems(lock: list[Requirement], environments: list[dict[str, str]]) -> list[str]:
    """What the lock misses or gets wrong, read from the installed packages' metadata."""
    problems = [f"{r} is not an exact pin (name==version)" for r in lock if pinned_version(r) is None]
    pins = {canonicalize_name(r.name): r for r in lock}
    for environment in environments:
        todo = [(r.name, set(r.extras), str(r)) for r in lock if applies(r, environment, set())]
        seen: set[tuple[str, frozenset[str]]] = set()
        while todo:
            name, extras, needed_by = todo.pop()
            key = (canonicalize_name(name), frozenset(extras))
            if key in seen:
                continue
            seen.add(key)
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{name} (needed by {needed_by}) is not installed; install requirements.txt")
                continue
            for line in distribution.requires or []:
                requirement = Requirement(line)
                if not applies(requirement, environment, extras):
                    continue
                pin = pins.get(canonicalize_name(requirement.name))
                where = f"{requirement.name} (needed by {name} for Python {environment['python_version']})"
                if pin is None:
                    problems.append(f"{where} is not in the lock")
                    continue
                version = pinned_version(pin)
                if version is not None and not requirement.specifier.contains(version, prereleases=True):
                    problems.append(f"{where}: the lock's {version} is outside {requirement.specifier}")
                todo.append((requirement.name, set(requirement.extras), name))
    return sorted(set(problems))


def environments() -> list[dict[str, str]]:
    return [dict(default_environment()), VERCEL_ENVIRONMENT]


def test_the_lock_holds_every_package_the_functions_need_at_one_exact_version() -> None:
    assert lock_problems(read_lock(LOCK), environments()) == []


def test_the_installed_packages_are_the_locked_versions() -> None:
    environment = dict(default_environment())
    wrong = {}
    for requirement in read_lock(LOCK):
        if applies(requirement, environment, set()):
            installed = importlib.metadata.version(requirement.name)
            if installed != pinned_version(requirement):
                wrong[requirement.name] = installed
    assert wrong == {}, "reinstall with: pip install -r requirements-dev.txt"


@pytest.mark.parametrize(
    ("dropped", "problem"),
    [
        ("pydantic-core", "pydantic-core (needed by pydantic for Python"),
        ("psycopg-binary", "psycopg-binary (needed by psycopg for Python"),
        ("cffi", "cffi (needed by cryptography for Python"),
    ],
)
def test_a_lock_that_forgets_a_package_is_refused(dropped: str, problem: str) -> None:
    lock = [r for r in read_lock(LOCK) if canonicalize_name(r.name) != dropped]
    problems = lock_problems(lock, environments())
    assert any(p.startswith(problem) and p.endswith("is not in the lock") for p in problems), problems


def test_a_range_is_refused() -> None:
    lock = [Requirement("httpx>=0.27,<1") if r.name == "httpx" else r for r in read_lock(LOCK)]
    assert lock_problems(lock, environments()) == ["httpx<1,>=0.27 is not an exact pin (name==version)"]


def test_no_other_manifest_competes_with_requirements_txt() -> None:
    """The builder prefers any of these to requirements.txt; a local `vercel build` leaves the first two behind."""
    competing = [name for name in ("pyproject.toml", "uv.lock", "Pipfile", "Pipfile.lock") if (ROOT / name).exists()]
    assert competing == [], "run-time dependencies live in requirements.txt only (docs/deploy.md)"
