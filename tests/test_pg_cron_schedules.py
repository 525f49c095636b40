"""The Supabase scheduling migration on a real pg_cron.

The cluster comes from `PG_CRON_TEST_URL` (CI starts one with
`python -m scripts.pg_cron_cluster start DIR`), or else this module starts a
throwaway one itself when Debian's postgresql-15-cron is installed. Its
`cron.database_name` database is dropped and recreated, then every migration is
applied to it with scripts/migrate.py's code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.db import connect
from lib.queue import Queue
from lib.settings import load_settings
from scripts.migrate import apply_migrations
from scripts.pg_cron_cluster import reset_cron_database, start_cluster, unavailable_reason

ENV_VAR = "PG_CRON_TEST_URL"
SYNC_PAYLOAD = {"dryRun": False, "coachId": None, "forceFullSync": False, "forceFlashCtfSync": False}
SWEEP_PAYLOAD = {"dryRun": False, "coachId": None, "batchSize": 100, "forceAll": False}
ENQUEUE_JOBS = {
    "job-queue-game-platform-sync": ("game_platform_sync", SYNC_PAYLOAD),
    "job-queue-game-platform-totals-sweep": ("game_platform_totals_sweep", SWEEP_PAYLOAD),
}
PING_JOB = "job-queue-worker-ping"


@pytest.fixture(scope="module")
def cron_admin_url() -> Iterator[str]:
    url = os.environ.get(ENV_VAR, "").strip()
    if url:
        yield url
        return
    reason = unavailable_reason()
    if reason:
        pytest.skip(
            f"{ENV_VAR} is unset and no pg_cron cluster can be started here: {reason}. "
            f"Install postgresql-15 and postgresql-15-cron, or point {ENV_VAR} at the maintenance "
            "database of a cluster with shared_preload_libraries = 'pg_cron' (.ci/run does both)."
        )
    cluster = start_cluster(Path(tempfile.mkdtemp(prefix="jq-pgcron-")))
    try:
        yield cluster.admin_url
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def cron_db(cron_admin_url: str) -> str:
    """pg_cron's database, recreated empty and migrated."""
    conninfo = reset_cron_database(cron_admin_url)
    apply_migrations(conninfo)
    return conninfo


@pytest.fixture
def cron_sql(cron_db: str) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection to the cron database, with the queue emptied and processing on."""
    with psycopg.connect(cron_db, autocommit=True, row_factory=dict_row, prepare_threshold=None) as conn:
        conn.execute("truncate job_queue, job_queue_runs")
        conn.execute("select job_queue_set_processing(true)")
        yield conn


def scheduled(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rows = conn.execute("select jobname, schedule, command, database, active from cron.job").fetchall()
    return {r["jobname"]: r for r in rows}


def jobs_of(conn: psycopg.Connection[dict[str, Any]], task_type: str) -> list[dict[str, Any]]:
    return conn.execute("select id, payload, status from job_queue where task_type = %s", (task_type,)).fetchall()


def test_migrations_schedule_sync_sweep_and_cleanup_in_the_cron_database(cron_sql: psycopg.Connection) -> None:
    jobs = scheduled(cron_sql)
    assert {name: j["schedule"] for name, j in jobs.items()} == {
        "job-queue-game-platform-sync": "*/30 * * * *",
        "job-queue-game-platform-totals-sweep": "0 * * * *",
        "job-queue-cleanup": "17 3 * * *",
    }
    database = cron_sql.execute("select current_database() as db").fetchone()["db"]
    assert all(j["active"] and j["database"] == database for j in jobs.values())


@pytest.mark.parametrize("job_name", sorted(ENQUEUE_JOBS))
def test_each_scheduled_enqueue_adds_exactly_one_job_even_when_run_twice(
    cron_sql: psycopg.Connection, job_name: str
) -> None:
    task_type, payload = ENQUEUE_JOBS[job_name]
    command = scheduled(cron_sql)[job_name]["command"]
    first = cron_sql.execute(command).fetchone()
    second = cron_sql.execute(command).fetchone()
    assert (first["deduplicated"], second["deduplicated"]) == (False, True)
    assert first["job_id"] == second["job_id"]
    rows = jobs_of(cron_sql, task_type)
    assert [(r["payload"], r["status"]) for r in rows] == [(payload, "pending")]


@pytest.mark.parametrize("job_name", sorted(ENQUEUE_JOBS))
def test_scheduled_enqueue_dedupes_against_the_equal_manual_trigger(
    cron_sql: psycopg.Connection, cron_db: str, job_name: str
) -> None:
    task_type, payload = ENQUEUE_JOBS[job_name]
    with connect(load_settings({"DATABASE_URL": cron_db})) as db:
        manual = Queue(db).enqueue_unique(task_type, payload)
    row = cron_sql.execute(scheduled(cron_sql)[job_name]["command"]).fetchone()
    assert row["deduplicated"] is True
    assert row["job_id"] == manual.job_id
    assert len(jobs_of(cron_sql, task_type)) == 1


def test_a_paused_queue_never_piles_up_scheduled_copies(cron_sql: psycopg.Connection) -> None:
    cron_sql.execute("select job_queue_set_processing(false, 'maintenance')")
    jobs = scheduled(cron_sql)
    for _ in range(4):
        for job_name in ENQUEUE_JOBS:
            cron_sql.execute(jobs[job_name]["command"])
    counts = cron_sql.execute("select task_type, count(*) as n from job_queue group by task_type").fetchall()
    assert {r["task_type"]: r["n"] for r in counts} == {"game_platform_sync": 1, "game_platform_totals_sweep": 1}


def test_a_new_scheduled_job_is_enqueued_once_the_previous_one_finished(cron_sql: psycopg.Connection) -> None:
    command = scheduled(cron_sql)["job-queue-game-platform-sync"]["command"]
    first = cron_sql.execute(command).fetchone()["job_id"]
    claimed = cron_sql.execute("select id, lease_token from job_queue_claim(1)").fetchone()
    assert claimed["id"] == first
    cron_sql.execute("select job_queue_mark_succeeded(%s, null, %s)", (claimed["id"], claimed["lease_token"]))
    second = cron_sql.execute(command).fetchone()
    assert second["deduplicated"] is False
    assert second["job_id"] != first


def test_cleanup_command_removes_old_finished_jobs_and_enqueues_nothing(cron_sql: psycopg.Connection) -> None:
    cron_sql.execute(
        "insert into job_queue (task_type, status, completed_at) values"
        " ('old', 'succeeded', now() - interval '31 days'), ('recent', 'failed', now() - interval '1 day')"
    )
    command = scheduled(cron_sql)["job-queue-cleanup"]["command"]
    assert cron_sql.execute(command).fetchone()["job_queue_cleanup"] == 1
    assert cron_sql.execute(command).fetchone()["job_queue_cleanup"] == 0
    remaining = cron_sql.execute("select task_type from job_queue").fetchall()
    assert [r["task_type"] for r in remaining] == ["recent"]


def test_installing_again_replaces_each_schedule_by_name(cron_sql: psycopg.Connection) -> None:
    before = scheduled(cron_sql)
    jobid = cron_sql.execute("select jobid from cron.job where jobname = 'job-queue-game-platform-sync'").fetchone()[
        "jobid"
    ]
    cron_sql.execute("select cron.alter_job(%s, schedule := '1 1 1 1 *')", (jobid,))
    rows = cron_sql.execute("select * from job_queue_install_schedules()").fetchall()
    assert {r["job_name"] for r in rows if r["scheduled"]} == set(before)
    after = scheduled(cron_sql)
    assert {n: (j["schedule"], j["command"]) for n, j in after.items()} == {
        n: (j["schedule"], j["command"]) for n, j in before.items()
    }


def test_worker_ping_posts_to_the_vault_endpoint_with_the_runner_secret(cron_sql: psycopg.Connection) -> None:
    """pg_net and Vault are Supabase's, not Debian's: stand-ins with their signatures record the call."""
    assert PING_JOB not in scheduled(cron_sql)
    cron_sql.execute(
        """
        create schema net;
        create table net.posted (url text, body jsonb, headers jsonb, timeout_milliseconds int);
        create function net.http_post(url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
            headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
            timeout_milliseconds int default 2000) returns bigint language sql as $$
            insert into net.posted values (url, body, headers, timeout_milliseconds) returning 1::bigint $$;
        create schema vault;
        create table vault.decrypted_secrets (name text primary key, decrypted_secret text);
        """
    )
    try:
        cron_sql.execute("select * from job_queue_install_schedules()")
        ping = scheduled(cron_sql)[PING_JOB]
        assert ping["schedule"] == "*/5 * * * *"

        cron_sql.execute(ping["command"])
        assert cron_sql.execute("select count(*) as n from net.posted").fetchone()["n"] == 0, (
            "without both Vault secrets the ping must send nothing"
        )

        cron_sql.execute(
            "insert into vault.decrypted_secrets values"
            " ('job_queue_worker_endpoint', 'https://app.example.com/api/jobs/run'),"
            " ('job_queue_runner_secret', 's3cret-from-vault')"
        )
        cron_sql.execute(ping["command"])
        posted = cron_sql.execute("select * from net.posted").fetchall()
        assert len(posted) == 1
        assert posted[0]["url"] == "https://app.example.com/api/jobs/run"
        assert posted[0]["headers"]["x-job-runner-secret"] == "s3cret-from-vault"
        assert posted[0]["body"] == {}
    finally:
        cron_sql.execute("select cron.unschedule(%s)", (PING_JOB,))
        cron_sql.execute("drop schema net cascade; drop schema vault cascade")


def test_a_database_other_than_cron_database_name_gets_a_notice_and_no_schedules(cron_admin_url: str) -> None:
    from scripts.local_pg import create_database, drop_database

    other = create_database(cron_admin_url, prefix="jq_nocron")
    try:
        apply_migrations(other)
        notices: list[str] = []
        with psycopg.connect(other, autocommit=True, prepare_threshold=None) as conn:
            conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            assert conn.execute("select * from job_queue_install_schedules()").fetchall() == []
            assert conn.execute("select to_regclass('cron.job')").fetchone() == (None,)
        assert any("pg_cron is not installed" in n for n in notices), notices
    finally:
        drop_database(cron_admin_url, other)
