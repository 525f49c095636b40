"""Cold start: a fresh interpreter importing api/jobs/run.py by path, against a floor.

The floor imports only what any such function needs: `psycopg` and `http.server`.
The target loads the api file the way Vercel's runtime does (by path, the
project root on sys.path), with no SENTRY_DSN. Each is run in a new subprocess,
alternating, and the median wall time (interpreter start included) is reported.

Bytecode: the children write and read their .pyc files under a private
PYTHONPYCACHEPREFIX, warmed up before timing, so both sides start from cached
bytecode. Two references are timed alongside: the floor plus `from pydantic
import BaseModel, ...`, and the floor plus that import and one model defined
and validated (the first model built imports the rest of pydantic's schema
machinery). The spec puts pydantic on the request path (settings, input and
response checks), so what lies above the second line is the project's own cost. A second pass drops the cached
bytecode of the project's own files (a deployment that ships no .pyc for them)
to show what compiling them costs. Then `python -X importtime` names, per
package and per module, what the target imports beyond the floor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import ROOT, Report, heading, line, median, table

FLOOR = "import psycopg, http.server"
# The floor plus pydantic's model machinery (pydantic imports its parts lazily), which the spec puts on the
# request path (settings and input validation): what is left above it is the project's own import cost.
FLOOR_PYDANTIC = "import psycopg, http.server; from pydantic import BaseModel, Field, SecretStr, ValidationError"
# ... and one model built and used, as any request of the bundle does (settings, input, response).
FLOOR_PYDANTIC_MODEL = (
    FLOOR_PYDANTIC + "\nclass M(BaseModel):\n    x: int = Field(default=1, ge=0)\nM.model_validate({'x': 2})"
)
GOAL = 1.25
TARGET = f"""
import importlib.util, sys
sys.path.insert(0, {str(ROOT)!r})
spec = importlib.util.spec_from_file_location("api_jobs_run", {str(ROOT / "api" / "jobs" / "run.py")!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert module.handler
"""
# The bundle's own variables: a cold start is measured without any of them (no Sentry).
_APP_VARIABLES = ("SENTRY_DSN", "DATABASE_URL", "POSTGRES_URL", "CRON_SECRET", "JOB_QUEUE_RUNNER_SECRET")


def _env(prefix: Path, *, write_bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _APP_VARIABLES and not k.startswith("PYTHON")}
    env["PYTHONPYCACHEPREFIX"] = str(prefix)
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _wall(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - started


def _alternate(repetitions: int, env: dict[str, str], codes: tuple[str, ...] = (FLOOR, TARGET)) -> list[float]:
    """Median wall time in ms of each snippet, run in turn (rotating order) `repetitions` times."""
    walls: list[list[float]] = [[] for _ in codes]
    for n in range(repetitions):
        for k in range(len(codes)):
            i = (k + n) % len(codes)
            walls[i].append(_wall(codes[i], env))
    return [median(w) * 1000 for w in walls]


def _import_times(code: str, env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """module → (self µs, cumulative µs) from `python -X importtime`."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    times: dict[str, tuple[int, int]] = {}
    for text in result.stderr.splitlines():
        if not text.startswith("import time:") or "self [us]" in text:
            continue
        self_us, cumulative_us, name = text.removeprefix("import time:").split("|")
        times[name.strip()] = (int(self_us), int(cumulative_us))
    return times


def measure_cold_start(*, repetitions: int, report: Report) -> None:
    heading(f"5. Cold start: fresh interpreter importing api/jobs/run.py by path ({repetitions} runs each, median)")
    prefix = Path(tempfile.mkdtemp(prefix="bench-pycache-"))
    try:
        warm_env = _env(prefix, write_bytecode=True)
        for _ in range(2):  # write every .pyc once
            for code in (FLOOR, FLOOR_PYDANTIC, FLOOR_PYDANTIC_MODEL, TARGET):
                _wall(code, warm_env)
        env = _env(prefix, write_bytecode=False)
        floor_ms, pydantic_ms, model_ms, target_ms = _alternate(
            repetitions, env, (FLOOR, FLOOR_PYDANTIC, FLOOR_PYDANTIC_MODEL, TARGET)
        )

        # The project's own bytecode removed (the prefix mirrors absolute source paths).
        shutil.rmtree(prefix / str(ROOT).lstrip("/"), ignore_errors=True)
        floor_src_ms, target_src_ms = _alternate(max(3, repetitions // 3), env)

        floor_imports = _import_times(FLOOR, warm_env)
        target_imports = _import_times(TARGET, warm_env)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)

    ratio = target_ms / floor_ms
    source_ratio = target_src_ms / floor_src_ms
    print(
        table(
            [
                ["floor: import psycopg, http.server", f"{floor_ms:.1f} ms", f"{floor_src_ms:.1f} ms"],
                ["api/jobs/run.py by path", f"{target_ms:.1f} ms", f"{target_src_ms:.1f} ms"],
                ["ratio", f"{ratio:.2f}", f"{source_ratio:.2f}"],
                ["(floor + pydantic imported)", f"{pydantic_ms:.1f} ms = {pydantic_ms / floor_ms:.2f}×", ""],
                ["(floor + pydantic, one model built)", f"{model_ms:.1f} ms = {model_ms / floor_ms:.2f}×", ""],
            ],
            ["interpreter importing", "bytecode cached", "project bytecode not cached"],
        )
    )

    extra = {name: t for name, t in target_imports.items() if name not in floor_imports}
    by_package: Counter[str] = Counter()
    for name, (self_us, _) in extra.items():
        by_package[name.split(".")[0]] += self_us
    total_ms = sum(by_package.values()) / 1000
    line(
        f"imported beyond the floor: {len(extra)} modules, {total_ms:.1f} ms of import time "
        "(python -X importtime, one run, self time summed per package):"
    )
    line(", ".join(f"{pkg} {us / 1000:.1f} ms" for pkg, us in by_package.most_common(8)))
    slowest = sorted(extra.items(), key=lambda item: item[1][0], reverse=True)[:10]
    line("slowest modules by self time: " + ", ".join(f"{name} {t[0] / 1000:.1f} ms" for name, t in slowest))
    report.add(
        "5. cold start vs floor, project bytecode not cached",
        f"{target_src_ms:.0f} ms vs {floor_src_ms:.0f} ms = {source_ratio:.2f}× (floor + pydantic with one model: "
        f"{model_ms / floor_ms:.2f}×)",
        f"≤ {GOAL}×",
        source_ratio <= GOAL,
    )
    report.add(
        "5. cold start vs floor, bytecode cached (VERCEL_PYTHON_COMPILEALL=1 ships it)",
        f"{target_ms:.0f} ms vs {floor_ms:.0f} ms = {ratio:.2f}×",
        f"≤ {GOAL}×",
        ratio <= GOAL,
    )
