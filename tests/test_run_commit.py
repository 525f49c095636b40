"""The run's bookkeeping commits asynchronously, for its own transaction only (pooler-safe)."""

from __future__ import annotations

import psycopg


def _setting(conn: psycopg.Connection) -> str:
    return conn.execute("select current_setting('synchronous_commit') as v").fetchone()["v"]


def test_begin_and_complete_invocation_commit_asynchronously_and_leave_the_session_as_it_was(sql):
    assert _setting(sql) == "on"
    with sql.transaction():
        run_id = sql.execute("select invocation_id from job_queue_begin_invocation('test', 10)").fetchone()[
            "invocation_id"
        ]
        assert _setting(sql) == "off"  # this transaction's commit does not wait for the WAL flush
    assert _setting(sql) == "on"  # and nothing leaks into the session (or a pooled connection's next client)
    with sql.transaction():
        sql.execute("select * from job_queue_complete_invocation(%s, 'completed', 0, 0, 0, 0, 0)", (run_id,))
        assert _setting(sql) == "off"
    assert _setting(sql) == "on"
    assert (
        sql.execute("select status from job_queue_invocations where id = %s", (run_id,)).fetchone()["status"]
        == "completed"
    )


def test_failures_and_enqueues_still_commit_durably(sql):
    with sql.transaction():
        job_id = sql.execute("select job_queue_enqueue('test_noop', '{}'::jsonb, now(), 1) as id").fetchone()["id"]
        sql.execute("select * from job_queue_claim(1)")
        sql.execute("select * from job_queue_mark_failed(%s, 'boom')", (job_id,))
        assert _setting(sql) == "on"
