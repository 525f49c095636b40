"""Schedules inside the queue: cron evaluation in SQL, and every worker invocation enqueueing what is due."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from lib.db import connect
from lib.game_platform.payloads import SweepRequest, SyncRequest
from lib.job_status import JobStatus
from lib.jobs.job_queue_cleanup import CleanupPayload
from lib.jobs.registry import default_registry, stored_payload
from lib.queue import Queue
from lib.settings import RETENTION_DAYS, load_settings
from lib.worker import Worker
from scripts.local_pg import fresh_database
from tests.support.jobs import JobFactory

LEASE = timedelta(minutes=15)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron_next(sql: psycopg.Connection, cron: str, after: datetime) -> datetime:
    # In UTC: a session zone's ambiguous hour (fold=1) never compares equal across zones.
    return sql.execute("select job_queue_cron_next(%s, %s) as t", (cron, after)).fetchone()["t"].astimezone(UTC)


# -- cron evaluation ----------------------------------------------------------------

NEXT_SLOTS = [
    # every 30 minutes: strictly after, seconds ignored
    ("*/30 * * * *", "2026-12-01 10:00:00", "2026-12-01 10:30:00"),
    ("*/30 * * * *", "2026-12-01 10:29:59", "2026-12-01 10:30:00"),
    ("*/30 * * * *", "2026-12-01 10:30:00.5", "2026-12-01 11:00:00"),
    ("*/30 * * * *", "2026-12-31 23:45:00", "2027-01-01 00:00:00"),
    # hourly
    ("0 * * * *", "2026-12-01 10:00:00", "2026-12-01 11:00:00"),
    ("0 * * * *", "2026-12-01 23:59:00", "2026-12-02 00:00:00"),
    # daily
    ("17 3 * * *", "2026-12-01 03:16:59", "2026-12-01 03:17:00"),
    ("17 3 * * *", "2026-12-01 03:17:00", "2026-12-02 03:17:00"),
    ("0 0 * * *", "2026-02-28 12:00:00", "2026-03-01 00:00:00"),  # not a leap year
    ("0 0 * * *", "2028-02-28 12:00:00", "2028-02-29 00:00:00"),  # a leap year
    # ranges, lists, steps over ranges, single values with steps
    ("5,10,50 * * * *", "2026-12-01 10:10:00", "2026-12-01 10:50:00"),
    ("0 9-17 * * *", "2026-12-01 17:30:00", "2026-12-02 09:00:00"),
    ("0-30/15 8 * * *", "2026-12-01 08:20:00", "2026-12-01 08:30:00"),
    ("0-30/15 8 * * *", "2026-12-01 08:30:00", "2026-12-02 08:00:00"),
    ("50/5 * * * *", "2026-12-01 10:56:00", "2026-12-01 11:50:00"),
    ("0 0,12 1,15 * *", "2026-12-01 12:00:00", "2026-12-15 00:00:00"),
    # months, names, year end
    ("0 0 1 */3 *", "2026-11-15 00:00:00", "2027-01-01 00:00:00"),
    ("0 0 1 jan,jul *", "2026-07-01 00:00:00", "2027-01-01 00:00:00"),
    ("30 6 * * MON-FRI", "2026-12-04 07:00:00", "2026-12-07 06:30:00"),  # Friday -> Monday
    # the 31st skips short months; 29 February waits for a leap year
    ("0 0 31 * *", "2026-01-31 00:00:00", "2026-03-31 00:00:00"),
    ("0 0 29 2 *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
    # day of week: 0 and 7 are Sunday
    ("0 12 * * 0", "2026-12-01 00:00:00", "2026-12-06 12:00:00"),
    ("0 12 * * 7", "2026-12-01 00:00:00", "2026-12-06 12:00:00"),
    ("0 12 * * 5-7", "2026-12-01 00:00:00", "2026-12-04 12:00:00"),
    # both day fields restricted: either matches (Vixie cron); one starting with * : both must
    ("0 0 13 * 5", "2026-12-01 00:00:00", "2026-12-04 00:00:00"),  # Friday 4th comes before the 13th
    ("0 0 13 * 5", "2026-12-11 00:00:00", "2026-12-13 00:00:00"),  # the 13th (a Sunday)
    ("0 0 */2 * 5", "2026-12-01 00:00:00", "2026-12-11 00:00:00"),  # */2 counts as *: odd days that are Fridays
    ("0 0 1 * *", "2026-12-01 00:00:00", "2027-01-01 00:00:00"),
]


@pytest.mark.parametrize(("cron", "after", "expected"), NEXT_SLOTS)
def test_the_next_slot_is_the_first_matching_minute_strictly_after(sql, cron, after, expected):
    assert cron_next(sql, cron, utc(after)) == utc(expected)


def test_cron_is_evaluated_in_utc_whatever_the_session_time_zone(sql):
    with sql.transaction():  # `set local`: one transaction is one server connection, pooler or not
        sql.execute("set local time zone 'America/New_York'")  # DST ends there on 2026-11-01
        after = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, just before the clocks go back
        assert cron_next(sql, "0 * * * *", after) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
        assert cron_next(sql, "0 6 * * *", after) == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
        assert cron_next(sql, "0 6 * * *", datetime(2026, 11, 1, 6, 0, tzinfo=UTC)) == datetime(
            2026, 11, 2, 6, 0, tzinfo=UTC
        )


INVALID = [
    ("", "five fields"),
    ("* * * *", "five fields"),
    ("* * * * * *", "five fields"),
    ("60 * * * *", 'minute "60" is outside 0-59'),
    ("* 24 * * *", "hour"),
    ("* * 0 * *", "day of month"),
    ("* * * 13 *", "month"),
    ("* * * * 8", "day of week"),
    ("*/0 * * * *", "step must be at least 1"),
    ("5-1 * * * *", "low to high"),
    ("a * * * *", "not a number"),
    ("* * * foo *", "not a number or a name"),
    ("1,,2 * * * *", "not a value"),
    ("@daily", "five fields"),
    ("0 0 30 2 *", "matches no date"),
]


@pytest.mark.parametrize(("cron", "says"), INVALID)
def test_an_invalid_cron_is_refused_with_a_sentence(sql, cron, says):
    problem = sql.execute("select job_queue_cron_problem(%s) as p", (cron,)).fetchone()["p"]
    assert problem is not None
    assert says in problem
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        sql.execute("select job_queue_cron_next(%s, now())", (cron,))


def test_the_table_refuses_an_invalid_cron(sql):
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute(
            "insert into job_queue_schedules (name, task_type, cron, next_run_at)"
            " values ('x', 't', '61 * * * *', now())"
        )


def test_python_asks_the_database_for_cron_validity_and_slots(queue):
    assert queue.cron_problem("*/30 * * * *") is None
    assert "outside" in (queue.cron_problem("61 * * * *") or "")
    assert queue.cron_next("0 * * * *", utc("2026-12-01 10:00:00")) == utc("2026-12-01 11:00:00")


# -- the seeded schedules --------------------------------------------------------------


@pytest.fixture(scope="module")
def freshly_migrated(admin_conninfo: str) -> Iterator[str]:
    """A database just migrated: the other tests' table resets have not touched its seeds."""
    with fresh_database(admin_conninfo, prefix="jq_sched") as conninfo:
        yield conninfo


def test_migrations_seed_three_enabled_schedules_with_the_models_default_payloads(freshly_migrated):
    with psycopg.connect(freshly_migrated, row_factory=dict_row) as conn:
        rows = conn.execute("select *, next_run_at > now() as ahead from job_queue_schedules order by name").fetchall()
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"game_platform_sync", "game_platform_totals_sweep", "job_queue_cleanup"}
    assert all(r["enabled"] and r["ahead"] and r["task_type"] == r["name"] for r in rows)
    assert by_name["game_platform_sync"]["cron"] == "*/30 * * * *"
    assert by_name["game_platform_totals_sweep"]["cron"] == "0 * * * *"
    daily = by_name["job_queue_cleanup"]["cron"].split()
    assert daily[2:] == ["*", "*", "*"]
    assert daily[0].isdigit()
    assert daily[1].isdigit()
    # Equal to what the triggers store, so a scheduled job and a manual trigger dedupe.
    assert by_name["game_platform_sync"]["payload"] == SyncRequest().to_payload()
    assert by_name["game_platform_totals_sweep"]["payload"] == SweepRequest().to_payload()
    assert by_name["job_queue_cleanup"]["payload"] == CleanupPayload().to_payload()
    for row in rows:
        spec = default_registry.get(row["task_type"])
        assert spec is not None
        assert stored_payload(spec, {}) == row["payload"]


def test_the_schedules_table_is_closed_to_client_roles(freshly_migrated):
    with psycopg.connect(freshly_migrated, row_factory=dict_row) as conn:
        rls = conn.execute("select relrowsecurity from pg_class where oid = 'job_queue_schedules'::regclass").fetchone()
        assert rls["relrowsecurity"] is True
        for role in ("anon", "authenticated"):
            grants = conn.execute(
                "select has_table_privilege(%s, 'job_queue_schedules', 'select') as s,"
                " has_function_privilege(%s, 'job_queue_schedule_save(text, text, jsonb, text, boolean)', 'execute')"
                " as f",
                (role, role),
            ).fetchone()
            assert grants == {"s": False, "f": False}


def test_the_retention_default_is_one_figure_in_python_and_sql(freshly_migrated):
    with psycopg.connect(freshly_migrated) as conn:
        arguments = conn.execute(
            "select pg_get_function_arguments('job_queue_cleanup(interval, integer, integer)'::regprocedure)"
        ).fetchone()[0]
    assert f"'{RETENTION_DAYS} days'::interval" in arguments
    assert CleanupPayload().older_than_days == RETENTION_DAYS


# -- evaluation by the worker ---------------------------------------------------------


def add_schedule(sql, name="yearly", *, task_type="noop", payload=None, cron="0 0 1 1 *", due=True, enabled=True):
    """A schedule made due (or not) by hand; yearly, so it never comes due again while a test runs."""
    sql.execute(
        "insert into job_queue_schedules (name, task_type, payload, cron, enabled, next_run_at)"
        " values (%s, %s, %s, %s, %s,"
        " case when %s then now() - interval '1 minute' else now() + interval '1 hour' end)",
        (name, task_type, psycopg.types.json.Jsonb(payload or {}), cron, enabled, due),
    )


def schedule(sql, name="yearly") -> dict[str, Any]:
    return sql.execute("select * from job_queue_schedules where name = %s", (name,)).fetchone()


def jobs(sql, task_type="noop") -> list[dict[str, Any]]:
    return sql.execute("select * from job_queue where task_type = %s order by created_at", (task_type,)).fetchall()


def test_a_due_schedule_enqueues_one_job_and_moves_to_the_next_slot_after_now(queue, sql):
    add_schedule(sql, cron="*/30 * * * *", payload={"a": 1})
    sql.execute("update job_queue_schedules set next_run_at = now() - interval '3 hours'")  # slots were missed
    run, claimed = queue.begin_invocation("test", 5, False, LEASE)
    assert run.scheduled == ("yearly",)
    [job] = jobs(sql)
    assert job["payload"] == {"a": 1}
    assert [c.id for c in claimed] == [job["id"]]  # enqueued first, so claimed by the same invocation
    row = schedule(sql)
    evaluated_at = job["created_at"]  # the invocation's now()
    assert row["next_run_at"] == cron_next(sql, "*/30 * * * *", evaluated_at)  # no backfill of the missed slots
    assert row["last_job_id"] == job["id"]
    assert row["last_enqueued_at"] is not None
    sql.execute("update job_queue_schedules set next_run_at = now() + interval '1 hour'")  # as if 10:30 were later
    run, _ = queue.begin_invocation("test", 5, False, LEASE)
    assert run.scheduled == ()
    assert len(jobs(sql)) == 1


def test_a_paused_queue_still_enqueues_due_schedules_but_claims_nothing(queue, sql):
    add_schedule(sql)
    queue.set_processing(False, "maintenance")
    run, claimed = queue.begin_invocation("test", 5, False, LEASE)
    assert (run.processing_enabled, claimed, run.scheduled) == (False, [], ("yearly",))
    assert [j["status"] for j in jobs(sql)] == ["pending"]


def test_a_disabled_schedule_enqueues_nothing(queue, sql):
    add_schedule(sql, enabled=False)
    run, _ = queue.begin_invocation("test", 5, False, LEASE)
    assert run.scheduled == ()
    assert jobs(sql) == []
    assert schedule(sql)["last_enqueued_at"] is None


def test_a_schedule_not_yet_due_enqueues_nothing(queue, sql):
    add_schedule(sql, due=False)
    queue.begin_invocation("test", 5, False, LEASE)
    assert jobs(sql) == []


def test_a_due_schedule_dedupes_against_a_live_equal_job(queue, sql):
    live = queue.enqueue_unique("noop", {"a": 1}, run_at=datetime.now(UTC) + timedelta(hours=1))
    add_schedule(sql, payload={"a": 1})
    run, claimed = queue.begin_invocation("test", 5, False, LEASE)
    assert run.scheduled == ("yearly",)
    assert claimed == []
    assert [j["id"] for j in jobs(sql)] == [live.job_id]
    assert schedule(sql)["last_job_id"] == live.job_id
    assert schedule(sql)["next_run_at"] > datetime.now(UTC)


def test_a_seeded_sync_schedule_dedupes_against_the_trigger_payload(queue, sql):
    live = queue.enqueue_unique("game_platform_sync", SyncRequest().to_payload())
    add_schedule(sql, "sync", task_type="game_platform_sync", payload=SyncRequest().to_payload())
    queue.begin_invocation("test", 1, False, LEASE)
    assert [j["id"] for j in jobs(sql, "game_platform_sync")] == [live.job_id]


def test_a_broken_schedule_does_not_stop_the_invocation(queue, sql):
    add_schedule(sql, "broken")
    add_schedule(sql, "fine", payload={"b": 2})
    # A job row the enqueue cannot write (task_type longer than job_queue allows) stands for any failure.
    sql.execute("alter table job_queue add constraint test_refuse check (payload <> '{}'::jsonb) not valid")
    try:
        run, claimed = queue.begin_invocation("test", 5, False, LEASE)
    finally:
        sql.execute("alter table job_queue drop constraint test_refuse")
    assert run.scheduled == ("fine",)
    assert [c.payload for c in claimed] == [{"b": 2}]
    assert schedule(sql, "broken")["next_run_at"] <= datetime.now(UTC)  # left due: tried again next time


def test_nothing_due_costs_no_extra_statement(db, sql, clean_db):
    add_schedule(sql, due=False)
    worker = Worker(db, load_settings({"DATABASE_URL": clean_db}))
    before = db.statements
    worker.drain(limit=5, force=False, trigger_source="test")
    assert db.statements - before == 2


def test_overlapping_invocations_enqueue_a_due_schedule_once(clean_db, sql):
    """Real concurrent connections: each round, eight invocations begin at once on a due schedule."""
    settings = load_settings({"DATABASE_URL": clean_db})
    add_schedule(sql)
    rounds, workers = 6, 8
    for _ in range(rounds):
        sql.execute("update job_queue_schedules set next_run_at = now() - interval '1 minute'")
        JobFactory(sql).stage(None, "succeeded", among=set(JobStatus) - {JobStatus.SUCCEEDED})
        barrier = threading.Barrier(workers)
        scheduled: list[tuple[str, ...]] = []
        errors: list[BaseException] = []

        def invoke(
            barrier: threading.Barrier = barrier,
            scheduled: list[tuple[str, ...]] = scheduled,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                with connect(settings) as db:
                    queue = Queue(db)
                    barrier.wait(timeout=30)
                    run, _ = queue.begin_invocation("test", 1, True, LEASE)
                    scheduled.append(run.scheduled)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=invoke) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sorted(scheduled).count(("yearly",)) == 1
    assert len(jobs(sql)) == rounds


# -- the cleanup job ------------------------------------------------------------------


def test_the_cleanup_job_deletes_what_is_older_than_its_payload_says(clean_db, sql):
    sql.execute(
        "insert into job_queue (task_type, status, completed_at, run_at) values"
        " ('old', 'succeeded', now() - interval '31 days', now() - interval '32 days'),"
        " ('recent', 'failed', now() - interval '10 days', now() - interval '11 days'),"
        " ('live', 'pending', null, now() + interval '1 day')"
    )
    sql.execute(
        "insert into job_queue_invocations (trigger_source, started_at) values ('t', now() - interval '40 days')"
    )
    settings = load_settings({"DATABASE_URL": clean_db})
    with connect(settings) as db:
        queue = Queue(db)
        default_job = queue.enqueue("job_queue_cleanup", CleanupPayload().to_payload())
        report = Worker(db, settings).drain(limit=1, force=False, trigger_source="test")
        [result] = report.results
        assert (result.id, result.status) == (str(default_job), "succeeded")
        output = sql.execute("select output from job_queue where id = %s", (default_job,)).fetchone()["output"]
        assert output["removed"] == 2  # the old job and the old run
        assert output["olderThanDays"] == 30
        remaining = {r["task_type"] for r in sql.execute("select task_type from job_queue").fetchall()}
        assert remaining == {"recent", "live", "job_queue_cleanup"}

        queue.enqueue("job_queue_cleanup", {"olderThanDays": 7})
        Worker(db, settings).drain(limit=1, force=False, trigger_source="test")
        remaining = {r["task_type"] for r in sql.execute("select task_type from job_queue").fetchall()}
        assert "recent" not in remaining
        assert "live" in remaining


def test_a_cleanup_job_with_a_bad_age_fails_for_good(clean_db):
    settings = load_settings({"DATABASE_URL": clean_db})
    with connect(settings) as db:
        Queue(db).enqueue("job_queue_cleanup", {"olderThanDays": -1})
        [result] = Worker(db, settings).drain(limit=1, force=False, trigger_source="test").results
    assert result.status == "failed"
    assert "olderThanDays" in (result.last_error or "")


def test_the_worker_endpoint_names_the_schedules_it_enqueued_even_while_paused(worker_api, sql):
    from tests.support.secrets import cron_headers

    add_schedule(sql, payload={"n": 1})
    sql.execute("select job_queue_set_processing(false, 'maintenance')")
    response = worker_api.request("GET", headers=cron_headers())
    assert response.status == 200
    assert response.json == {"status": "paused", "processed": 0, "reason": "maintenance", "scheduled": ["yearly"]}
    assert [j["status"] for j in jobs(sql)] == ["pending"]
    again = worker_api.request("GET", headers=cron_headers())
    assert "scheduled" not in again.json  # moved to its next slot: nothing due now


def test_a_repeated_first_statement_evaluates_the_schedules_once(queue, sql):
    """A begin_invocation re-sent with its idempotency key (reply lost) answers the first call: nothing enqueued."""
    import uuid

    add_schedule(sql)
    invocation = uuid.uuid4()
    first, _ = queue.begin_invocation("test", 5, False, LEASE, invocation)
    assert first.scheduled == ("yearly",)
    sql.execute("update job_queue_schedules set next_run_at = now() - interval '1 minute'")  # due again, as if later
    JobFactory(sql).stage(None, "succeeded")  # no live copy to dedupe against
    again, _ = queue.begin_invocation("test", 5, False, LEASE, invocation)
    assert (again.invocation_id, again.scheduled) == (first.invocation_id, ())
    assert len(jobs(sql)) == 1
