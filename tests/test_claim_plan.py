"""The claim stays cheap as history piles up: it reads the partial indexes, never the heap of finished jobs."""

from __future__ import annotations

import json

import pytest

FINISHED_ROWS = 30_000


@pytest.fixture
def big_history(sql):
    sql.execute(
        "insert into job_queue (task_type, status, attempts, completed_at, run_at)"
        " select 't', (array['succeeded', 'failed', 'cancelled'])[1 + g %% 3], 1,"
        "        now() - interval '1 day', now() - interval '2 days'"
        "   from generate_series(1, %s) g",
        (FINISHED_ROWS,),
    )
    sql.execute(
        "insert into job_queue (task_type, run_at) select 't', now() + interval '1 day' from generate_series(1, 5000)"
    )
    sql.execute(
        "insert into job_queue (task_type, run_at) select 't', now() - interval '1 minute' from generate_series(1, 20)"
    )
    sql.execute("vacuum analyze job_queue")


def _plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes.extend(_plan_nodes(child))
    return nodes


def test_due_job_selection_uses_the_pending_partial_index(big_history, sql):
    # The same selection job_queue_claim makes for due pending jobs.
    [[plan]] = (
        sql.execute(
            "explain (format json) select s.id from job_queue s"
            " where s.status = 'pending' and s.run_at <= now() order by s.run_at limit 10 for update skip locked"
        )
        .fetchone()
        .values()
    )
    nodes = _plan_nodes(plan["Plan"])
    scans = [n for n in nodes if "Scan" in n["Node Type"]]
    assert [n.get("Index Name") for n in scans] == ["job_queue_pending_run_at_idx"], json.dumps(plan, indent=1)


def test_expired_lease_selection_uses_the_processing_partial_index(big_history, sql):
    [[plan]] = (
        sql.execute(
            "explain (format json) select s.id from job_queue s"
            " where s.status = 'processing' and s.lease_expires_at <= now() and s.attempts < s.max_attempts"
            " order by s.lease_expires_at limit 10 for update skip locked"
        )
        .fetchone()
        .values()
    )
    scans = [n for n in _plan_nodes(plan["Plan"]) if "Scan" in n["Node Type"]]
    assert [n.get("Index Name") for n in scans] == ["job_queue_processing_lease_idx"]


def test_claim_function_reads_indexes_not_the_whole_table(big_history, sql):
    """Checked on the real function through the statistics collector."""

    def counters():
        sql.execute("select pg_stat_force_next_flush()")
        sql.execute("select pg_stat_clear_snapshot()")
        table = sql.execute(
            "select seq_scan, seq_tup_read from pg_stat_user_tables where relname = 'job_queue'"
        ).fetchone()
        index = sql.execute(
            "select idx_scan, idx_tup_read from pg_stat_user_indexes"
            " where indexrelname = 'job_queue_pending_run_at_idx'"
        ).fetchone()
        return table, index

    table_before, index_before = counters()
    claimed = sql.execute("select id from job_queue_claim(10)").fetchall()
    sql.execute("select 1")  # the claim's statistics are flushed at the end of its transaction
    table_after, index_after = counters()

    assert len(claimed) == 10
    assert table_after["seq_scan"] == table_before["seq_scan"]
    assert index_after["idx_scan"] > index_before["idx_scan"]
    # Only the due entries (and not the 30,000 finished or 5,000 future rows) were read.
    assert index_after["idx_tup_read"] - index_before["idx_tup_read"] <= 25
