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

from scripts.migrate import apply_migrations, discover
from scripts.pg_cron_cluster import reset_cron_database, start_cluster, unavailable_reason

ENV_VAR = "PG_CRON_TEST_URL"
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
        conn.execute("truncate job_queue, job_queue_invocations")
        conn.execute("select job_queue_set_processing(true)")
        yield conn


def scheduled(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    rows = conn.execute("select jobname, schedule, command, database, active from cron.job").fetchall()
    return {r["jobname"]: r for r in rows}


def jobs_of(conn: psycopg.Connection[dict[str, Any]], task_type: str) -> list[dict[str, Any]]:
    return conn.execute("select id, payload, status from job_queue where task_type = %s", (task_type,)).fetchall()


def test_pg_cron_gets_no_job_of_its_own_without_pg_net(cron_sql: psycopg.Connection) -> None:
    """The schedules live in the queue (job_queue_schedules); pg_cron's only job would be the worker ping."""
    assert scheduled(cron_sql) == {}
    definitions = cron_sql.execute("select job_name, needs_pg_net from job_queue_schedule_definitions()").fetchall()
    assert definitions == [{"job_name": PING_JOB, "needs_pg_net": True}]
    names = {r["name"] for r in cron_sql.execute("select name from job_queue_schedules").fetchall()}
    assert names == {"game_platform_sync", "game_platform_totals_sweep", "job_queue_cleanup"}


def test_the_schedules_migration_removes_the_jobs_the_old_pg_cron_migration_installed(
    cron_sql: psycopg.Connection,
) -> None:
    """A database migrated when pg_cron still enqueued the jobs: applying the schedules migration unschedules them."""
    legacy = {
        "job-queue-game-platform-sync": "*/30 * * * *",
        "job-queue-game-platform-totals-sweep": "0 * * * *",
        "job-queue-cleanup": "17 3 * * *",
    }
    for name, schedule in legacy.items():
        cron_sql.execute("select cron.schedule(%s, %s, 'select 1')", (name, schedule))
    cron_sql.execute("select cron.schedule('someone-elses-job', '0 0 * * *', 'select 1')")
    migration = next(m for m in discover() if m.name == "job_queue_schedules")
    try:
        cron_sql.execute(migration.sql.encode())
        assert set(scheduled(cron_sql)) == {"someone-elses-job"}
    finally:
        cron_sql.execute("select cron.unschedule('someone-elses-job')")


@pytest.fixture
def pg_net(cron_sql: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """pg_net and Vault are Supabase's, not Debian's: stand-ins with their signatures record the calls."""
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
        yield cron_sql
    finally:
        if PING_JOB in scheduled(cron_sql):
            cron_sql.execute("select cron.unschedule(%s)", (PING_JOB,))
        cron_sql.execute("drop schema net cascade; drop schema vault cascade")


def test_installing_again_replaces_the_ping_by_name(pg_net: psycopg.Connection) -> None:
    pg_net.execute("select * from job_queue_install_schedules()")
    before = scheduled(pg_net)
    assert set(before) == {PING_JOB}
    jobid = pg_net.execute("select jobid from cron.job where jobname = %s", (PING_JOB,)).fetchone()["jobid"]
    pg_net.execute("select cron.alter_job(%s, schedule := '1 1 1 1 *')", (jobid,))
    rows = pg_net.execute("select * from job_queue_install_schedules()").fetchall()
    assert [(r["job_name"], r["scheduled"]) for r in rows] == [(PING_JOB, True)]
    after = scheduled(pg_net)
    assert {n: (j["schedule"], j["command"]) for n, j in after.items()} == {
        n: (j["schedule"], j["command"]) for n, j in before.items()
    }


def test_worker_ping_posts_to_the_vault_endpoint_with_the_runner_secret(pg_net: psycopg.Connection) -> None:
    assert PING_JOB not in scheduled(pg_net)
    pg_net.execute("select * from job_queue_install_schedules()")
    ping = scheduled(pg_net)[PING_JOB]
    assert ping["schedule"] == "*/5 * * * *"

    pg_net.execute(ping["command"])
    assert pg_net.execute("select count(*) as n from net.posted").fetchone()["n"] == 0, (
        "without both Vault secrets the ping must send nothing"
    )

    pg_net.execute(
        "insert into vault.decrypted_secrets values"
        " ('job_queue_worker_endpoint', 'https://app.example.com/api/jobs/run'),"
        " ('job_queue_runner_secret', 's3cret-from-vault')"
    )
    pg_net.execute(ping["command"])
    posted = pg_net.execute("select * from net.posted").fetchall()
    assert len(posted) == 1
    assert posted[0]["url"] == "https://app.example.com/api/jobs/run"
    assert posted[0]["headers"]["x-job-runner-secret"] == "s3cret-from-vault"
    assert posted[0]["body"] == {}


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
