"""The queue's SQL functions, called as the seed calls them and through lib.queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from lib.queue import Queue
from scripts.local_pg import create_database, drop_database
from scripts.migrate import apply_migrations, ensure_supabase_compatibility
from tests.support.jobs import FINISHED, JobFactory

LEASE = timedelta(minutes=15)


def _row(sql, job_id):
    return sql.execute("select * from job_queue where id = %s", (job_id,)).fetchone()


def _expire_lease(sql, job_id):
    JobFactory(sql).stage(job_id, lease=timedelta(seconds=-1))


# -- enqueue ---------------------------------------------------------------------


def test_seed_four_argument_enqueue_inserts_a_pending_job(sql):
    job_id = sql.execute(
        "select job_queue_enqueue('game_platform_sync', '{\"dryRun\": false}'::jsonb, now(), 3) as id"
    ).fetchone()["id"]
    row = _row(sql, job_id)
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert row["max_attempts"] == 3
    assert row["payload"] == {"dryRun": False}
    assert row["dedupe_key"] is None


def test_seed_enqueue_always_inserts_even_for_equal_payloads(sql):
    ids = {sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3) as id").fetchone()["id"] for _ in range(3)}
    assert len(ids) == 3


def test_enqueue_with_dedupe_key_returns_the_live_equal_job(sql):
    first = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3, 'k') as id").fetchone()["id"]
    second = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3, 'k') as id").fetchone()["id"]
    assert first == second
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 1


def test_enqueue_unique_says_whether_it_deduplicated(queue):
    first = queue.enqueue_unique("t", {"a": 1, "b": None})
    again = queue.enqueue_unique("t", {"b": None, "a": 1})
    other = queue.enqueue_unique("t", {"a": 2})
    assert not first.deduplicated
    assert again.deduplicated
    assert again.job_id == first.job_id
    assert other.job_id != first.job_id


def test_a_finished_job_does_not_block_a_new_equal_one(queue):
    first = queue.enqueue_unique("t", {})
    [job] = queue.claim(1, LEASE)
    queue.mark_succeeded(job)
    again = queue.enqueue_unique("t", {})
    assert not again.deduplicated
    assert again.job_id != first.job_id


def test_enqueue_batch_inserts_in_order(queue, sql):
    ids = queue.enqueue_batch("t", [{"n": i} for i in range(100)])
    assert len(ids) == 100
    rows = sql.execute("select id, payload from job_queue").fetchall()
    by_id = {r["id"]: r["payload"]["n"] for r in rows}
    assert [by_id[i] for i in ids] == list(range(100))


# -- claim -----------------------------------------------------------------------


def test_claim_takes_due_jobs_oldest_first_and_leaves_future_ones(queue):
    now = datetime.now(UTC)
    late = queue.enqueue("t", {"n": "late"}, run_at=now - timedelta(minutes=1))
    early = queue.enqueue("t", {"n": "early"}, run_at=now - timedelta(minutes=5))
    queue.enqueue("t", {"n": "future"}, run_at=now + timedelta(hours=1))
    claimed = queue.claim(10, LEASE)
    assert [j.id for j in claimed] == [early, late]
    assert all(j.attempts == 1 for j in claimed)
    assert len({j.lease_token for j in claimed}) == 2


def test_claim_sets_processing_and_a_lease(queue, sql):
    job_id = queue.enqueue("t")
    [job] = queue.claim(1, timedelta(minutes=7))
    row = _row(sql, job_id)
    assert row["status"] == "processing"
    assert row["lease_token"] == job.lease_token
    remaining = (row["lease_expires_at"] - row["locked_at"]).total_seconds()
    assert remaining == pytest.approx(420, abs=1)


def test_claim_respects_the_limit(queue):
    for _ in range(5):
        queue.enqueue("t")
    assert len(queue.claim(3, LEASE)) == 3
    assert len(queue.claim(3, LEASE)) == 2
    assert queue.claim(3, LEASE) == []


def test_seed_claim_call_uses_the_default_lease(sql):
    sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3)")
    [row] = sql.execute("select * from job_queue_claim(5)").fetchall()
    assert (row["lease_expires_at"] - row["locked_at"]) == timedelta(minutes=15)


@pytest.mark.parametrize("args", ["0", "-1", "null", "5, interval '0'", "5, interval '-1 minute'"])
def test_claim_rejects_nonsense_arguments(sql, args):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        sql.execute(f"select * from job_queue_claim({args})")


def test_expired_lease_is_reclaimed_as_a_new_attempt(queue, sql):
    job_id = queue.enqueue("t")
    [first] = queue.claim(1, LEASE)
    _expire_lease(sql, job_id)
    [second] = queue.claim(1, LEASE)
    assert second.id == job_id
    assert second.attempts == 2
    assert second.lease_token != first.lease_token
    assert "lease expired" in _row(sql, job_id)["last_error"]


def test_expired_lease_with_attempts_spent_fails_for_good(sql):
    job_id = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 1) as id").fetchone()["id"]
    sql.execute("select * from job_queue_claim(1)")
    _expire_lease(sql, job_id)
    assert sql.execute("select * from job_queue_claim(5)").fetchall() == []
    row = _row(sql, job_id)
    assert row["status"] == "failed"
    assert row["completed_at"] is not None
    assert "lease expired" in row["last_error"]
    assert "attempt 1 of 1" in row["last_error"]


def test_live_lease_is_not_reclaimed(queue):
    queue.enqueue("t")
    queue.claim(1, LEASE)
    assert queue.claim(5, LEASE) == []


def test_concurrent_claims_never_share_a_job(clean_db):
    """Open transactions hold their claims; SKIP LOCKED hands others the rest."""
    with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as setup:
        for _ in range(6):
            setup.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3)")
    a = psycopg.connect(clean_db, prepare_threshold=None)
    b = psycopg.connect(clean_db, prepare_threshold=None)
    try:
        first = {r[0] for r in a.execute("select id from job_queue_claim(4)").fetchall()}
        second = {r[0] for r in b.execute("select id from job_queue_claim(4)").fetchall()}
        a.commit()
        b.commit()
    finally:
        a.close()
        b.close()
    assert len(first) == 4
    assert len(second) == 2
    assert not first & second


# -- finish and fencing ------------------------------------------------------------


def test_mark_succeeded_stores_output_and_completion(queue, sql):
    job_id = queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    state = queue.mark_succeeded(job, {"rows": 3})
    assert state.status == "succeeded"
    row = _row(sql, job_id)
    assert row["output"] == {"rows": 3}
    assert row["completed_at"] is not None
    assert row["lease_token"] is None


def test_mark_failed_with_retry_goes_back_to_pending_later(queue, sql):
    job_id = queue.enqueue("t", max_attempts=3)
    [job] = queue.claim(1, LEASE)
    state = queue.mark_failed(job, "boom", timedelta(minutes=2))
    assert state.status == "pending"
    row = _row(sql, job_id)
    assert row["last_error"] == "boom"
    assert row["completed_at"] is None
    delay = sql.execute("select extract(epoch from run_at - now()) as s from job_queue").fetchone()["s"]
    assert delay == pytest.approx(120, abs=2)
    assert queue.claim(1, LEASE) == []  # not due yet


def test_mark_failed_without_retry_fails_for_good(sql):
    job_id = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 5) as id").fetchone()["id"]
    sql.execute("select * from job_queue_claim(1)")
    [state] = sql.execute("select * from job_queue_mark_failed(%s, 'bad input', null)", (job_id,)).fetchall()
    assert state["status"] == "failed"
    assert _row(sql, job_id)["completed_at"] is not None


def test_mark_failed_at_max_attempts_fails_for_good_despite_retry(sql):
    job_id = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 1) as id").fetchone()["id"]
    sql.execute("select * from job_queue_claim(1)")
    [state] = sql.execute("select * from job_queue_mark_failed(%s, 'boom', interval '1 minute')", (job_id,)).fetchall()
    assert state["status"] == "failed"
    assert state["attempts"] == 1


def test_seed_mark_calls_work_without_a_token(sql):
    job_id = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3) as id").fetchone()["id"]
    sql.execute("select * from job_queue_claim(1)")
    sql.execute("select job_queue_mark_succeeded(%s, '{\"ok\": true}'::jsonb)", (job_id,))
    assert _row(sql, job_id)["status"] == "succeeded"


def test_late_finish_after_rescue_changes_nothing(queue, sql):
    job_id = queue.enqueue("t")
    [dead_workers_job] = queue.claim(1, LEASE)
    _expire_lease(sql, job_id)
    [rescuers_job] = queue.claim(1, LEASE)
    assert queue.mark_succeeded(dead_workers_job, {"from": "dead worker"}) is None
    assert queue.mark_failed(dead_workers_job, "late", timedelta(seconds=1)) is None
    assert queue.release([dead_workers_job]) == 0
    row = _row(sql, job_id)
    assert row["status"] == "processing"
    assert row["lease_token"] == rescuers_job.lease_token
    assert queue.mark_succeeded(rescuers_job, {"from": "rescuer"}).status == "succeeded"
    assert _row(sql, job_id)["output"] == {"from": "rescuer"}


def test_finish_after_cancel_changes_nothing(queue, sql):
    job_id = queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    transition = queue.cancel(job_id)
    assert transition.changed
    assert transition.previous_status == "processing"
    assert queue.mark_succeeded(job, {"late": True}) is None
    assert queue.mark_failed(job, "late", None) is None
    row = _row(sql, job_id)
    assert row["status"] == "cancelled"
    assert row["output"] is None


def test_finishing_twice_changes_nothing_the_second_time(queue):
    queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    assert queue.mark_succeeded(job) is not None
    assert queue.mark_succeeded(job) is None
    assert queue.mark_failed(job, "x", None) is None


# -- release ---------------------------------------------------------------------


def test_release_returns_jobs_without_spending_the_attempt(queue, sql):
    first = queue.enqueue("t")
    second = queue.enqueue("t")
    claimed = queue.claim(2, LEASE)
    assert queue.release(claimed) == 2
    for job_id in (first, second):
        row = _row(sql, job_id)
        assert row["status"] == "pending"
        assert row["attempts"] == 0
        assert row["lease_token"] is None
    assert len(queue.claim(2, LEASE)) == 2


def test_release_of_a_wrong_token_changes_nothing(sql):
    job_id = sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3) as id").fetchone()["id"]
    sql.execute("select * from job_queue_claim(1)")
    assert sql.execute("select job_queue_release(%s, gen_random_uuid()) as ok", (job_id,)).fetchone()["ok"] is False
    assert _row(sql, job_id)["status"] == "processing"


# -- cancel and retry ------------------------------------------------------------


def test_cancel_refuses_finished_jobs(queue):
    job_id = queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    queue.mark_succeeded(job)
    transition = queue.cancel(job_id)
    assert not transition.changed
    assert transition.status == "succeeded"


def test_cancel_and_retry_of_an_unknown_job_return_nothing(queue):
    from uuid import uuid4

    assert queue.cancel(uuid4()) is None
    assert queue.retry(uuid4()) is None


def test_retry_gives_a_spent_job_one_more_attempt_due_now(queue, sql):
    job_id = queue.enqueue("t", max_attempts=1)
    [job] = queue.claim(1, LEASE)
    queue.mark_failed(job, "boom", timedelta(minutes=5))
    transition = queue.retry(job_id)
    assert transition.changed
    assert transition.previous_status == "failed"
    row = _row(sql, job_id)
    assert row["status"] == "pending"
    assert row["max_attempts"] == 2
    assert row["completed_at"] is None
    [again] = queue.claim(1, LEASE)
    assert again.attempts == 2


def test_retry_refuses_processing_and_succeeded_jobs(queue):
    running = queue.enqueue("t")
    queue.claim(1, LEASE)
    assert not queue.retry(running).changed
    done = queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    queue.mark_succeeded(job)
    assert queue.retry(done).status == "succeeded"


def test_retry_of_a_deduplicated_job_whose_twin_is_live_names_the_twin(queue):
    first = queue.enqueue_unique("t", {})
    queue.cancel(first.job_id)
    twin = queue.enqueue_unique("t", {})
    transition = queue.retry(first.job_id)
    assert not transition.changed
    assert transition.duplicate_of == twin.job_id


# -- pause switch ----------------------------------------------------------------


def test_pause_and_resume(queue):
    paused = queue.set_processing(False, "  upgrade  ")
    assert not paused.processing_enabled
    assert paused.paused_reason == "upgrade"
    resumed = queue.set_processing(True, "ignored")
    assert resumed.processing_enabled
    assert resumed.paused_reason is None
    assert resumed.updated_at >= paused.updated_at


def test_settings_table_holds_exactly_one_row(sql):
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute("insert into job_queue_settings (id) values (true)")
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute("insert into job_queue_settings (id) values (false)")


# -- cleanup ---------------------------------------------------------------------


def test_cleanup_removes_old_finished_jobs_and_runs_in_batches(queue, sql):
    for _ in range(25):
        queue.enqueue("t")
    for job in queue.claim(10, LEASE):
        queue.mark_succeeded(job)
    for job in queue.claim(10, LEASE):
        queue.mark_failed(job, "x", None)
    queue.claim(2, LEASE)  # still processing: never removed
    JobFactory(sql).stage(None, completed_ago=timedelta(days=40), among=FINISHED)
    sql.execute(
        "insert into job_queue_invocations (trigger_source, started_at)"
        " select 'x', now() - interval '40 days' from generate_series(1, 7)"
    )
    sql.execute("insert into job_queue_invocations (trigger_source) values ('recent')")

    # Two batches of 4 per table: 8 of the 20 old jobs, and all 7 old runs.
    assert queue.cleanup(timedelta(days=30), batch_size=4, max_batches=2) == 15
    remaining = sql.execute("select count(*) as n from job_queue").fetchone()["n"]
    assert remaining == 25 - 8
    assert queue.cleanup(timedelta(days=30), batch_size=4, max_batches=50) == 12
    statuses = sql.execute("select status, count(*) as n from job_queue group by status order by status").fetchall()
    assert statuses == [{"status": "pending", "n": 3}, {"status": "processing", "n": 2}]
    assert [
        r["trigger_source"] for r in sql.execute("select trigger_source from job_queue_invocations").fetchall()
    ] == ["recent"]


def test_cleanup_keeps_recent_finished_jobs(queue):
    queue.enqueue("t")
    [job] = queue.claim(1, LEASE)
    queue.mark_succeeded(job)
    assert queue.cleanup(timedelta(days=1)) == 0


# -- security --------------------------------------------------------------------

QUEUE_FUNCTIONS = """
    select p.oid::regprocedure::text as signature
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'public' and p.proname like 'job\\_queue\\_%'
"""


def test_no_client_role_can_execute_a_queue_function(sql):
    functions = [r["signature"] for r in sql.execute(QUEUE_FUNCTIONS).fetchall()]
    assert len(functions) >= 12
    for role in ("anon", "authenticated", "public"):
        for signature in functions:
            if role == "public":
                granted = sql.execute(
                    "select exists (select from pg_proc p,"
                    " aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a"
                    " where p.oid = %s::regprocedure and a.grantee = 0 and a.privilege_type = 'EXECUTE') as g",
                    (signature,),
                ).fetchone()["g"]
            else:
                granted = sql.execute(
                    "select has_function_privilege(%s, %s, 'execute') as g", (role, signature)
                ).fetchone()["g"]
            assert not granted, f"{role} may execute {signature}"
        assert sql.execute(
            "select has_function_privilege('service_role', 'job_queue_claim(integer, interval)', 'execute') as g"
        ).fetchone()["g"]


# Sequences owned by a table in `public` (identity or serial columns).
OWNED_SEQUENCES = """
    select seq.oid::regclass::text as sequence, tbl.oid::regclass::text as owner
      from pg_class seq
      join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = seq.oid
                      and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
      join pg_class tbl on tbl.oid = d.refobjid
     where seq.relkind = 'S' and seq.relnamespace = 'public'::regnamespace
"""


def _sequence_grants(conn, sequence):
    """Who other than the owner and service_role holds any privilege on `sequence`."""
    rows = conn.execute(
        "select coalesce(r.rolname, 'public') as grantee, a.privilege_type"
        " from pg_class c, aclexplode(coalesce(c.relacl, acldefault('s', c.relowner))) a"
        " left join pg_roles r on r.oid = a.grantee"
        " where c.oid = %s::regclass and a.grantee <> c.relowner and coalesce(r.rolname, 'public') <> 'service_role'",
        (sequence,),
    ).fetchall()
    return sorted((row[0], row[1]) for row in rows)


def test_no_client_role_can_use_a_queue_sequence(sql):
    sequences = [(r["sequence"], r["owner"]) for r in sql.execute(OWNED_SEQUENCES).fetchall()]
    assert any(owner == "job_queue_invocations" for _, owner in sequences)
    for sequence, owner in sequences:
        assert _sequence_grants(sql, sequence) == [], f"{sequence} (of {owner}) is open to client roles"
        for role in ("anon", "authenticated"):
            row = sql.execute(
                "select has_sequence_privilege(%s, %s, 'usage, select, update') as g", (role, sequence)
            ).fetchone()
            assert not row["g"], f"{role} may use {sequence}"
        assert sql.execute("select has_sequence_privilege('service_role', %s, 'usage') as g", (sequence,)).fetchone()[
            "g"
        ]


def test_under_supabase_default_privileges_client_roles_get_nothing(admin_conninfo):
    """Supabase grants every new table, sequence and function in `public` to anon and authenticated.

    Migrating under those defaults must still leave the bundle's objects closed to both.
    """
    conninfo = create_database(admin_conninfo, prefix="jq_defaults")
    try:
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            ensure_supabase_compatibility(conn)
            for kind in ("tables", "sequences", "functions"):
                grant = f"grant all on {kind} to anon, authenticated, service_role"
                conn.execute(f"alter default privileges in schema public {grant}")
        apply_migrations(conninfo)
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            sequences = conn.execute(OWNED_SEQUENCES).fetchall()
            assert len(sequences) >= 4
            open_sequences = [(seq, owner) for seq, owner in sequences if _sequence_grants(conn, seq)]
            assert open_sequences == []
            tables = conn.execute(
                "select c.oid::regclass::text from pg_class c where c.relnamespace = 'public'::regnamespace"
                " and c.relkind = 'r'"
                " and (has_table_privilege('anon', c.oid, 'select, insert, update, delete')"
                "      or has_table_privilege('authenticated', c.oid, 'select, insert, update, delete'))"
            ).fetchall()
            assert tables == []
            functions = conn.execute(
                "select p.oid::regprocedure::text from pg_proc p"
                " where p.pronamespace = 'public'::regnamespace and p.proname like 'job\\_queue\\_%'"
                " and (has_function_privilege('anon', p.oid, 'execute')"
                "      or has_function_privilege('authenticated', p.oid, 'execute'))"
            ).fetchall()
            assert functions == []
    finally:
        drop_database(admin_conninfo, conninfo)


def test_every_table_has_row_level_security(sql):
    rows = sql.execute(
        "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'r'"
    ).fetchall()
    assert rows
    assert [r["relname"] for r in rows if not r["relrowsecurity"]] == []


def test_client_roles_cannot_read_the_queue(sql):
    sql.execute("select job_queue_enqueue('t', '{}'::jsonb, now(), 3)")
    with sql.transaction():
        sql.execute("set local role anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql.execute("select * from job_queue")
        raise psycopg.Rollback


def test_queue_wrapper_round_trip_through_lib_queue(db):
    queue = Queue(db)
    job_id = queue.enqueue("t", {"x": 1})
    [job] = queue.claim(1, LEASE)
    assert job.id == job_id
    assert job.payload == {"x": 1}
    assert job.task_type == "t"


def test_a_run_left_open_by_a_killed_worker_is_closed_by_the_next_one(queue, sql):
    sql.execute(
        "insert into job_queue_invocations (trigger_source, started_at)"
        " values ('vercel_cron', now() - interval '2 hours')"
    )
    sql.execute(
        "insert into job_queue_invocations (trigger_source, started_at)"
        " values ('runner_secret', now() - interval '1 minute')"
    )
    queue.begin_invocation("vercel_cron", 5, False, LEASE)
    runs = sql.execute("select trigger_source, status, error from job_queue_invocations order by id").fetchall()
    assert runs[0]["status"] == "failed"
    assert runs[0]["error"].startswith("interrupted")
    assert runs[1]["status"] == "running"  # may still be working
    assert runs[2]["status"] == "running"
