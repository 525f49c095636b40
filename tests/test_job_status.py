"""The job statuses are listed once (lib.job_status); the migrated table's check constraint agrees."""

from __future__ import annotations

import re

import psycopg

from lib.job_status import JobStatus


def test_the_enum_is_the_check_constraint_of_job_queue_status(sql: psycopg.Connection) -> None:
    rows = sql.execute(
        "select pg_get_constraintdef(c.oid) as definition from pg_constraint c"
        " where c.conrelid = 'public.job_queue'::regclass and c.contype = 'c'"
        " and pg_get_constraintdef(c.oid) like '%%status%%'"
    ).fetchall()
    assert len(rows) == 1, rows
    allowed = re.findall(r"'([a-z_]+)'::text", rows[0]["definition"])
    assert allowed == [status.value for status in JobStatus]
