"""Check a deploy locally: build every api/ file with Vercel's own builder, then serve it through Vercel's own bridge.

    python scripts/vercel_check.py            # the whole check (CI runs this), exit 0 when deployable
    python scripts/vercel_check.py --keep DIR # also keep the built functions in DIR

1. Build: `@vercel/python` (pinned in scripts/vercel/package.json, `npm ci`) builds
   each `api/**/*.py` of a clean copy of this working tree, with the config
   vercel.json gives that file, as `vercel build` does; the worker is built a
   second time from what `vercel deploy` uploads (.vercelignore applied). Each
   function must be accepted, ship exactly requirements.txt's pins (plus the
   builder's own vercel-runtime and pip), and none of tests/ bench/ sandbox/
   scripts/ supabase/ .ci/ docs/ public/.
2. Serve: each bundle runs under CPython 3.12 through vercel-runtime's vc_init.py,
   in IPC mode (this script plays the platform) and in event mode
   (`vc_handler(event, context)`), against a freshly migrated database (embedded
   PostgreSQL, or DATABASE_URL's server) and the sandbox Game Platform, and must
   answer the request matrix of scripts/vercelcheck/matrix.py: the right status,
   JSON, and nothing but our JSON lines in its log. A few requests also go through
   scripts/dev.py's server and must get the same status and body.

Needs node/npm, uv (requirements-dev.txt) and a CPython 3.12 (found with
$VERCEL_CHECK_PYTHON, `uv python find 3.12` or pyenv). Exit 0 deployable, 1 not
(every problem is printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.vercelcheck.build import (
    ROOT,
    CheckFailed,
    Toolchain,
    api_entrypoints,
    bundle_problems,
    copy_source_tree,
    find_toolchain,
    install_builder,
    read_lock,
    run_builder,
)

WORKER = "api/jobs/run.py"


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def upload_tree(source: Path, dest: Path) -> None:
    """What `vercel deploy` uploads: the tree less .vercelignore's entries (folders/, globs, names)."""
    patterns = [
        line.strip()
        for line in (source / ".vercelignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(relative: str) -> bool:
        for pattern in patterns:
            if pattern.endswith("/") and (relative + "/").startswith(pattern):
                return True
            if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(Path(relative).name, pattern):
                return True
        return False

    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_file() and not ignored(relative):
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def build_all(toolchain: Toolchain, tmp: Path) -> tuple[list[dict[str, Any]], list[str]]:
    work, upload = tmp / "checkout", tmp / "upload"
    copy_source_tree(ROOT, work)
    upload_tree(work, upload)
    vercel_json = json.loads((work / "vercel.json").read_text())
    lock = read_lock(work / "requirements.txt")
    entrypoints = api_entrypoints(work)
    say(f"== build: {len(entrypoints)} api files with @vercel/python (log: {tmp / 'build.log'})")
    results = run_builder(toolchain, work, tmp / "functions", entrypoints, vercel_json, tmp / "build.log")
    problems: list[str] = []
    for result in results:
        found = bundle_problems(result, lock, vercel_json)
        problems += found
        size = f"{result.get('bytes', 0) / 1e6:6.1f} MB, {result.get('fileCount', 0):5d} files"
        say(f"  {'ok  ' if not found else 'FAIL'} {result['entrypoint']:42s} {size}  {result.get('seconds', 0):5.1f} s")
    if WORKER in entrypoints:
        say(f"== build: {WORKER} from what `vercel deploy` uploads (.vercelignore applied)")
        (upload_result,) = run_builder(
            toolchain, upload, tmp / "upload-functions", [WORKER], vercel_json, tmp / "b2.log"
        )
        found = [f"(upload) {p}" for p in bundle_problems(upload_result, lock, vercel_json)]
        problems += found
        say(f"  {'ok  ' if not found else 'FAIL'} {WORKER} ({upload_result.get('bytes', 0) / 1e6:.1f} MB)")
    built = sum(1 for r in results if r.get("ok"))
    complete = sum(1 for r in results if not bundle_problems(r, lock, vercel_json))
    say(f"   {built}/{len(results)} built, {complete}/{len(results)} bundles complete")
    return results, problems


@contextmanager
def environment(app_env: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in app_env}
    os.environ.update(app_env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def services() -> Iterator[tuple[dict[str, str], Any]]:
    """A migrated database with demo data (its admin included), the sandbox vendor, and scripts/dev.py's server."""
    from scripts.devserver.routes import DevHttpServer, RouteTable
    from scripts.devserver.sandbox import start_sandbox
    from scripts.devserver.seed import seed_demo_data
    from scripts.local_pg import fresh_database, postgres_server
    from scripts.vercelcheck import matrix

    warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")  # pgserver's platformdirs, harmless
    with postgres_server() as admin_url, fresh_database(admin_url, prefix="vercelcheck") as conninfo:
        sandbox_dir = Path(tempfile.mkdtemp(prefix="vercelcheck-sandbox-"))
        sandbox = start_sandbox(matrix.VENDOR_TOKEN, sandbox_dir)
        try:
            seed_demo_data(conninfo, sandbox.dataset)
            app_env = {
                "DATABASE_URL": conninfo,
                "CRON_SECRET": matrix.CRON_SECRET,
                "JOB_QUEUE_RUNNER_SECRET": matrix.RUNNER_SECRET,
                "SUPABASE_JWT_SECRET": matrix.JWT_SECRET,
                "GAME_PLATFORM_API_BASE_URL": sandbox.base_url,
                "GAME_PLATFORM_API_TOKEN": matrix.VENDOR_TOKEN,
            }
            with environment(app_env):
                from lib.settings import reload_settings

                reload_settings()
                dev = DevHttpServer(("127.0.0.1", 0), RouteTable(ROOT))
                thread = threading.Thread(target=dev.serve_forever, args=(0.05,), daemon=True)
                thread.start()
                try:
                    yield app_env, dev
                finally:
                    dev.shutdown()
                    dev.server_close()
        finally:
            sandbox.stop()
            shutil.rmtree(sandbox_dir, ignore_errors=True)


def log_problems(where: str, lines: list[str]) -> list[str]:
    """Every log line must be one of our JSON objects."""
    problems = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and "event" in record and "level" in record):
            problems.append(f"{where}: a log line that is not our JSON: {line[:160]!r}")
    return problems


def answer_problems(where: str, expected: int, status: int, headers: Mapping[str, str], body: bytes) -> list[str]:
    problems = []
    if status != expected:
        problems.append(f"{where}: status {status}, expected {expected}: {body[:200]!r}")
    if headers.get("content-type") != "application/json":
        problems.append(f"{where}: Content-Type {headers.get('content-type')!r}, not application/json")
    try:
        json.loads(body)
    except ValueError:
        problems.append(f"{where}: the body is not JSON: {body[:200]!r}")
    server = headers.get("server", "")
    if server != server.strip():
        problems.append(f"{where}: Server header {server!r} has stray whitespace")
    return problems


def serve_all(toolchain: Toolchain, results: list[dict[str, Any]], *, verbose: bool = False) -> list[str]:
    from scripts.devserver.secrets import admin_access_token
    from scripts.devserver.seed import ADMIN_EMAIL, ADMIN_ID
    from scripts.local_http import request as dev_request
    from scripts.vercelcheck import matrix
    from scripts.vercelcheck.bridge import IpcBridge, event_mode, function_env

    def admin() -> dict[str, str]:
        """The seeded admin's bearer token, as scripts/dev.py mints it."""
        return {"Authorization": f"Bearer {admin_access_token(matrix.JWT_SECRET, str(ADMIN_ID), ADMIN_EMAIL)}"}

    problems: list[str] = []
    loaded = 0
    ordered = sorted(results, key=lambda r: r["entrypoint"] == WORKER)  # the worker drains what the others enqueued
    say(f"== serve: each bundle through vercel-runtime's bridge on {toolchain.python312}")
    with services() as (app_env, dev):
        for result in ordered:
            entrypoint, bundle = result["entrypoint"], Path(result["dir"])
            route = "/" + entrypoint.removesuffix(".py")
            env = function_env(result["lambda"]["environment"], app_env)
            cases = matrix.cases(entrypoint, admin)
            if not cases:
                problems.append(f"{entrypoint}: no request matrix (add it to scripts/vercelcheck/matrix.py)")
            before = len(problems)
            started = time.monotonic()
            with IpcBridge(toolchain.python312, bundle, env) as bridge:
                loaded += 1
                problems += log_problems(f"{entrypoint} (init)", "".join(bridge.logs_of("0")).splitlines())
                for case in cases:
                    path = route + (f"?{case.query}" if case.query else "")
                    where = f"{entrypoint} {case.method} {case.name} (IPC)"
                    got = bridge.request(case.method, path, case.headers, case.body)
                    problems += answer_problems(where, case.status, got.status, got.headers, got.body)
                    problems += log_problems(where, got.logs)
                    if verbose:
                        say(f"    {case.method} {path} -> {got.status} {got.body[:300].decode(errors='replace')}")
                        for line in got.logs:
                            say(f"      log: {line[:200]}")
                    if case.compare:
                        again = bridge.request(case.method, path, case.headers, case.body)
                        local = dev_request(dev.server_address[1], case.method, path, case.body, dict(case.headers))
                        if (again.status, matrix.comparable(json.loads(again.body))) != (
                            local.status,
                            matrix.comparable(local.json),
                        ):
                            problems.append(
                                f"{entrypoint} {case.method} {case.name}: the bridge answers {again.status} "
                                f"{again.body[:200]!r}, scripts/dev.py {local.status} {local.raw[:200]!r}"
                            )
            stray = bridge.stray_output.decode(errors="replace").strip()
            if stray:
                problems.append(f"{entrypoint}: output outside the IPC log channel: {stray[:300]!r}")
            requests = [
                (c.method, route + (f"?{c.query}" if c.query else ""), c.headers, c.body)
                for c in cases
                if c.status != 200
            ]
            answers, output = event_mode(toolchain.python312, bundle, env, requests)
            for case, got in zip([c for c in cases if c.status != 200], answers, strict=True):
                where = f"{entrypoint} {case.method} {case.name} (event)"
                problems += answer_problems(where, case.status, got.status, got.headers, got.body)
            problems += log_problems(f"{entrypoint} (event mode output)", output)
            verdict = "ok  " if len(problems) == before else "FAIL"
            took = time.monotonic() - started
            cold = f"cold start {bridge.init_duration_ms} ms"
            say(f"  {verdict} {entrypoint:42s} {len(cases)} requests, {cold}, {took:.1f} s")
    say(f"   {loaded}/{len(results)} loaded")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="copy the built functions into this folder")
    parser.add_argument("--build-only", action="store_true", help="build and check the bundles, do not serve them")
    parser.add_argument("--verbose", action="store_true", help="print every answer and the log lines it produced")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        toolchain = find_toolchain()
        say(f"vercel check: node {toolchain.node}, uv {toolchain.uv}, Python 3.12 {toolchain.python312}")
        install_builder(toolchain)
        with tempfile.TemporaryDirectory(prefix="vercel-check-") as tmp_name:
            tmp = Path(tmp_name)
            results, problems = build_all(toolchain, tmp)
            if not problems and not args.build_only:
                problems += serve_all(toolchain, results, verbose=args.verbose)
            if args.keep:
                shutil.copytree(tmp / "functions", args.keep, dirs_exist_ok=True, symlinks=True)
    except CheckFailed as exc:
        say(f"vercel check: FAILED: {exc}")
        return 1
    for problem in problems:
        say(f"  problem: {problem}")
    verdict = "FAILED" if problems else "passed"
    say(f"vercel check: {verdict} in {time.monotonic() - started:.0f} s ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
