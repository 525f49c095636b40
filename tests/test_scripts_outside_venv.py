"""Run with an interpreter that lacks the dependencies, the scripts say what to run instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["scripts/jobs.py", "scripts/dev.py"])
def test_a_bare_interpreter_gets_a_clear_message(script: str) -> None:
    # -S: no site-packages, as a stock python3 without the project's virtualenv.
    result = subprocess.run(
        [sys.executable, "-S", str(ROOT / script), "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "lacks pydantic" in result.stderr
    assert "make dev" in result.stderr or f".venv/bin/python {script} status" in result.stderr
