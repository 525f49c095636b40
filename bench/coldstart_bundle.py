"""Cold start inside the real bundle: each function as Vercel's builder ships it, against a floor.

Every api/ file is built twice with Vercel's own builder (scripts/vercelcheck):
without `VERCEL_PYTHON_COMPILEALL` (vercel.json's own setting overridden) and
with `VERCEL_PYTHON_COMPILEALL=1`, as vercel.json sets it (the builder then ships
bytecode; without it a bundle has no .pyc and the Lambda environment sets
PYTHONDONTWRITEBYTECODE=1, so every cold start compiles every module it imports).
Each bundle is then started the way the Lambda runtime starts it: a fresh
CPython 3.12, the bundle as working directory, the Lambda's environment, and
`import vc__handler__python` (vercel-runtime's bridge, which imports the api file
and starts its server). The floor is `import psycopg, http.server` from the same
bundle under the same bytecode conditions. Runs alternate, medians reported,
interpreter start included, process exit not (see TARGET).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Report, heading, line, median, table
from scripts.vercelcheck.bridge import function_env
from scripts.vercelcheck.build import (
    ROOT,
    Toolchain,
    api_entrypoints,
    copy_source_tree,
    find_toolchain,
    install_builder,
    run_builder,
)

# Each child leaves with os._exit once imported: the bridge registers an atexit hook that shuts its HTTP
# server down, and `shutdown()` waits out serve_forever's 0.5 s poll. A function instance never pays that
# on its way to the first request (it is frozen or killed, not exited), so it is not a cold start cost.
FLOOR = "import psycopg, http.server, os; os._exit(0)"
TARGET = "import vc__handler__python, os; os._exit(0)"
WITHOUT, WITH = "no bytecode", "VERCEL_PYTHON_COMPILEALL=1"
MODES = {WITHOUT: {"VERCEL_PYTHON_COMPILEALL": ""}, WITH: {"VERCEL_PYTHON_COMPILEALL": "1"}}


def _runtime_env(bundle: Path, lambda_env: dict[str, str]) -> dict[str, str]:
    env = function_env(lambda_env, {})
    prefix = env.get("PYTHONPYCACHEPREFIX")
    if prefix and prefix.startswith("/var/task/"):
        # Bytecode laid out for the bundle at /var/task: point the prefix at this copy instead.
        local = bundle / prefix.removeprefix("/var/task/")
        shipped = local / "var" / "task"
        if shipped.is_dir():
            target = local / str(bundle).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(shipped), str(target))
        env["PYTHONPYCACHEPREFIX"] = str(local)
    return env


def _wall(python: str, bundle: Path, env: dict[str, str], code: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-s", "-c", code], cwd=bundle, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _pyc_count(bundle: Path) -> int:
    return sum(1 for _ in bundle.rglob("*.pyc"))


def _build(toolchain: Toolchain, work: Path, out: Path, extra_env: dict[str, str]) -> list[dict[str, Any]]:
    vercel_json = json.loads((work / "vercel.json").read_text())
    # vercel.json's build.env reaches the builder after our environment (as on Vercel), so the mode
    # is set there too: otherwise its VERCEL_PYTHON_COMPILEALL=1 would compile the "no bytecode" build.
    build = vercel_json.setdefault("build", {})
    build["env"] = {**(build.get("env") or {}), **extra_env}
    entrypoints = api_entrypoints(work)
    results = run_builder(toolchain, work, out, entrypoints, vercel_json, out.with_suffix(".log"), extra_env)
    failed = [r["entrypoint"] for r in results if not r.get("ok")]
    if failed:
        raise RuntimeError(f"the builder refused {failed}; run python scripts/vercel_check.py")
    return results


def measure_bundle_cold_start(*, repetitions: int, report: Report) -> None:
    heading(f"5b. Cold start inside the built bundle (Vercel's builder and bridge, {repetitions} runs each, median)")
    toolchain = find_toolchain()
    install_builder(toolchain)
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        builds = {}
        for n, (mode, extra_env) in enumerate(MODES.items()):
            work = tmp / f"checkout-{n}"  # a fresh tree each: the builder leaves its venv and lock behind
            copy_source_tree(ROOT, work)
            builds[mode] = _build(toolchain, work, tmp / f"functions-{n}", extra_env)

        # (mode, entrypoint) → (floor ms, target ms); runs alternate floor/target and mode.
        rows: list[list[str]] = []
        medians: dict[str, list[float]] = {mode: [] for mode in builds}
        floors: dict[str, list[float]] = {mode: [] for mode in builds}
        entrypoints = [r["entrypoint"] for r in builds[WITHOUT]]
        failures: list[str] = []
        for entrypoint in entrypoints:
            cells = [entrypoint]
            for mode, results in builds.items():
                result = next(r for r in results if r["entrypoint"] == entrypoint)
                bundle = Path(result["dir"])
                env = _runtime_env(bundle, result["lambda"]["environment"])
                try:
                    _wall(toolchain.python312, bundle, env, TARGET)  # the page cache, not the bytecode, warmed
                except subprocess.CalledProcessError as exc:
                    # A function that cannot even start is a finding, not a reason to stop measuring the others.
                    said = (exc.stderr or b"").decode(errors="replace").strip().splitlines() or ["?"]
                    problem = next((text for text in reversed(said) if "Error" in text), said[-1])
                    failures.append(f"{entrypoint} ({mode}): {problem[:200]}")
                    cells += ["fails at import", "—"]
                    continue
                floor_runs: list[float] = []
                target_runs: list[float] = []
                for n in range(repetitions):
                    pair = [(FLOOR, floor_runs), (TARGET, target_runs)]
                    for code, sink in pair if n % 2 == 0 else reversed(pair):
                        sink.append(_wall(toolchain.python312, bundle, env, code))
                floor_ms, target_ms = median(floor_runs) * 1000, median(target_runs) * 1000
                floors[mode].append(floor_ms)
                medians[mode].append(target_ms)
                cells += [f"{target_ms:.0f} ms", f"{target_ms / floor_ms:.2f}×"]
            rows.append(cells)
        rows.append(
            ["floor: import psycopg, http.server"]
            + [cell for mode in builds for cell in (f"{median(floors[mode]):.0f} ms", "1.00×")]
        )
        sample = {mode: next(iter(results)) for mode, results in builds.items()}
        rows.append(
            ["bundle size, .pyc files"]
            + [
                cell
                for mode, result in sample.items()
                for cell in (f"{result['bytes'] / 1e6:.1f} MB", f"{_pyc_count(Path(result['dir']))} .pyc")
            ]
        )
    header = ["function (import vc__handler__python)"]
    for mode in builds:
        header += [mode, "× floor"]
    print(table(rows, header))
    for failure in failures:
        line(f"FAILS AT IMPORT: {failure}")
    plain, compiled = median(medians[WITHOUT]), median(medians[WITH])
    line(
        f"median over the functions: {plain:.0f} ms without bytecode, {compiled:.0f} ms with compileall "
        f"({(plain - compiled) / plain:.0%} less)"
    )
    report.add(
        "5b. cold start in the bundle",
        f"{plain:.0f} ms vs {compiled:.0f} ms with VERCEL_PYTHON_COMPILEALL=1 "
        f"(floor {median(floors[WITHOUT]):.0f} / {median(floors[WITH]):.0f} ms)"
        + (f"; {len(failures)} builds fail at import" if failures else ""),
        "shipped bytecode helps; every function starts",
        compiled < plain and not failures,
    )
