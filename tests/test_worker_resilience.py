"""The worker under the normal hazards of serverless: overlap, kills, time limits, outages."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from lib.queue import ClaimedJob, Queue
from tests.support.api import request
from tests.support.jobs import JobFactory
from tests.support.secrets import cron_headers, runner_headers
from tests.support.tasks import recorder

ROOT = Path(__file__).resolve().parents[1]


def _enqueue_many(sql, n, task_type="test_noop"):
    sql.execute(
        "select job_queue_enqueue_batch(%s, array_agg('{}'::jsonb)) from generate_series(1, %s)", (task_type, n)
    )


def test_overlapping_invocations_process_each_job_exactly_once(worker_api, sql):
    _enqueue_many(sql, 200)
    start = threading.Barrier(4)

    def drain() -> int:
        start.wait()
        processed = 0
        while True:
            body = worker_api.request("POST", body={"limit": 10}, headers=runner_headers()).json
            processed += body["processed"]
            if body["processed"] == 0:
                return processed

    with ThreadPoolExecutor(4) as pool:
        totals = list(pool.map(lambda _: drain(), range(4)))

    assert sum(totals) == 200
    assert len(recorder.runs) == 200
    assert set(recorder.runs.values()) == {1}
    counts = sql.execute("select status, count(*) as n, max(attempts) as a from job_queue group by status").fetchall()
    assert counts == [{"status": "succeeded", "n": 200, "a": 1}]


def test_cron_event_delivered_twice_processes_each_job_once(worker_api, sql):
    _enqueue_many(sql, 6)
    with ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda _: worker_api.request("GET", headers=cron_headers()).json, range(2)))
    # Two deliveries of up to 5 each share the 6 jobs: every job runs, none twice.
    assert sum(b["processed"] for b in bodies) == 6
    assert len(recorder.runs) == 6
    assert set(recorder.runs.values()) == {1}


def _start_worker_process(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.worker_process"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, port


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_job_of_a_killed_worker_is_reclaimed_after_its_lease_and_finishes(app_env, test_tasks, serve, sql, db):
    lease_seconds = 3.0
    settings = {
        "JOB_WORKER_MAX_DURATION_SECONDS": str(lease_seconds),
        "JOB_WORKER_FINISH_MARGIN_SECONDS": "0",
        "JOB_WORKER_MIN_JOB_SECONDS": "0",
        "JOB_WORKER_LEASE_MARGIN_SECONDS": "0",
    }
    app_env(**settings)
    job_id = sql.execute(
        "select job_queue_enqueue('test_sleep', '{\"seconds\": 30}'::jsonb, now(), 3) as id"
    ).fetchone()["id"]
    process, port = _start_worker_process({**os.environ, **settings})
    try:
        threading.Thread(
            target=lambda: _ignore_errors(lambda: request(port, "POST", "/api/jobs/run", None, runner_headers(), 60)),
            daemon=True,
        ).start()
        _wait_for(lambda: sql.execute("select status from job_queue").fetchone()["status"] == "processing")
        dead_token = sql.execute("select lease_token from job_queue").fetchone()["lease_token"]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    # Before the lease expires nobody may take the job over.
    worker = serve("api/jobs/run.py")
    assert worker.request("POST", headers=runner_headers()).json["processed"] == 0

    JobFactory(sql).stage(job_id, payload={"seconds": 0})
    _wait_for(lambda: sql.execute("select lease_expires_at < now() as expired from job_queue").fetchone()["expired"])
    body = worker.request("POST", headers=runner_headers()).json
    assert body["results"][0]["id"] == str(job_id)
    assert body["results"][0]["status"] == "succeeded"
    assert body["results"][0]["attempts"] == 2

    # The dead worker's token can no longer finish, fail or release the job.
    stale = ClaimedJob(job_id, "test_sleep", "{}", 1, 3, dead_token, None, None)  # type: ignore[arg-type]
    queue = Queue(db)
    assert queue.mark_failed(stale, "late", timedelta(seconds=1)) is None
    assert queue.mark_succeeded(stale, {"late": True}) is None
    assert queue.release([stale]) == 0
    row = sql.execute("select status, output, attempts from job_queue").fetchone()
    assert row == {"status": "succeeded", "output": {"slept": 0.0}, "attempts": 2}


def _ignore_errors(call) -> None:
    with contextlib.suppress(OSError):  # the worker is killed mid-request: that is the point
        call()


def test_job_that_does_not_fit_the_budget_is_released_unspent(worker_api, app_env, sql):
    app_env(
        JOB_WORKER_MAX_DURATION_SECONDS="2",
        JOB_WORKER_FINISH_MARGIN_SECONDS="0",
        JOB_WORKER_MIN_JOB_SECONDS="1.5",
    )
    slow = sql.execute(
        "select job_queue_enqueue('test_sleep', '{\"seconds\": 1}'::jsonb, now() - interval '1 minute', 3) as id"
    ).fetchone()["id"]
    waiting = sql.execute("select job_queue_enqueue('test_noop', '{}'::jsonb, now(), 3) as id").fetchone()["id"]

    body = worker_api.request("POST", body={"limit": 5}, headers=runner_headers()).json
    assert body["processed"] == 1
    assert body["results"][0]["id"] == str(slow)
    assert body["released"] == 1
    row = sql.execute("select status, attempts, lease_token from job_queue where id = %s", (waiting,)).fetchone()
    assert row == {"status": "pending", "attempts": 0, "lease_token": None}
    run = sql.execute("select claimed, processed, released from job_queue_invocations").fetchone()
    assert run == {"claimed": 2, "processed": 1, "released": 1}
    assert str(waiting) not in recorder.runs


def test_no_job_starts_when_the_budget_is_already_spent(worker_api, app_env, sql):
    app_env(JOB_WORKER_MAX_DURATION_SECONDS="10", JOB_WORKER_FINISH_MARGIN_SECONDS="5", JOB_WORKER_MIN_JOB_SECONDS="6")
    _enqueue_many(sql, 3)
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["processed"] == 0
    assert body["released"] == 3
    assert (
        sql.execute("select count(*) as n from job_queue where status = 'pending' and attempts = 0").fetchone()["n"]
        == 3
    )


# -- database outages ---------------------------------------------------------------


def test_database_refusing_connections_is_a_503(worker_api, app_env):
    app_env(DATABASE_URL="postgresql://postgres@127.0.0.1:9/postgres")
    started = time.monotonic()
    response = worker_api.request("POST", headers=runner_headers())
    assert response.status == 503
    assert response.json["error"] == "database_unavailable"
    assert time.monotonic() - started < 5


def test_database_that_never_answers_is_a_503_within_the_connect_timeout(worker_api, app_env):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts the TCP connection, never speaks PostgreSQL
    try:
        app_env(
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres",
            DB_CONNECT_TIMEOUT_SECONDS="1",
        )
        started = time.monotonic()
        response = worker_api.request("POST", headers=runner_headers())
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert response.status == 503
    assert response.json["error"] == "database_unavailable"
    assert elapsed < 4


def test_missing_database_url_is_a_clear_503(worker_api, app_env):
    app_env(DATABASE_URL=None)
    response = worker_api.request("POST", headers=runner_headers())
    assert response.status == 503
    assert response.json["error"] == "server_misconfigured"
    assert "DATABASE_URL" in response.json["message"]


def test_malformed_variable_is_named_and_never_crashes(worker_api, app_env, monkeypatch):
    monkeypatch.setenv("JOB_WORKER_MAX_DURATION_SECONDS", "five minutes")
    from lib.settings import reload_settings

    with pytest.raises(Exception, match="JOB_WORKER_MAX_DURATION_SECONDS"):
        reload_settings()
    response = worker_api.request("POST", headers=runner_headers())
    assert response.status == 503
    assert response.json["error"] == "server_misconfigured"
    assert "JOB_WORKER_MAX_DURATION_SECONDS" in response.json["message"]
    assert "five minutes" not in response.json["message"]


def test_slow_statement_is_cancelled_by_the_client_side_timeout(clean_db):
    from lib.db import connect
    from lib.errors import StatementTimeout
    from lib.settings import load_settings

    settings = load_settings({"DATABASE_URL": clean_db, "DB_STATEMENT_TIMEOUT_SECONDS": "0.5"})
    with connect(settings) as db:
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            db.execute("select pg_sleep(10)")
        assert time.monotonic() - started < 3
        assert db.fetchone("select 1 as one") == {"one": 1}  # the connection is still usable
