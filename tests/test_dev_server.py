"""The local dev server: `scripts/dev.py` as a newcomer runs it, its routing, and its cron runner."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psutil
import psycopg
import pytest

from scripts.devserver.cron import (
    CronEvaluator,
    CronScheduler,
    read_supabase_schedules,
    supabase_schedule_entries,
    vercel_cron_entries,
)
from scripts.devserver.routes import DevHttpServer, RouteTable, discover_api_files
from scripts.devserver.seed import ADMIN_ID, demo_id
from scripts.local_http import LocalHTTPServer
from scripts.local_pg import create_database, drop_database
from tests.support.api import request
from tests.support.dev_server import DEV, DevProcess, dev_env
from tests.support.secrets import CRON_SECRET, RUNNER_SECRET, cron_headers, runner_headers

ROOT = Path(__file__).resolve().parents[1]
JWT_SECRET = "dev-server-test-jwt-secret-0123456789abcdef"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A folder of the test's own, outside pytest's shared temporary root.

    As root, the embedded PostgreSQL runs as another user, which needs to reach
    its data folder; another pytest session starting meanwhile on the same
    machine takes group and other permissions off `/tmp/pytest-of-<user>`, and the
    server then cannot open (or, stopping, remove) its files there.
    """
    path = Path(tempfile.mkdtemp(prefix="jq-dev-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and any(str(pgdata) in part for part in cmdline):
            found.append(proc)
    return found


def assert_stopped_cleanly(data_dir: Path) -> None:
    pgdata = data_dir.resolve() / "pgdata"
    assert postgres_processes(pgdata) == [], "the embedded PostgreSQL is still running"
    assert not (pgdata / "postmaster.pid").exists(), "stale postmaster.pid left behind"
    holders = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
    assert holders == [], f"stale pgserver holder pids: {holders}"


# -- --once ----------------------------------------------------------------------------


def test_once_from_an_empty_data_folder_syncs_sweeps_exits_0_and_restarts_on_its_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    first = subprocess.run(
        [*DEV, "--once", "--port", "0", "--data-dir", str(data_dir)],
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = first.stdout
    assert first.returncode == 0, out[-4000:] + first.stderr[-2000:]
    assert "SANDBOX Game Platform" in out
    assert "seeded now: 1 admin" in out
    assert "enqueued game_platform_sync" in out
    assert "POST /api/admin/jobs/trigger-sync" in out
    assert re.search(r"game_platform_sync\s+succeeded", out), out[-3000:]
    assert re.search(r"game_platform_totals_sweep\s+succeeded", out), out[-3000:]
    assert "2 succeeded, 0 failed" in out
    assert_stopped_cleanly(data_dir)
    assert json.loads((data_dir / "secrets.json").read_text())["CRON_SECRET"].startswith("dev-")

    second = subprocess.run(
        [*DEV, "--once", "--port", "0", "--data-dir", str(data_dir)],
        env=dev_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert second.returncode == 0, second.stdout[-4000:]
    assert "kept from the last run" in second.stdout
    assert "seeded when this database was created" in second.stdout
    assert_stopped_cleanly(data_dir)


@pytest.fixture
def given_database(admin_conninfo: str) -> Iterator[str]:
    """An empty database of the test server, as a user's DATABASE_URL."""
    conninfo = create_database(admin_conninfo, prefix="jq_devgiven")
    try:
        yield conninfo
    finally:
        drop_database(admin_conninfo, conninfo)


def test_once_on_a_given_database_migrates_it_never_seeds_it_and_exits_1_when_a_job_fails(
    tmp_path: Path, given_database: str
) -> None:
    run = [*DEV, "--once", "--port", "0", "--data-dir", str(tmp_path / "dev")]
    ok = subprocess.run(
        run, env=dev_env(DATABASE_URL=given_database), capture_output=True, text=True, timeout=240, check=False
    )
    assert ok.returncode == 0, ok.stdout[-4000:] + ok.stderr[-2000:]
    assert "never seeds a database given by DATABASE_URL" in ok.stdout
    # Without a seeded admin it enqueues through lib.queue, with the payloads the triggers store.
    assert "enqueued game_platform_sync" in ok.stdout
    assert "lib.queue, no admin token" in ok.stdout
    assert not (tmp_path / "dev" / "pgdata").exists(), "no embedded server when DATABASE_URL is given"
    with psycopg.connect(given_database, autocommit=True, prepare_threshold=None) as conn:
        assert conn.execute("select count(*) from profiles").fetchone() == (0,)
        assert conn.execute("select count(*) from competitors").fetchone() == (0,)
        conn.execute("insert into job_queue (task_type) values ('no_such_task')")

    failing = subprocess.run(
        run, env=dev_env(DATABASE_URL=given_database), capture_output=True, text=True, timeout=240, check=False
    )
    assert failing.returncode == 1, failing.stdout[-4000:]
    assert re.search(r"no_such_task\s+failed", failing.stdout)
    assert "unknown task type" in failing.stdout


# -- the running server --------------------------------------------------------------------


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevProcess]:
    env = dev_env(CRON_SECRET=CRON_SECRET, JOB_QUEUE_RUNNER_SECRET=RUNNER_SECRET, SUPABASE_JWT_SECRET=JWT_SECRET)
    server = DevProcess(tmp_path / "dev", env)
    yield server
    server.close()


def token_for(sub: Any, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": str(sub), "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600},
        secret,
        algorithm="HS256",
    )


def test_dev_server_serves_every_api_file_with_its_auth_and_stops_cleanly_on_sigterm(dev_server: DevProcess) -> None:
    routes = discover_api_files(ROOT / "api")
    assert "/api/jobs/run" in routes
    assert len(routes) >= 7
    banner = dev_server.output
    for route in routes:
        assert f"{dev_server.base_url}{route}" in banner, f"{route} missing from the printed URLs"
    printed_token = re.search(r"export ADMIN_TOKEN=(\S+)", banner)
    assert printed_token, banner[-3000:]
    claims = jwt.decode(printed_token.group(1), JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == str(ADMIN_ID)
    assert claims["exp"] > time.time()
    assert 'curl -sS -X POST "$DEV/api/admin/jobs/trigger-sync"' in banner

    admin = {"Authorization": f"Bearer {printed_token.group(1)}"}
    coach = {"Authorization": f"Bearer {token_for(demo_id('coach', 'syned-coach-01'))}"}
    forged = {"Authorization": f"Bearer {token_for(ADMIN_ID, secret='not-the-secret-0123456789abcdefghij')}"}
    port = dev_server.port

    # The worker: runner secrets only.
    assert request(port, "GET", "/api/jobs/run").status == 401
    assert request(port, "GET", "/api/jobs/run", headers=admin).status == 401
    cron_call = request(port, "GET", "/api/jobs/run", headers=cron_headers())
    assert cron_call.status == 200
    assert cron_call.json["status"] == "ok"
    assert request(port, "POST", "/api/jobs/run", body={"limit": 1}, headers=runner_headers()).status == 200

    # Every admin route: 401 without or with a forged session, 403 for a non-admin, served for the admin.
    # The one exception is the dashboard's public sign-in config (Supabase URL and anon key).
    assert request(port, "GET", "/api/admin/config").status == 200
    for route in (r for r in routes if r.startswith("/api/admin/") and r != "/api/admin/config"):
        method = "GET" if route.endswith(("/health", "/jobs")) else "POST"
        body = {} if method == "POST" else None
        assert request(port, method, route, body=body).status == 401, route
        assert request(port, method, route, body=body, headers=forged).status == 401, route
        assert request(port, method, route, body=body, headers=coach).status == 403, route
        served = request(port, method, route, body=body, headers=admin)
        assert served.status not in (401, 403, 404, 500, 501), (route, served.status, served.json)
    health = request(port, "GET", "/api/admin/job-queue/health", headers=runner_headers())
    assert health.status in (200, 503)
    assert "queueCounts" in health.json
    sync = request(port, "POST", "/api/admin/jobs/trigger-sync", body={"dryRun": True}, headers=admin)
    assert sync.status == 200
    assert sync.json["success"] is True

    missing = request(port, "GET", "/api/nope")
    assert missing.status == 404
    assert "/api/jobs/run" in missing.json["routes"]

    assert dev_server.stop(signal.SIGTERM) == 0
    assert "SIGTERM: stopping" in dev_server.output
    assert_stopped_cleanly(dev_server.data_dir)


def test_ctrl_c_stops_everything_and_the_next_start_reuses_the_data(dev_server: DevProcess) -> None:
    port = dev_server.port
    enqueued = request(port, "POST", "/api/jobs/run", body={"limit": 1}, headers=runner_headers())
    assert enqueued.status == 200
    assert dev_server.stop(signal.SIGINT) == 0
    assert "SIGINT: stopping" in dev_server.output
    assert_stopped_cleanly(dev_server.data_dir)

    env = dev_env(CRON_SECRET=CRON_SECRET, JOB_QUEUE_RUNNER_SECRET=RUNNER_SECRET, SUPABASE_JWT_SECRET=JWT_SECRET)
    again = DevProcess(dev_server.data_dir, env)
    try:
        assert "kept from the last run" in again.output
        health = request(again.port, "GET", "/api/admin/job-queue/health", headers=runner_headers())
        assert health.json["recentRuns"], "the first run's worker call should be in the kept database"
        assert again.stop(signal.SIGINT) == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
    assert_stopped_cleanly(dev_server.data_dir)


def test_a_killed_dev_server_does_not_block_the_next_start(tmp_path: Path) -> None:
    env = dev_env(CRON_SECRET=CRON_SECRET, JOB_QUEUE_RUNNER_SECRET=RUNNER_SECRET, SUPABASE_JWT_SECRET=JWT_SECRET)
    killed = DevProcess(tmp_path / "dev", env)
    killed.proc.kill()  # SIGKILL: no cleanup at all
    killed.proc.wait(10)
    again = DevProcess(tmp_path / "dev", env)
    try:
        assert request(again.port, "GET", "/api/jobs/run", headers=cron_headers()).status == 200
        assert again.stop(signal.SIGTERM) == 0
    finally:
        if again.proc.poll() is None:
            again.proc.kill()
    assert_stopped_cleanly(tmp_path / "dev")


# -- routing, in process ---------------------------------------------------------------------


def test_routes_are_discovered_from_the_folder_with_vercel_paths(tmp_path: Path) -> None:
    (tmp_path / "api" / "a").mkdir(parents=True)
    (tmp_path / "api" / "_private").mkdir()
    for name in ("a/b-c.py", "a/index.py", "top.py", "_private/x.py", "a/_helper.py"):
        (tmp_path / "api" / name).write_text("")
    assert set(discover_api_files(tmp_path / "api")) == {"/api/a/b-c", "/api/a", "/api/top"}


def test_a_new_api_file_is_served_without_registration(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    table = RouteTable(tmp_path)
    server = DevHttpServer(("127.0.0.1", 0), table)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert request(port, "GET", "/api/hello-world").status == 404
        broken = tmp_path / "api" / "hello-world.py"
        broken.write_text("handler = 1 / 0\n")
        assert request(port, "GET", "/api/hello-world").status == 404
        assert "ZeroDivisionError" in table.errors["/api/hello-world"]
        stale = broken.stat().st_mtime_ns
        broken.write_text(
            "from lib.http import Routes, VercelHandler, json_response\n"
            "class handler(VercelHandler):\n"
            '    """Says hello."""\n'
            "    routes = Routes(GET=lambda request: json_response({'hello': request.path}))\n"
        )
        os.utime(broken, ns=(stale + 10**9, stale + 10**9))  # changed, even on a coarse-mtime filesystem
        answer = request(port, "GET", "/api/hello-world?x=1")
        assert answer.status == 200
        assert answer.json == {"hello": "/api/hello-world"}
        assert request(port, "POST", "/api/hello-world", body={}).status == 405  # the class's own answer
        assert "/api/hello-world" not in table.errors
    finally:
        server.shutdown()
        server.server_close()


# -- cron --------------------------------------------------------------------------------------


@pytest.fixture
def cron(database_url: str) -> CronEvaluator:
    """The dev server's cron: the migrated database's `job_queue_cron_next`."""
    return CronEvaluator(database_url)


class RecordingServer(LocalHTTPServer):
    """Records each request's method, path and headers; answers 200 {}."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.seen.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_a_cron_tick_calls_the_worker_exactly_as_vercel_cron_does(cron: CronEvaluator) -> None:
    recorder = RecordingServer()
    threading.Thread(target=recorder.serve_forever, args=(0.05,), daemon=True).start()
    try:
        base = f"http://127.0.0.1:{recorder.server_address[1]}"
        entries = vercel_cron_entries(ROOT / "vercel.json", base, "the-cron-secret", cron)
        vercel = json.loads((ROOT / "vercel.json").read_text())["crons"]
        assert [(e.name, e.expression.text) for e in entries] == [(c["path"], c["schedule"]) for c in vercel]
        scheduler = CronScheduler(entries, report=lambda line: None)
        scheduler.tick(datetime(2026, 11, 28, 12, 3, tzinfo=UTC), wait=True)
        assert recorder.seen == [], "*/5 does not fire at minute 3"
        scheduler.tick(datetime(2026, 11, 28, 12, 5, tzinfo=UTC), wait=True)
    finally:
        recorder.shutdown()
        recorder.server_close()
    assert len(recorder.seen) == 1
    call = recorder.seen[0]
    assert (call["method"], call["path"]) == ("GET", "/api/jobs/run")
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["authorization"] == "Bearer the-cron-secret"
    assert headers["user-agent"] == "vercel-cron/1.0"
    assert "content-length" not in headers, "Vercel Cron sends no body"


def test_a_cron_tick_through_the_dev_router_runs_the_real_worker_as_vercel_cron(
    app_env: Callable[..., None], sql: psycopg.Connection, cron: CronEvaluator
) -> None:
    server = DevHttpServer(("127.0.0.1", 0), RouteTable(ROOT))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    outcomes: list[str] = []
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        scheduler = CronScheduler(
            vercel_cron_entries(ROOT / "vercel.json", base, CRON_SECRET, cron), report=outcomes.append
        )
        scheduler.tick(datetime(2026, 11, 28, 12, 0, tzinfo=UTC), wait=True)
    finally:
        server.shutdown()
        server.server_close()
    assert len(outcomes) == 1, outcomes
    assert "-> 200" in outcomes[0], outcomes
    runs = sql.execute("select trigger_source, status from job_queue_invocations").fetchall()
    assert runs == [{"trigger_source": "vercel_cron", "status": "completed"}]


def test_the_pg_cron_migration_defines_only_the_worker_ping_which_needs_pg_net(clean_db: str) -> None:
    definitions = read_supabase_schedules(clean_db)
    assert {d.job_name: d.schedule for d in definitions} == {"job-queue-worker-ping": "*/5 * * * *"}
    assert supabase_schedule_entries(clean_db, definitions) == [], "pg_net is not there locally"


def test_a_vercel_cron_tick_enqueues_what_the_queues_own_schedules_have_due(
    app_env: Callable[..., None], sql: psycopg.Connection, cron: CronEvaluator
) -> None:
    """The dev server schedules nothing of its own: its Vercel cron call to the worker keeps the schedules."""
    sql.execute(
        "insert into job_queue_schedules (name, task_type, payload, cron, next_run_at) values"
        " ('game_platform_totals_sweep', 'game_platform_totals_sweep',"
        "  '{\"dryRun\": true, \"coachId\": null, \"batchSize\": 100}', '0 * * * *', now() - interval '1 minute')"
    )
    table = RouteTable(ROOT)
    server = DevHttpServer(("127.0.0.1", 0), table)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        outcomes: list[str] = []
        scheduler = CronScheduler(
            vercel_cron_entries(ROOT / "vercel.json", base, CRON_SECRET, cron), report=outcomes.append
        )
        scheduler.tick(datetime(2026, 11, 28, 12, 0, tzinfo=UTC), wait=True)
    finally:
        server.shutdown()
        server.server_close()
    assert "-> 200" in outcomes[0], outcomes
    jobs = sql.execute("select task_type, payload from job_queue").fetchall()
    assert jobs == [
        {"task_type": "game_platform_totals_sweep", "payload": {"dryRun": True, "coachId": None, "batchSize": 100}}
    ]


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("*/30 * * * *", datetime(2026, 1, 1, 10, 30), True),
        ("*/30 * * * *", datetime(2026, 1, 1, 10, 31), False),
        ("0 * * * *", datetime(2026, 1, 1, 7, 0), True),
        ("17 3 * * *", datetime(2026, 1, 1, 3, 17), True),
        ("17 3 * * *", datetime(2026, 1, 1, 4, 17), False),
        ("0 9 * * 1-5", datetime(2026, 11, 28, 9, 0), False),  # a Saturday
        ("0 9 * * 1-5", datetime(2026, 11, 30, 9, 0), True),  # a Monday
        ("0 0 1 * 0", datetime(2026, 11, 29, 0, 0), True),  # day-of-month OR day-of-week (Sunday)
        ("0 0 1 * 7", datetime(2026, 11, 29, 0, 0), True),  # 7 is Sunday too
        ("5,10-12 * * * *", datetime(2026, 1, 1, 0, 11), True),
    ],
)
def test_cron_expressions_match_as_cron_does(
    cron: CronEvaluator, expression: str, moment: datetime, expected: bool
) -> None:
    assert cron.parse(expression).matches(moment) is expected


def test_cron_next_after_and_invalid_expressions(cron: CronEvaluator) -> None:
    assert cron.parse("*/30 * * * *").next_after(datetime(2026, 1, 1, 10, 30, 5)) == datetime(2026, 1, 1, 11, 0)
    for bad in ("* * * *", "60 * * * *", "*/0 * * * *", "a * * * *"):
        with pytest.raises(ValueError, match="cron expression"):
            cron.parse(bad)


def test_the_scheduler_thread_fires_due_entries_at_the_minute_boundary(cron: CronEvaluator) -> None:
    """A clock 0.3 s before 12:05 UTC: the */5 entry fires once at 12:05, the hourly one not at all."""
    from datetime import timedelta

    from scripts.devserver.cron import CronEntry

    fired: list[str] = []
    start, t0 = datetime(2026, 11, 28, 12, 4, 59, 700000, tzinfo=UTC), time.monotonic()
    entries = [
        CronEntry("vercel", "every-5", cron.parse("*/5 * * * *"), lambda: fired.append("every-5") or "", ""),
        CronEntry("supabase", "hourly", cron.parse("0 * * * *"), lambda: fired.append("hourly") or "", ""),
    ]
    scheduler = CronScheduler(
        entries,
        report=lambda line: None,
        clock=lambda: start + timedelta(seconds=time.monotonic() - t0),
    )
    scheduler.start()
    time.sleep(1.0)
    scheduler.stop()
    assert fired == ["every-5"]
