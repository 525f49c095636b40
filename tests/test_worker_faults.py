"""Regressions of issue 10's worker and database defects, each through a real server and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from lib.db import close_kept_connections, connect
from lib.jobs.context import JobContext
from lib.jobs.registry import TaskRegistry, TaskSpec
from lib.settings import load_settings
from lib.worker import Worker
from scripts.local_pg import create_database, drop_database
from tests.support.fake_sentry import FakeSentry
from tests.support.jobs import JobFactory
from tests.support.pg_proxy import pg_proxy
from tests.support.secrets import runner_headers
from tests.support.tasks import UNSTORABLE_OUTPUTS, recorder

ROOT = Path(__file__).resolve().parents[1]


def _enqueue(sql: psycopg.Connection, task_type: str, payload: str = "{}", seconds_ago: int = 0) -> str:
    return str(
        sql.execute(
            "select job_queue_enqueue(%s, %s::jsonb, now() - make_interval(secs => %s), 5) as id",
            (task_type, payload, seconds_ago),
        ).fetchone()["id"]
    )


@pytest.fixture
def no_kept_connections() -> Iterator[None]:
    close_kept_connections()
    yield
    close_kept_connections()


# -- 1. an unstorable output fails its job alone ------------------------------------------


def test_an_unstorable_output_fails_its_job_alone_and_the_others_succeed(worker_api, sql):
    good = [_enqueue(sql, "test_noop", seconds_ago=20 - i) for i in range(2)]
    bad = {
        kind: _enqueue(sql, "test_output", json.dumps({"kind": kind}), seconds_ago=10 - i)
        for i, kind in enumerate(sorted(UNSTORABLE_OUTPUTS))
    }
    good.append(_enqueue(sql, "test_noop"))
    body = worker_api.request("POST", body={"limit": 10}, headers=runner_headers()).json
    assert body["processed"] == 9
    assert body["succeeded"] == 3
    results = {r["id"]: r for r in body["results"]}
    for job_id in good:
        assert results[job_id]["status"] == "succeeded"
    for kind, job_id in bad.items():
        assert results[job_id]["status"] == "failed", kind  # for good: the same code returns the same value
        assert results[job_id]["lastError"].startswith("output is not storable as JSON: "), kind
    rows = sql.execute("select id::text, status, attempts, output from job_queue").fetchall()
    assert {r["id"]: r["status"] for r in rows} == {
        **{j: "succeeded" for j in good},
        **{j: "failed" for j in bad.values()},
    }
    assert all(r["output"] is None for r in rows if r["id"] in bad.values())
    assert results[bad["nan"]]["lastError"] == (
        "output is not storable as JSON: $.score is nan (JSON has no NaN or Infinity)"
    )
    assert "$.name holds the NUL character" in results[bad["nul_in_string"]]["lastError"]
    assert "$.ids is a set" in results[bad["set"]]["lastError"]


# -- 5. a lost reply to the first statement is not re-sent blindly ---------------------------


def test_a_lost_reply_to_begin_invocation_strands_no_job(
    app_env, test_tasks, serve, sql, clean_db, no_kept_connections
):
    with pg_proxy(clean_db) as proxy:
        app_env(DATABASE_URL=proxy.conninfo)
        worker = serve("api/jobs/run.py")
        assert worker.request("POST", headers=runner_headers()).json["processed"] == 0  # keeps its connection
        jobs = [_enqueue(sql, "test_noop", seconds_ago=10 - i) for i in range(8)]
        proxy.drop_next_reply()  # begin_invocation runs on the server; its reply never arrives
        body = worker.request("POST", body={"limit": 5}, headers=runner_headers()).json
        assert proxy.replies_dropped == 1
    assert body["processed"] == 5
    assert body["succeeded"] == 5
    assert {r["id"] for r in body["results"]} == set(jobs[:5])  # the jobs the lost reply had claimed
    rows = sql.execute("select status, attempts, count(*) as n from job_queue group by 1, 2 order by 1").fetchall()
    assert rows == [{"status": "pending", "attempts": 0, "n": 3}, {"status": "succeeded", "attempts": 1, "n": 5}]
    runs = sql.execute("select status, claimed, succeeded from job_queue_invocations order by id").fetchall()
    assert runs[-1] == {"status": "completed", "claimed": 5, "succeeded": 5}
    assert len(runs) == 2  # one run per invocation: the repeat did not record another
    assert set(recorder.runs.values()) == {1}


def test_a_repeated_begin_invocation_of_a_paused_queue_answers_paused(queue, sql):
    import uuid
    from datetime import timedelta

    sql.execute("select job_queue_set_processing(false, 'maintenance')")
    _enqueue(sql, "t")
    invocation = uuid.uuid4()
    first = queue.begin_invocation("test", 5, False, timedelta(minutes=5), invocation)
    again = queue.begin_invocation("test", 5, False, timedelta(minutes=5), invocation)
    assert first == again
    assert first[0].processing_enabled is False
    assert first[1] == []
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 1


def test_a_repeated_begin_invocation_leaves_out_a_job_cancelled_meanwhile(queue, sql):
    import uuid
    from datetime import timedelta

    ids = [_enqueue(sql, "t", seconds_ago=3 - i) for i in range(3)]
    invocation = uuid.uuid4()
    run, claimed = queue.begin_invocation("test", 5, False, timedelta(minutes=5), invocation)
    assert [str(j.id) for j in claimed] == ids
    queue.cancel(claimed[1].id)
    again_run, again = queue.begin_invocation("test", 5, False, timedelta(minutes=5), invocation)
    assert again_run == run
    assert [j.id for j in again] == [claimed[0].id, claimed[2].id]
    assert [j.lease_token for j in again] == [claimed[0].lease_token, claimed[2].lease_token]


# -- 6. a malformed DATABASE_URL, an unmigrated database ---------------------------------------

MALFORMED_URLS = {
    "ipv6_unclosed": "postgresql://postgres:hunter2pw@[::1/db",
    "bare_word": "hunter2pw",
    "port_not_a_number": "postgresql://postgres:hunter2pw@127.0.0.1:54x2/postgres",
    "port_out_of_range": "postgresql://postgres:hunter2pw@127.0.0.1:99999/postgres",
    "bad_option_value": "postgresql://postgres:hunter2pw@127.0.0.1:5432/postgres?sslmode=hunter2pw",
}


@pytest.mark.parametrize("url", MALFORMED_URLS.values(), ids=MALFORMED_URLS.keys())
def test_a_malformed_database_url_is_a_503_naming_the_variable_never_its_value(
    url, app_env, worker_api, capsys, no_kept_connections
):
    sentry = FakeSentry()
    try:
        app_env(DATABASE_URL=url, SENTRY_DSN=sentry.dsn)
        capsys.readouterr()
        response = worker_api.request("POST", headers=runner_headers())
        logs = capsys.readouterr()
    finally:
        sentry.close()
        app_env(SENTRY_DSN=None)
        from lib.observability import init_sentry
        from lib.settings import get_settings

        init_sentry(get_settings())
    assert response.status == 503
    assert response.json["error"] == "server_misconfigured"
    assert "DATABASE_URL" in response.json["message"]
    assert "hunter2pw" not in response.raw.decode()
    assert "hunter2pw" not in logs.out + logs.err
    assert "hunter2pw" not in json.dumps(sentry.events)


def test_a_database_outage_reported_to_sentry_carries_no_password(app_env, worker_api, no_kept_connections):
    sentry = FakeSentry()
    try:
        app_env(DATABASE_URL="postgresql://postgres:hunter2pw@127.0.0.1:9/postgres", SENTRY_DSN=sentry.dsn)
        response = worker_api.request("POST", headers=runner_headers())
    finally:
        sentry.close()
        app_env(SENTRY_DSN=None)
        from lib.observability import init_sentry
        from lib.settings import get_settings

        init_sentry(get_settings())
    assert response.status == 503
    assert response.json["error"] == "database_unavailable"
    assert sentry.events  # an outage is reported...
    assert "hunter2pw" not in json.dumps(sentry.events)  # ...without the connection string's password


def _cli(env_url: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": env_url}
    return subprocess.run(
        [sys.executable, "scripts/jobs.py", "status"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("url", [MALFORMED_URLS["ipv6_unclosed"], MALFORMED_URLS["bare_word"]])
def test_the_cli_exits_5_on_a_malformed_database_url_without_showing_it(url):
    done = _cli(url)
    assert done.returncode == 5, done.stderr
    assert "DATABASE_URL is malformed" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2pw" not in done.stdout + done.stderr


@pytest.fixture
def unmigrated_url(admin_conninfo: str) -> Iterator[str]:
    url = create_database(admin_conninfo, prefix="jq_unmigrated")
    try:
        yield url
    finally:
        drop_database(admin_conninfo, url)


def test_an_unmigrated_database_is_a_503_saying_so(app_env, worker_api, unmigrated_url, no_kept_connections):
    app_env(DATABASE_URL=unmigrated_url)
    response = worker_api.request("POST", headers=runner_headers())
    assert response.status == 503
    assert response.json["error"] == "database_not_migrated"
    assert "migrat" in response.json["message"]


def test_the_cli_exits_5_on_an_unmigrated_database(unmigrated_url):
    done = _cli(unmigrated_url)
    assert done.returncode == 5, done.stderr
    assert "apply supabase/migrations" in done.stderr
    assert "Traceback" not in done.stderr


# -- 8. a worker whose lease was taken over reports its own attempt ---------------------------


def test_a_worker_whose_lease_was_taken_over_does_not_report_the_other_success(app_env, test_tasks, serve, sql):
    short = {
        "JOB_WORKER_MAX_DURATION_SECONDS": "1",
        "JOB_WORKER_FINISH_MARGIN_SECONDS": "0",
        "JOB_WORKER_MIN_JOB_SECONDS": "0",
        "JOB_WORKER_LEASE_MARGIN_SECONDS": "0",
    }
    app_env(**short)
    worker = serve("api/jobs/run.py")
    job_id = _enqueue(sql, "test_sleep", '{"seconds": 2.5}')
    first: dict[str, object] = {}
    slow = threading.Thread(target=lambda: first.update(worker.request("POST", headers=runner_headers()).json))
    slow.start()
    _wait_until(lambda: sql.execute("select lease_expires_at < now() as x from job_queue").fetchone()["x"])
    JobFactory(sql).stage(None, payload={"seconds": 0})  # the second attempt is quick
    second = worker.request("POST", headers=runner_headers()).json
    slow.join(30)
    assert second["results"][0]["status"] == "succeeded"
    [mine] = first["results"]  # type: ignore[index]
    assert mine["id"] == job_id
    assert mine["status"] == "failed"  # this attempt's outcome: not recorded
    assert mine["leaseLost"] is True
    assert mine["jobStatus"] == "succeeded"  # what the job's row says, thanks to the other worker
    assert mine["attempts"] == 1
    assert mine["lastError"].startswith("lease lost: its lease expired and the job was taken over")
    assert first["succeeded"] == 0
    row = sql.execute("select status, attempts, output from job_queue").fetchone()
    assert row == {"status": "succeeded", "attempts": 2, "output": {"slept": 0.0}}


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


# -- 11. held successes: flushed before a long job, and after a lost connection ---------------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_held_successes_are_written_before_a_job_that_is_not_quick(db, clean_db, sql):
    seen: list[str] = []

    def long(ctx: JobContext, payload: _Payload) -> None:
        seen.extend(r["status"] for r in sql.execute("select status from job_queue where task_type = 'quick'"))

    registry = TaskRegistry()
    registry.register(TaskSpec("quick", _Payload, lambda ctx, payload: {"ok": True}, quick=True))
    registry.register(TaskSpec("long", _Payload, long))
    for i in range(3):
        _enqueue(sql, "quick", seconds_ago=10 - i)
    _enqueue(sql, "long")
    report = Worker(db, load_settings({"DATABASE_URL": clean_db}), registry=registry).drain(
        limit=10, force=False, trigger_source="test"
    )
    assert report.succeeded == 4
    assert seen == ["succeeded"] * 3  # already written when the long job began


def test_held_successes_survive_the_loss_of_the_connection_mid_job(clean_db, direct_database_url, sql):
    # Direct: the test terminates the worker's own backend, which needs one connection = one backend.
    settings = load_settings({"DATABASE_URL": direct_database_url})
    runs: list[str] = []

    def cut_my_connection(ctx: JobContext, payload: _Payload) -> dict[str, bool]:
        runs.append(str(ctx.job_id))
        pid = ctx.db.fetchone("select pg_backend_pid() as pid")["pid"]  # type: ignore[index]
        with psycopg.connect(direct_database_url, autocommit=True, row_factory=dict_row) as other:
            other.execute("select pg_terminate_backend(%s)", (pid,))
            while other.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
                time.sleep(0.01)
        return {"ok": True}

    def quick(ctx: JobContext, payload: _Payload) -> dict[str, bool]:
        runs.append(str(ctx.job_id))
        return {"ok": True}

    registry = TaskRegistry()
    registry.register(TaskSpec("quick", _Payload, quick, quick=True))
    registry.register(TaskSpec("cut", _Payload, cut_my_connection, quick=True))
    ids = [_enqueue(sql, "quick", seconds_ago=10 - i) for i in range(3)]
    ids.append(_enqueue(sql, "cut", seconds_ago=5))
    ids += [_enqueue(sql, "quick", seconds_ago=3 - i) for i in range(3)]
    close_kept_connections()
    with connect(settings) as db:
        report = Worker(db, settings, registry=registry).drain(limit=10, force=False, trigger_source="test")
        assert db.reconnects == 1
    close_kept_connections()
    assert report.succeeded == 7
    assert sorted(runs) == sorted(ids)  # each ran once
    statuses = sql.execute("select status, count(*) as n from job_queue group by 1").fetchall()
    assert statuses == [{"status": "succeeded", "n": 7}]
    run = sql.execute("select status, succeeded from job_queue_invocations").fetchone()
    assert run == {"status": "completed", "succeeded": 7}
