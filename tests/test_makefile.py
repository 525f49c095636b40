"""The Makefile: `make dev` / `make test` install into .venv only when the requirements changed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

FAKE_PYTHON = """#!/bin/sh
# Stands in for the virtualenv's python: records each call instead of installing.
echo "$@" >> "$(dirname "$0")/../calls.log"
echo "DATABASE_URL=${DATABASE_URL:-}" >> "$(dirname "$0")/../env.log"
"""


def _project(tmp_path: Path) -> Path:
    """A copy of the Makefile and requirements files, with a stand-in .venv/bin/python."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


# make hands its command-line variables to its recipes' environment: under
# `make test VENV=.ci/venv` (CI) they would reach the make calls below.
MAKE_VARIABLES = {"VENV", "PYTHON", "ARGS", "MFLAGS", "DATABASE_URL"}


def _make(project: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE") and k not in MAKE_VARIABLES}
    env.update(extra_env)
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(project), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _calls(project: Path) -> list[str]:
    log = project / ".venv" / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_the_virtualenv_is_installed_once_and_again_only_when_requirements_change(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first = _make(project, "venv")
    assert first.returncode == 0, first.stderr
    assert _calls(project) == ["-m pip install --quiet --disable-pip-version-check -r requirements-dev.txt"]

    again = _make(project, "venv")
    assert again.returncode == 0, again.stderr
    assert len(_calls(project)) == 1, "an unchanged requirements file must not reinstall"

    later = time.time() + 5
    os.utime(project / "requirements.txt", (later, later))
    assert _make(project, "venv").returncode == 0
    assert len(_calls(project)) == 2, "a changed requirements file reinstalls"


def test_make_test_passes_args_and_database_url_to_pytest_in_the_virtualenv(tmp_path: Path) -> None:
    project = _project(tmp_path)
    browser = project / "tests" / "browser"
    browser.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "tests" / "browser" / name, browser / name)
    (browser / "node_modules").mkdir()
    (browser / "node_modules" / ".package-lock-installed").touch()  # installed already: no npm here
    result = _make(project, "test", "ARGS=-k health -x", DATABASE_URL="postgresql://postgres@127.0.0.1:5432/x")
    assert result.returncode == 0, result.stderr
    assert _calls(project)[-1] == "-m pytest -k health -x"
    env_log = (project / ".venv" / "env.log").read_text().splitlines()
    assert env_log[-1] == "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/x"


def test_make_dev_runs_the_dev_server_with_args(tmp_path: Path) -> None:
    project = _project(tmp_path)
    web = project / "scripts" / "devserver" / "web"
    web.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "scripts" / "devserver" / "web" / name, web / name)
    result = _make(project, "-n", "dev", "ARGS=--once")
    assert result.returncode == 0, result.stderr
    assert ".venv/bin/python scripts/dev.py --once" in result.stdout
