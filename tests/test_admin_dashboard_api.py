"""The admin API behind the dashboard page: run the worker now, create a job, delete one,
the health report's lists and the public sign-in config. Real handlers over HTTP, real PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from lib.game_platform.payloads import SweepRequest, SyncRequest
from lib.health import health_report
from lib.settings import load_settings
from tests.support.jobs import JobFactory
from tests.support.secrets import runner_headers
from tests.support.tasks import recorder
from tests.support.tokens import ANON_KEY, admin_headers, coach_headers

RUN_WORKER = "api/admin/jobs/run-worker.py"
CREATE = "api/admin/jobs/create.py"
ACTIONS = "api/admin/job-queue/actions.py"
HEALTH = "api/admin/job-queue/health.py"
CONFIG = "api/admin/config.py"


@pytest.fixture
def run_worker_api(admin_env, test_tasks, serve):
    return serve(RUN_WORKER)


@pytest.fixture
def create_api(admin_env, test_tasks, serve):
    return serve(CREATE)


@pytest.fixture
def actions_api(admin_env, serve):
    return serve(ACTIONS)


@pytest.fixture
def health_api(admin_env, serve):
    return serve(HEALTH)


def _enqueue(sql, task_type="test_noop", payload="{}", *, run_at="now()"):
    return str(
        sql.execute(f"select job_queue_enqueue(%s, %s::jsonb, {run_at}, 5) as id", (task_type, payload)).fetchone()[
            "id"
        ]
    )


def _job(sql, job_id):
    return sql.execute("select * from job_queue where id = %s", (job_id,)).fetchone()


def _log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- run-worker ----------------------------------------------------------------------


def test_run_worker_answers_the_workers_report_and_records_admin_manual(run_worker_api, sql):
    job_id = _enqueue(sql)
    response = run_worker_api.request("POST", body={}, headers=admin_headers())
    assert response.status == 200
    body = response.json
    assert body["status"] == "ok"
    assert (body["processed"], body["succeeded"], body["failed"]) == (1, 1, 0)
    assert body["results"][0]["id"] == job_id
    assert body["results"][0]["status"] == "succeeded"
    assert _job(sql, job_id)["status"] == "succeeded"
    run = sql.execute("select trigger_source, status, requested_limit from job_queue_invocations").fetchone()
    assert run == {"trigger_source": "admin_manual", "status": "completed", "requested_limit": 5}


def test_run_worker_caps_the_limit_at_ten(run_worker_api, sql):
    for _ in range(12):
        _enqueue(sql)
    body = run_worker_api.request("POST", body={"limit": 50}, headers=admin_headers()).json
    assert body["processed"] == 10
    assert sql.execute("select requested_limit from job_queue_invocations").fetchone()["requested_limit"] == 10


@pytest.mark.parametrize("body", [{"limit": 0}, {"limit": -1}, {"limit": "5"}, {"force": "yes"}, {"batch": 1}])
def test_run_worker_refuses_bad_input_with_400(run_worker_api, sql, body):
    response = run_worker_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_request"
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 0


def test_run_worker_obeys_the_pause_switch_unless_forced(run_worker_api, sql):
    job_id = _enqueue(sql)
    sql.execute("update job_queue_settings set processing_enabled = false, paused_reason = 'maintenance'")
    paused = run_worker_api.request("POST", body={}, headers=admin_headers()).json
    assert paused == {"status": "paused", "processed": 0, "reason": "maintenance"}
    assert _job(sql, job_id)["status"] == "pending"

    forced = run_worker_api.request("POST", body={"force": True}, headers=admin_headers()).json
    assert forced["processed"] == 1
    runs = sql.execute("select trigger_source, status, forced from job_queue_invocations order by id").fetchall()
    assert runs == [
        {"trigger_source": "admin_manual", "status": "paused", "forced": False},
        {"trigger_source": "admin_manual", "status": "completed", "forced": True},
    ]


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), (coach_headers(), 403), (runner_headers(), 401)], ids=["none", "coach", "runner"]
)
def test_run_worker_is_for_admins_only(run_worker_api, sql, headers, status):
    job_id = _enqueue(sql)
    assert run_worker_api.request("POST", body={}, headers=headers).status == status
    assert _job(sql, job_id)["status"] == "pending"
    assert recorder.runs == {}


def test_run_worker_budgets_for_the_admin_functions_duration():
    from lib.endpoints.admin_jobs import ADMIN_MAX_DURATION_SECONDS, admin_worker_settings
    from tests.support.api import ROOT

    config = json.loads((ROOT / "vercel.json").read_text())
    assert config["functions"]["api/admin/**/*.py"]["maxDuration"] == ADMIN_MAX_DURATION_SECONDS
    fitted = admin_worker_settings(load_settings({}))
    budget = fitted.worker_max_duration_seconds - fitted.worker_finish_margin_seconds
    assert fitted.worker_max_duration_seconds == ADMIN_MAX_DURATION_SECONDS
    assert budget >= fitted.worker_min_job_seconds > 0  # a job can start at all
    small = admin_worker_settings(load_settings({"JOB_WORKER_MIN_JOB_SECONDS": "1"}))
    assert small.worker_min_job_seconds == 1  # a smaller configured value is kept


# -- create ----------------------------------------------------------------------------


def test_create_fills_the_payloads_defaults_as_the_triggers_do(create_api, sql):
    response = create_api.request("POST", body={"taskType": "game_platform_sync"}, headers=admin_headers())
    assert response.status == 200
    body = response.json
    assert body["success"] is True
    job = _job(sql, body["jobId"])
    assert job["task_type"] == "game_platform_sync"
    assert job["payload"] == SyncRequest().to_payload()  # what trigger-sync stores for {}
    assert job["payload"]["dryRun"] is False
    assert job["payload"]["coachId"] is None
    assert job["status"] == "pending"
    assert job["max_attempts"] == 5

    sweep = create_api.request(
        "POST", body={"taskType": "game_platform_totals_sweep", "payload": {"batchSize": 7}}, headers=admin_headers()
    )
    stored = _job(sql, sweep.json["jobId"])["payload"]
    assert stored == SweepRequest.model_validate({"batchSize": 7}).to_payload()
    assert stored["batchSize"] == 7


def test_create_and_the_trigger_store_equal_payloads_for_equal_requests(create_api, serve, sql):
    trigger = serve("api/admin/jobs/trigger-sync.py")
    coach = str(uuid.uuid4())
    by_trigger = trigger.request("POST", body={"dryRun": True, "coachId": coach}, headers=admin_headers()).json
    by_create = create_api.request(
        "POST",
        body={"taskType": "game_platform_sync", "payload": {"coachId": coach, "dryRun": True}},
        headers=admin_headers(),
    ).json
    assert _job(sql, by_create["jobId"])["payload"] == _job(sql, by_trigger["jobId"])["payload"]


def test_create_stores_run_at_and_max_attempts(create_api, sql):
    run_at = datetime.now(UTC) + timedelta(hours=2)
    response = create_api.request(
        "POST",
        body={"taskType": "test_noop", "payload": {"x": 1}, "runAt": run_at.isoformat(), "maxAttempts": 2},
        headers=admin_headers(),
    )
    assert response.status == 200
    job = _job(sql, response.json["jobId"])
    assert job["run_at"] == run_at
    assert job["max_attempts"] == 2
    assert job["payload"] == {"x": 1}


def test_create_refuses_an_unregistered_task_type(create_api, sql):
    response = create_api.request("POST", body={"taskType": "no_such_task"}, headers=admin_headers())
    assert response.status == 400
    assert response.json["details"][0]["field"] == "taskType"
    assert "game_platform_sync" in response.json["message"]
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"dryRun": "yes"}, "payload.dryRun"),
        ({"coachId": "not-a-uuid"}, "payload.coachId"),
        ({"dry_run": True}, "payload.dry_run"),
        ({"cursor": {"syncRunId": 1}}, "payload.cursor"),  # only a handler writes a continuation's cursor
        ({"cursor": {"startedAt": "2026-12-01T00:00:00Z", "fullSync": False, "flashForAll": False}}, "payload.cursor"),
    ],
)
def test_create_refuses_a_payload_its_model_refuses_with_details(create_api, sql, payload, field):
    response = create_api.request(
        "POST", body={"taskType": "game_platform_sync", "payload": payload}, headers=admin_headers()
    )
    assert response.status == 400
    assert any(d["field"].startswith(field) for d in response.json["details"]), response.json
    assert "game_platform_sync" in response.json["message"]
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"taskType": ""},
        {"taskType": "test_noop", "maxAttempts": 0},
        {"taskType": "test_noop", "runAt": "2026-12-01T10:00:00"},  # no time zone
        {"taskType": "test_noop", "payload": [1]},
        {"taskType": "test_noop", "priority": 1},
    ],
)
def test_create_refuses_bad_bodies(create_api, body):
    response = create_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_request"


def test_create_is_for_admins_only(create_api, sql):
    assert create_api.request("POST", body={"taskType": "test_noop"}).status == 401
    assert create_api.request("POST", body={"taskType": "test_noop"}, headers=coach_headers()).status == 403
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 0


def test_get_lists_the_registered_task_types_with_default_payloads(create_api):
    response = create_api.request("GET", headers=admin_headers())
    assert response.status == 200
    types = {t["taskType"]: t for t in response.json["taskTypes"]}
    assert types["game_platform_sync"]["defaultPayload"] == SyncRequest().to_payload()
    assert types["game_platform_totals_sweep"]["defaultPayload"]["batchSize"] == 100
    assert "dryRun" in types["game_platform_sync"]["payloadSchema"]["properties"]
    assert "cursor" not in types["game_platform_sync"]["payloadSchema"]["properties"]
    assert types["test_sleep"]["defaultPayload"] is None  # `seconds` has no default
    assert create_api.request("GET", headers=coach_headers()).status == 403


def test_a_created_job_runs_through_the_worker(create_api, run_worker_api, sql):
    job_id = create_api.request("POST", body={"taskType": "test_noop"}, headers=admin_headers()).json["jobId"]
    report = run_worker_api.request("POST", body={}, headers=admin_headers()).json
    assert [r["id"] for r in report["results"]] == [job_id]
    assert _job(sql, job_id)["status"] == "succeeded"


def test_a_created_job_due_now_kicks_the_worker(create_api, admin_env, serve, sql):
    worker = serve("api/jobs/run.py")
    admin_env(JOB_QUEUE_WORKER_URL=f"http://127.0.0.1:{worker.port}/api/jobs/run")
    job_id = create_api.request("POST", body={"taskType": "test_noop"}, headers=admin_headers()).json["jobId"]
    for _ in range(300):  # until the kicked worker has run it (no cron, no other worker call here)
        if _job(sql, job_id)["status"] == "succeeded":
            break
        threading.Event().wait(0.05)
    assert _job(sql, job_id)["status"] == "succeeded"
    sources = [r["trigger_source"] for r in sql.execute("select trigger_source from job_queue_invocations").fetchall()]
    assert sources
    assert set(sources) == {"kick"}


def test_a_job_created_for_later_sends_no_kick(create_api, admin_env, serve, sql, capsys):
    worker = serve("api/jobs/run.py")
    admin_env(JOB_QUEUE_WORKER_URL=f"http://127.0.0.1:{worker.port}/api/jobs/run")
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    capsys.readouterr()
    create_api.request("POST", body={"taskType": "test_noop", "runAt": later}, headers=admin_headers())
    assert not [r for r in _log_lines(capsys.readouterr().out) if r["event"].startswith("kick.")]
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 0


# -- delete ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "succeeded", "failed", "cancelled"])
def test_delete_removes_a_job_that_is_not_processing(actions_api, sql, capsys, status):
    job_id = _enqueue(sql)
    JobFactory(sql).stage(job_id, status)
    response = actions_api.request("POST", body={"action": "delete", "jobId": job_id}, headers=admin_headers())
    assert response.status == 200
    assert response.json == {
        "success": True,
        "action": "delete",
        "jobId": job_id,
        "status": "deleted",
        "previousStatus": status,
    }
    assert _job(sql, job_id) is None
    logged = [r for r in _log_lines(capsys.readouterr().out) if r["event"] == "admin.job_deleted"]
    assert len(logged) == 1
    assert logged[0]["job_id"] == job_id
    assert logged[0]["status"] == status
    assert logged[0]["task_type"] == "test_noop"
    assert logged[0]["user_id"]


def test_delete_refuses_a_processing_job_with_409_and_its_status(actions_api, sql):
    job_id = _enqueue(sql)
    sql.execute("select * from job_queue_claim(1, interval '5 minutes')")
    response = actions_api.request("POST", body={"action": "delete", "jobId": job_id}, headers=admin_headers())
    assert response.status == 409
    assert response.json["status"] == "processing"
    assert response.json["jobId"] == job_id
    assert _job(sql, job_id)["status"] == "processing"


def test_delete_of_an_unknown_job_is_404(actions_api):
    response = actions_api.request(
        "POST", body={"action": "delete", "jobId": str(uuid.uuid4())}, headers=admin_headers()
    )
    assert response.status == 404


def test_delete_is_for_admins_only(actions_api, sql):
    job_id = _enqueue(sql)
    assert (
        actions_api.request("POST", body={"action": "delete", "jobId": job_id}, headers=coach_headers()).status == 403
    )
    assert _job(sql, job_id) is not None


def test_delete_waiting_on_a_concurrent_claim_sees_the_claim_and_deletes_nothing(clean_db, sql, db):
    """A claim that locked the row first wins: the delete waits for it, then finds the job processing."""
    job_id = _enqueue(sql)
    with psycopg.connect(clean_db) as claimer:
        claimed = claimer.execute("select id from job_queue_claim(1, interval '5 minutes')").fetchall()
        assert [str(r[0]) for r in claimed] == [job_id]  # row locked, claim not yet committed
        answer: list[tuple] = []
        deleter = threading.Thread(
            target=lambda: answer.append(db.fetchone("select id, status, deleted from job_queue_delete(%s)", (job_id,)))
        )
        deleter.start()
        for _ in range(500):  # until the delete is waiting on the claim's row lock
            waiting = sql.execute(
                "select count(*) as n from pg_stat_activity where wait_event_type = 'Lock'"
                " and query like '%%job_queue_delete%%'"
            ).fetchone()["n"]
            if waiting:
                break
            deleter.join(0.01)
        assert waiting, "the delete did not wait for the claim's lock"
        claimer.commit()
    deleter.join(10)
    assert answer[0]["deleted"] is False
    assert answer[0]["status"] == "processing"
    assert _job(sql, job_id)["status"] == "processing"


def test_a_claim_after_a_delete_cannot_take_the_job(clean_db, sql):
    job_id = _enqueue(sql)
    with psycopg.connect(clean_db) as deleter:
        assert deleter.execute("select deleted from job_queue_delete(%s)", (job_id,)).fetchone() == (True,)
        # The delete holds the row: a concurrent claim skips it rather than waiting or taking it.
        assert sql.execute("select id from job_queue_claim(1, interval '5 minutes')").fetchall() == []
        deleter.commit()
    assert _job(sql, job_id) is None


# -- health: stuck, overdue, schedules, last sync run -----------------------------------


def test_health_lists_stuck_jobs_with_their_lease(health_api, sql):
    job_id = _enqueue(sql)
    JobFactory(sql).stage(
        job_id,
        "processing",
        attempts=2,
        locked_ago=timedelta(minutes=10),
        lease=timedelta(minutes=-1),
        last_error="boom",
    )
    live = _enqueue(sql)
    JobFactory(sql).stage(live, "processing", attempts=1, lease=timedelta(minutes=5))
    body = health_api.request("GET", headers=admin_headers()).json
    assert [s["id"] for s in body["stuck"]] == [job_id]
    stuck = body["stuck"][0]
    assert set(stuck) >= {"id", "taskType", "attempts", "lockedAt", "leaseExpiresAt", "lastError"}
    assert stuck["taskType"] == "test_noop"
    assert stuck["attempts"] == 2
    assert stuck["lastError"] == "boom"
    assert datetime.fromisoformat(stuck["leaseExpiresAt"]) < datetime.now(UTC)
    assert body["stuckJobs"] == 1  # the existing count agrees


def test_health_lists_overdue_jobs_past_the_threshold_only(health_api, admin_env, sql):
    admin_env(JOB_QUEUE_HEALTH_MAX_WAIT_SECONDS="60")
    old = _enqueue(sql, run_at="now() - interval '5 minutes'")
    _enqueue(sql, run_at="now() - interval '30 seconds'")  # due, within the threshold
    _enqueue(sql, run_at="now() + interval '1 hour'")  # not due
    body = health_api.request("GET", headers=admin_headers()).json
    assert [o["id"] for o in body["overdue"]] == [old]
    overdue = body["overdue"][0]
    assert set(overdue) >= {"id", "taskType", "runAt", "waitSeconds"}
    assert 290 <= overdue["waitSeconds"] <= 400


def test_health_lists_are_bounded_to_25_oldest_first(health_api, sql):
    sql.execute(
        "insert into job_queue (task_type, status, attempts, locked_at, lease_expires_at)"
        " select 't', 'processing', 1, now() - interval '1 hour', now() - g * interval '1 second'"
        "   from generate_series(1, 30) g"
    )
    sql.execute(
        "insert into job_queue (task_type, run_at) select 't', now() - interval '1 day' - g * interval '1 second'"
        "  from generate_series(1, 30) g"
    )
    body = health_api.request("GET", headers=admin_headers()).json
    assert len(body["stuck"]) == 25
    assert len(body["overdue"]) == 25
    leases = [s["leaseExpiresAt"] for s in body["stuck"]]
    assert leases == sorted(leases)
    assert body["stuckJobs"] == 30


def test_health_schedules_are_empty_without_schedules(health_api, sql):
    if sql.execute("select to_regclass('public.job_queue_schedules') as t").fetchone()["t"] is not None:
        sql.execute("delete from job_queue_schedules")
    assert health_api.request("GET", headers=admin_headers()).json["schedules"] == []


def test_health_lists_the_schedules_table_whenever_it_exists(clean_db):
    """Before the schedules migration the table is made here (and rolled back); after it, its own is used."""
    with psycopg.connect(clean_db) as conn:
        if conn.execute("select to_regclass('public.job_queue_schedules')").fetchone()[0] is None:
            conn.execute(
                "create table public.job_queue_schedules (name text primary key, task_type text not null,"
                " payload jsonb not null default '{}', cron text not null, enabled boolean not null default true,"
                " next_run_at timestamptz not null, last_enqueued_at timestamptz)"
            )
        conn.execute("delete from job_queue_schedules")
        conn.execute(
            "insert into job_queue_schedules (name, task_type, payload, cron, enabled, next_run_at, last_enqueued_at)"
            " values ('nightly-sync', 'game_platform_sync', '{}', '0 3 * * *', true, '2026-12-02T03:00:00Z', null),"
            " ('a-sweep', 'game_platform_totals_sweep', '{}', '*/30 * * * *', false, '2026-12-02T03:00:00Z',"
            " '2026-12-01T10:00:00Z')"
        )
        schedules = conn.execute("select schedules from job_queue_health_details(600, 25)").fetchone()[0]
        conn.rollback()
    assert [s["name"] for s in schedules] == ["a-sweep", "nightly-sync"]
    assert schedules[1] == {
        "name": "nightly-sync",
        "taskType": "game_platform_sync",
        "cron": "0 3 * * *",
        "enabled": True,
        "nextRunAt": "2026-12-02T03:00:00+00:00",
        "lastEnqueuedAt": None,
    }
    assert schedules[0]["lastEnqueuedAt"] == "2026-12-01T10:00:00+00:00"


def test_health_last_sync_run_is_null_then_the_latest_run(health_api, sql):
    assert health_api.request("GET", headers=admin_headers()).json["lastSyncRun"] is None
    sql.execute("insert into game_platform_sync_runs (status, counts) values ('completed', '{\"synced\": 3}')")
    sql.execute(
        "insert into game_platform_sync_runs (status, error, started_at)"
        " values ('failed', 'vendor down', now() - interval '1 hour')"
    )
    run = health_api.request("GET", headers=admin_headers()).json["lastSyncRun"]
    assert run["status"] == "failed"  # the latest row, whatever its start time
    assert run["error"] == "vendor down"
    assert set(run) >= {"status", "startedAt", "finishedAt", "counts", "error"}


def test_health_keeps_every_existing_key(health_api):
    body = health_api.request("GET", headers=admin_headers()).json
    assert set(body) >= {
        "healthy",
        "problems",
        "processingEnabled",
        "pausedReason",
        "queueCounts",
        "duePending",
        "oldestPendingAgeSeconds",
        "stuckJobs",
        "failedLast24h",
        "lastRunAt",
        "lastRunAgeSeconds",
        "recentRuns",
        "recentJobs",
        "maxWaitSeconds",
        "checkedAt",
        "stuck",
        "overdue",
        "schedules",
        "lastSyncRun",
    }


def test_health_with_its_lists_is_still_one_round_trip(db, sql):
    _enqueue(sql, run_at="now() - interval '1 day'")
    before = db.statements
    report = health_report(db, load_settings({}))
    assert db.statements - before == 1
    assert len(report.to_json()["overdue"]) == 1


def test_health_lists_read_through_indexes_not_the_whole_table(sql):
    sql.execute(
        "insert into job_queue (task_type, status, attempts, completed_at)"
        " select 't', 'succeeded', 1, now() from generate_series(1, 20000)"
    )
    sql.execute(
        "insert into job_queue (task_type, run_at) select 't', now() - interval '1 day' from generate_series(1, 40)"
    )
    sql.execute("vacuum analyze job_queue")

    def seq_scans() -> int:
        sql.execute("select pg_stat_force_next_flush()")
        sql.execute("select pg_stat_clear_snapshot()")
        return sql.execute("select seq_scan from pg_stat_user_tables where relname = 'job_queue'").fetchone()[
            "seq_scan"
        ]

    before = seq_scans()
    row = sql.execute("select * from job_queue_health_details(600, 25)").fetchone()
    sql.execute("select 1")
    assert seq_scans() == before
    assert len(row["overdue"]) == 25


# -- public config ----------------------------------------------------------------------


def test_config_is_public_and_holds_only_the_url_and_anon_key(admin_env, serve):
    admin_env(SUPABASE_URL="https://testproject.supabase.co/", SUPABASE_ANON_KEY=ANON_KEY)
    response = serve(CONFIG).request("GET")
    assert response.status == 200
    assert response.json == {"supabaseUrl": "https://testproject.supabase.co", "supabaseAnonKey": ANON_KEY}
    assert "no-store" in response.headers["cache-control"]


def test_config_without_supabase_settings_answers_nulls(admin_env, serve):
    api = serve(CONFIG)
    assert api.request("GET").json == {"supabaseUrl": None, "supabaseAnonKey": None}
    assert api.request("GET", query="x=1").status == 400
    assert api.request("POST", body={}).status == 405
