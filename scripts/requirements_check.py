"""A clear message instead of a raw ModuleNotFoundError when a script runs outside the project's virtualenv."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("pydantic", "psycopg", "httpx", "jwt")


def require_dev_environment(script: str) -> None:
    """Exit with what to run when the interpreter lacks the project's dependencies."""
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return
    venv_python = ROOT / ".venv" / "bin" / "python"
    how = (
        f"use {shlex.join([str(venv_python.relative_to(ROOT)), script, *sys.argv[1:]])}"
        if venv_python.exists()
        else "run `make dev` (or `make venv`) once: it creates .venv with everything installed"
    )
    raise SystemExit(f"{sys.executable} lacks {', '.join(missing)} (requirements-dev.txt): {how}.")
