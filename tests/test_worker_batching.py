"""Successes are written together; fencing, the hold window and the round-trip budget still hold."""

from __future__ import annotations

import time

import psycopg
from pydantic import BaseModel, ConfigDict

from lib.jobs.context import JobContext
from lib.jobs.registry import TaskRegistry, TaskSpec
from lib.settings import load_settings
from lib.worker import SUCCESS_HOLD_SECONDS, Worker


class Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


def _worker(db, clean_db, *specs: TaskSpec) -> Worker:
    registry = TaskRegistry()
    registry.register(TaskSpec("noop", Payload, lambda ctx, payload: {"ok": True}, quick=True))
    for spec in specs:
        registry.register(spec)
    return Worker(db, load_settings({"DATABASE_URL": clean_db}), registry=registry)


def _enqueue(sql, task_type, minutes_ago):
    return sql.execute(
        "select job_queue_enqueue(%s, '{}'::jsonb, now() - make_interval(mins => %s), 3) as id",
        (task_type, minutes_ago),
    ).fetchone()["id"]


def test_an_invocation_sends_two_statements_whatever_the_number_of_successes(db, clean_db, sql):
    worker = _worker(db, clean_db)
    for i in range(10):
        _enqueue(sql, "noop", 10 - i)
    before = db.statements
    report = worker.drain(limit=10, force=False, trigger_source="test")
    assert report.succeeded == 10
    assert db.statements - before == 2  # begin (run start + claim), complete (successes + run finish)
    assert sql.execute("select count(*) as n from job_queue where status = 'succeeded'").fetchone()["n"] == 10


def test_an_empty_queue_costs_two_statements(db, clean_db, sql):
    worker = _worker(db, clean_db)
    before = db.statements
    worker.drain(limit=10, force=False, trigger_source="test")
    assert db.statements - before == 2
    run = sql.execute("select status, claimed, processed from job_queue_invocations").fetchone()
    assert run == {"status": "completed", "claimed": 0, "processed": 0}


def test_a_paused_queue_costs_one_statement_and_records_the_run(db, clean_db, sql):
    worker = _worker(db, clean_db)
    _enqueue(sql, "noop", 1)
    sql.execute("select job_queue_set_processing(false, 'upgrade')")
    before = db.statements
    report = worker.drain(limit=10, force=False, trigger_source="test")
    assert report.status == "paused"
    assert db.statements - before == 1
    run = sql.execute("select status, finished_at is not null as closed from job_queue_invocations").fetchone()
    assert run == {"status": "paused", "closed": True}


def test_failures_are_recorded_one_by_one_and_results_keep_their_order(db, clean_db, sql):
    def boom(ctx, payload):
        raise RuntimeError("no")

    worker = _worker(db, clean_db, TaskSpec("boom", Payload, boom, quick=True))
    ids = [_enqueue(sql, "noop", 3), _enqueue(sql, "boom", 2), _enqueue(sql, "noop", 1)]
    before = db.statements
    report = worker.drain(limit=10, force=False, trigger_source="test")
    assert [r.id for r in report.results] == [str(i) for i in ids]
    assert [r.status for r in report.results] == ["succeeded", "pending", "succeeded"]
    assert db.statements - before == 3  # begin, the failure, complete with both successes
    run = sql.execute("select succeeded, failed, processed from job_queue_invocations").fetchone()
    assert run == {"succeeded": 2, "failed": 1, "processed": 3}


def test_a_held_success_of_a_job_cancelled_meanwhile_is_not_recorded(db, clean_db, sql):
    first = _enqueue(sql, "noop", 2)

    def cancel_the_first(ctx: JobContext, payload):
        with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as other:
            other.execute("select job_queue_cancel(%s)", (first,))

    worker = _worker(db, clean_db, TaskSpec("cancel_first", Payload, cancel_the_first, quick=True))
    second = _enqueue(sql, "cancel_first", 1)
    report = worker.drain(limit=10, force=False, trigger_source="test")
    statuses = {r.id: (r.status, r.job_status) for r in report.results}
    # The first attempt's success was not recorded: failed for this attempt, the job itself cancelled.
    assert statuses == {str(first): ("failed", "cancelled"), str(second): ("succeeded", None)}
    row = sql.execute("select status, output from job_queue where id = %s", (first,)).fetchone()
    assert row == {"status": "cancelled", "output": None}
    assert report.succeeded == 1
    assert sql.execute("select succeeded from job_queue_invocations").fetchone()["succeeded"] == 1


def test_successes_are_written_once_the_hold_window_passes(db, clean_db, sql):
    seen: dict[str, str] = {}
    quick = _enqueue(sql, "noop", 3)

    def slow(ctx, payload):
        time.sleep(SUCCESS_HOLD_SECONDS + 0.2)

    def look(ctx, payload):
        seen["quick"] = sql.execute("select status from job_queue where id = %s", (quick,)).fetchone()["status"]

    # Both quick: the hold window alone must write the first success.
    worker = _worker(
        db, clean_db, TaskSpec("slow", Payload, slow, quick=True), TaskSpec("look", Payload, look, quick=True)
    )
    _enqueue(sql, "slow", 2)
    _enqueue(sql, "look", 1)
    worker.drain(limit=10, force=False, trigger_source="test")
    # By the time the third job ran, the first success had waited past the window and was written.
    assert seen == {"quick": "succeeded"}


def test_payloads_are_decoded_only_when_a_handler_runs(db, clean_db, sql):
    decoded = []

    def record(ctx, payload):
        decoded.append(payload.model_dump())

    worker = _worker(db, clean_db, TaskSpec("record", Payload, record, quick=True))
    sql.execute('select job_queue_enqueue(\'record\', \'{"n": 1, "nested": {"a": [1, 2]}}\'::jsonb, now(), 3)')
    worker.drain(limit=10, force=False, trigger_source="test")
    assert decoded == [{"n": 1, "nested": {"a": [1, 2]}}]
