"""Run the whole system locally in one command.

    make dev                           # (or python scripts/dev.py) http://127.0.0.1:3000 until Ctrl-C
    python scripts/dev.py --port 8080
    python scripts/dev.py --once       # (make dev ARGS=--once) enqueue a sync and a sweep, drain, summarize, exit
    python scripts/dev.py --no-schedules   # serve, but run no schedule and send no kick

- Database: `DATABASE_URL` when set (migrated, never seeded); otherwise an
  embedded PostgreSQL whose data lives in `./.dev/` and survives restarts.
  Migrations run with scripts/migrate.py's code.
- Game Platform: without `GAME_PLATFORM_API_BASE_URL`, a sandbox vendor with
  demo data on loopback (clearly labelled), and demo coaches, competitors,
  teams and an admin profile seeded into the embedded database the first time
  it is created.
- Serves every file under `api/` at its Vercel route through its own `handler`
  class; runs the crons of `vercel.json` (GET, `Authorization: Bearer
  $CRON_SECRET`, user agent `vercel-cron/1.0`) on their schedules (UTC); each
  worker call enqueues what the queue's own schedules (job_queue_schedules) have
  due. Sets JOB_QUEUE_WORKER_URL to its own worker, so triggers kick it.
- Prints the URLs, the generated local secrets, an admin access token for the
  local `SUPABASE_JWT_SECRET`, and curl commands for each endpoint; serves `/`
  (an index), `/docs` and `/openapi.json`; logs one line per request.
- SIGINT / SIGTERM: stops the HTTP server, the schedules, the sandbox and the
  embedded PostgreSQL, in that order, and exits 0.

`--once` exits 0 when every job it drained succeeded, 1 when one failed (or is
waiting for a retry), 2 on bad usage, 3 when it could not start.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as `python scripts/dev.py`: make `lib` and `scripts` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scripts.requirements_check import require_dev_environment

    require_dev_environment("scripts/dev.py")  # a clear message, not a ModuleNotFoundError, outside .venv

from lib.sql import load_queries
from scripts.devserver.banner import AdminToken, render_banner
from scripts.devserver.cron import (
    CronEntry,
    CronEvaluator,
    CronScheduler,
    read_queue_schedules,
    read_supabase_schedules,
    supabase_schedule_entries,
    vercel_cron_entries,
)
from scripts.devserver.database import DevDatabase, open_dev_database
from scripts.devserver.routes import DevHttpServer, RouteTable
from scripts.devserver.secrets import admin_access_token, load_local_secrets

QUERIES = load_queries(__file__, "dev.sql")

ROOT = Path(__file__).resolve().parent.parent
ONCE_TASKS = (
    ("game_platform_sync", "/api/admin/jobs/trigger-sync", {"dryRun": False}),
    ("game_platform_totals_sweep", "/api/admin/jobs/trigger-totals-sweep", {"dryRun": False, "batchSize": 100}),
)
TOKEN_TTL_HOURS = 12
DEFAULT_PORT = 3000
EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_START_FAILED = 0, 1, 2, 3


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived: unwind and stop everything started so far."""


class StopSignal:
    """SIGINT/SIGTERM set an event instead of raising mid-statement.

    Startup checks the event between steps, so a signal never lands halfway
    through starting PostgreSQL (which could leave a server nobody stops).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.name: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            print("still stopping…", flush=True)
            return
        self.name = signal.Signals(signum).name
        self.event.set()

    def check(self) -> None:
        if self.event.is_set():
            raise StopRequested(self.name or "stop")

    def wait(self) -> None:
        while not self.event.wait(0.5):
            pass


def say(message: str = "") -> None:
    print(message, flush=True)


# -- HTTP calls to our own server --------------------------------------------------


def http(
    method: str, url: str, *, headers: dict[str, str], body: Any = None, timeout: float = 330.0
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# -- --once ------------------------------------------------------------------------


@dataclass
class OnceContext:
    base_url: str
    runner_secret: str
    admin_token: str | None
    conninfo: str


def enqueue_once(ctx: OnceContext) -> list[str]:
    """Enqueue a sync and a sweep: through the admin endpoints when we hold an admin token,
    else with the queue's own call and the payloads those endpoints would store. Returns the job ids."""
    job_ids = []
    for task_type, path, body in ONCE_TASKS:
        if ctx.admin_token:
            status, answer = http(
                "POST", ctx.base_url + path, headers={"Authorization": f"Bearer {ctx.admin_token}"}, body=body
            )
            if status != 200:
                raise RuntimeError(f"POST {path} answered {status}: {answer}")
            job_id, how = answer["jobId"], f"POST {path}"
        else:
            job_id, how = _enqueue_directly(ctx.conninfo, task_type, body), "lib.queue, no admin token"
        say(f"enqueued {task_type} {job_id} ({how})")
        job_ids.append(job_id)
    return job_ids


def _enqueue_directly(conninfo: str, task_type: str, body: dict[str, Any]) -> str:
    from lib.db import connect
    from lib.jobs.registry import default_registry, stored_payload
    from lib.queue import Queue
    from lib.settings import load_settings

    spec = default_registry.get(task_type)
    assert spec is not None, task_type
    with connect(load_settings({"DATABASE_URL": conninfo})) as db:
        return str(Queue(db).enqueue_unique(task_type, stored_payload(spec, body)).job_id)


def drain_once(ctx: OnceContext, stop: StopSignal, max_calls: int = 50) -> list[dict[str, Any]] | None:
    """POST the worker until it finds nothing due; every result, in order. None when paused."""
    results: list[dict[str, Any]] = []
    for _ in range(max_calls):
        stop.check()
        status, answer = http(
            "POST",
            ctx.base_url + "/api/jobs/run",
            headers={"x-job-runner-secret": ctx.runner_secret},
            body={"limit": 10},
        )
        if status != 200:
            raise RuntimeError(f"POST /api/jobs/run answered {status}: {answer}")
        if answer.get("status") == "paused":
            say(f"processing is paused ({answer.get('reason')}): resume with `python scripts/jobs.py resume`")
            return None
        say(
            f"worker: processed {answer['processed']} "
            f"({answer['succeeded']} succeeded, {answer['failed']} failed, {answer.get('released', 0)} released)"
        )
        results.extend(answer["results"])
        if answer["processed"] == 0 and not answer.get("released"):
            break
    return results


def describe_output(output: Any) -> list[str]:
    """A job's output in a few lines: scalars and counts; lists only by their length."""
    if not isinstance(output, dict):
        return [f"output: {json.dumps(output)[:300]}"]
    scalars = [f"{k}={json.dumps(v)}" for k, v in output.items() if not isinstance(v, dict | list)]
    lines = [" ".join(scalars)] if scalars else []
    for key, value in output.items():
        if isinstance(value, dict):
            counts = " ".join(f"{k}={json.dumps(v)}" for k, v in value.items() if not isinstance(v, dict | list))
            lines.append(f"{key}: {counts}")
        elif isinstance(value, list):
            lines.append(f"{key}: {len(value)} item{'s' if len(value) != 1 else ''}")
    return lines


def summarize_once(results: list[dict[str, Any]], conninfo: str) -> int:
    import psycopg
    from psycopg.rows import dict_row

    say("")
    say("Summary")
    if not results:
        say("  no job ran")
        return EXIT_JOB_FAILED
    final: dict[str, dict[str, Any]] = {}
    for result in results:
        final[result["id"]] = result  # the last result of each job is its state now
    with psycopg.connect(conninfo, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
        outputs = {
            str(r["id"]): r["output"] for r in conn.execute(QUERIES["job_outputs"], {"ids": list(final)}).fetchall()
        }
    failed = 0
    for job_id, result in final.items():
        ok = result["status"] == "succeeded"
        failed += not ok
        say(f"  {result['taskType']:<28} {result['status']:<10} attempts={result['attempts']}  {job_id}")
        if ok and outputs.get(job_id) is not None:
            for line in describe_output(outputs[job_id]):
                say(f"      {line}")
        if result.get("lastError"):
            retry = f" (retry at {result['retryAt']})" if result.get("retryAt") else ""
            say(f"      error: {result['lastError'][:600]}{retry}")
    say(f"  {len(final) - failed} succeeded, {failed} failed")
    return EXIT_OK if failed == 0 else EXIT_JOB_FAILED


# -- startup ---------------------------------------------------------------------------


def configure_environment(values: dict[str, str]) -> None:
    """The bundle reads its settings from the environment: set ours, then re-validate."""
    from lib.settings import reload_settings

    os.environ.update(values)
    reload_settings()


def start(args: argparse.Namespace, stop: StopSignal, stack: ExitStack) -> int:
    data_dir = args.data_dir.resolve()
    secrets = load_local_secrets(data_dir)
    user_database_url = (os.environ.get("DATABASE_URL") or os.environ.get("POSTGRES_URL") or "").strip() or None

    say("starting the database…" if user_database_url else f"starting the embedded PostgreSQL in {data_dir}…")
    db: DevDatabase = open_dev_database(data_dir, user_database_url)
    stack.callback(_stopping("database", db.stop))
    stop.check()

    env = {
        "DATABASE_URL": db.conninfo,
        "CRON_SECRET": secrets["CRON_SECRET"].value,
        "JOB_QUEUE_RUNNER_SECRET": secrets["JOB_QUEUE_RUNNER_SECRET"].value,
        "SUPABASE_JWT_SECRET": secrets["SUPABASE_JWT_SECRET"].value,
    }
    sandbox = None
    if os.environ.get("GAME_PLATFORM_API_BASE_URL", "").strip():
        game_platform = f"{os.environ['GAME_PLATFORM_API_BASE_URL'].strip()} (from GAME_PLATFORM_API_BASE_URL)"
    else:
        from scripts.devserver.sandbox import SANDBOX_LABEL, start_sandbox

        sandbox = start_sandbox(secrets["GAME_PLATFORM_API_TOKEN"].value, data_dir)
        stack.callback(_stopping("sandbox Game Platform", sandbox.stop))
        env["GAME_PLATFORM_API_BASE_URL"] = sandbox.base_url
        env["GAME_PLATFORM_API_TOKEN"] = sandbox.token
        game_platform = f"{SANDBOX_LABEL} at {sandbox.base_url}"
    configure_environment(env)
    stop.check()

    from scripts.devserver.seed import ensure_demo_data, find_admin

    seed_note = ensure_demo_data(db.conninfo, embedded=db.embedded, dataset=sandbox.dataset if sandbox else None)

    admin: AdminToken | None = None
    admin_note = ""
    found = find_admin(db.conninfo)
    if found is None:
        admin_note = "no profile has role 'admin' in this database"
    else:
        user_id, email = found
        token = admin_access_token(secrets["SUPABASE_JWT_SECRET"].value, str(user_id), email, TOKEN_TTL_HOURS * 3600)
        admin = AdminToken(token, str(user_id), email, TOKEN_TTL_HOURS)

    table = RouteTable(ROOT)
    port = listen_port(args)
    try:
        server = DevHttpServer((args.host, port), table, access_log=say)
    except OSError as exc:
        say(f"cannot listen on {args.host}:{port}: {exc.strerror or exc}. Choose another with --port.")
        return EXIT_START_FAILED
    base_url = f"http://{args.host}:{server.server_address[1]}"
    server_thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="dev-http", daemon=True)
    server_thread.start()
    stack.callback(_stopping("HTTP server", lambda: (server.shutdown(), server.server_close())))
    stop.check()

    crons: list[CronEntry] = vercel_cron_entries(
        ROOT / "vercel.json", base_url, secrets["CRON_SECRET"].value, CronEvaluator(db.conninfo)
    )
    schedules = read_supabase_schedules(db.conninfo)
    crons += supabase_schedule_entries(db.conninfo, schedules)
    skipped = [d for d in schedules if d.needs_pg_net]

    if args.once:
        ctx = OnceContext(
            base_url=base_url,
            runner_secret=secrets["JOB_QUEUE_RUNNER_SECRET"].value,
            admin_token=admin.token if admin else None,
            conninfo=db.conninfo,
        )
        say(f"dev server on {base_url} ({db.description}; {game_platform})")
        say(f"demo data: {seed_note}")
        enqueue_once(ctx)
        results = drain_once(ctx, stop)
        if results is None:
            return EXIT_JOB_FAILED
        return summarize_once(results, db.conninfo)

    worker_url: str | None = None
    if args.no_schedules:
        say("schedules and kicks: off (--no-schedules); the worker runs only when called")
    else:
        # Kicks: a trigger, retry or CLI enqueue starts this server's worker at once.
        # (Not in --once, which drains by calling the worker itself and counts what it ran.)
        worker_url = f"{base_url}/api/jobs/run"
        configure_environment({"JOB_QUEUE_WORKER_URL": worker_url})

        scheduler = CronScheduler(crons, report=say)
        scheduler.start()
        stack.callback(_stopping("schedules", scheduler.stop))
    if sandbox is not None:
        sandbox.simulate_activity()

    say(
        render_banner(
            base_url=base_url,
            database=db.description,
            cli_line=cli_hint(db, args.data_dir.resolve(), sandbox is not None),
            migrations_applied=[m.path.name for m in db.applied],
            game_platform=game_platform,
            seed_note=seed_note,
            routes=table.routes(),
            route_errors=table.errors,
            secrets=secrets,
            admin=admin,
            admin_note=admin_note,
            crons=crons,
            skipped_schedules=skipped,
            queue_schedules=read_queue_schedules(db.conninfo),
            worker_url=worker_url,
        )
    )
    say(f"ready: {base_url}")
    stop.wait()
    say(f"\n{stop.name}: stopping…")
    return EXIT_OK


def listen_port(args: argparse.Namespace) -> int:
    """--port, else 3000; --once talks only to itself, so it takes a free port and runs beside a server on 3000."""
    if args.port is not None:
        return int(args.port)
    return 0 if args.once else DEFAULT_PORT


def cli_hint(db: DevDatabase, data_dir: Path, with_sandbox: bool) -> str:
    """How to run the operator CLI against what this server uses."""
    python = ".venv/bin/python" if Path(sys.prefix).resolve() == (ROOT / ".venv").resolve() else "python"
    if db.embedded and data_dir == (ROOT / ".dev").resolve():
        sandbox = " and the sandbox vendor" if with_sandbox else ""
        return f"Operator CLI on this database{sandbox}, no variables needed: {python} scripts/jobs.py status"
    database_url = shlex.quote(db.conninfo) if db.embedded else '"$DATABASE_URL"'
    exports = [f"DATABASE_URL={database_url}"]
    for name in ("GAME_PLATFORM_API_BASE_URL", "GAME_PLATFORM_API_TOKEN"):
        if os.environ.get(name):
            exports.append(f"{name}={shlex.quote(os.environ[name])}")
    return f"Operator CLI on this database: export {' '.join(exports)}; {python} scripts/jobs.py status"


def _stopping(what: str, action: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        started = time.monotonic()
        action()
        say(f"stopped {what} ({time.monotonic() - started:.1f} s)")

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/dev.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"HTTP port (default {DEFAULT_PORT}; with --once a free one; 0 picks a free one)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--once", action="store_true", help="enqueue a sync and a sweep, drain the queue, exit")
    parser.add_argument(
        "--no-schedules",
        action="store_true",
        help="run no schedule and send no kick (the browser tests: the worker runs only when a test calls it)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT / ".dev",
        help="embedded PostgreSQL data and local secrets (default ./.dev)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = StopSignal()
    stop.install()
    code = EXIT_OK
    with ExitStack() as stack:
        try:
            code = start(args, stop, stack)
        except StopRequested:
            say(f"\n{stop.name}: stopping…")
        except Exception as exc:  # noqa: BLE001 - explain, then unwind whatever was started
            say(f"dev server failed: {type(exc).__name__}: {exc}")
            code = EXIT_START_FAILED
    return code


if __name__ == "__main__":
    raise SystemExit(main())
