"""GET /api/admin/job-queue/health: the report, its verdict, who may read it, and what it costs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lib.health import assess, health_report
from lib.job_status import JobStatus
from lib.queue import HealthSnapshot
from lib.settings import load_settings
from tests.support.secrets import CRON_SECRET, cron_headers, runner_headers
from tests.support.tokens import admin_headers, bearer, coach_headers, hs256

HEALTH = "api/admin/job-queue/health.py"
STATUSES = tuple(JobStatus)
REQUIRED_KEYS = {
    "healthy",
    "problems",
    "processingEnabled",
    "pausedReason",
    "queueCounts",
    "oldestPendingAgeSeconds",
    "stuckJobs",
    "failedLast24h",
    "lastRunAt",
    "recentRuns",
    "recentJobs",
}


@pytest.fixture
def health_api(admin_env, serve):
    return serve(HEALTH)


def _insert(sql, status="pending", *, run_at="now()", completed_at=None, lease_expires_at=None, task_type="t"):
    return sql.execute(
        "insert into job_queue (task_type, status, run_at, completed_at, lease_expires_at, attempts)"
        f" values (%s, %s, {run_at}, {completed_at or 'null'}, {lease_expires_at or 'null'},"
        " case when %s = 'pending' then 0 else 1 end) returning id",
        (task_type, status, status),
    ).fetchone()["id"]


def _run(sql, started_at="now()", status="completed"):
    sql.execute(
        f"insert into job_queue_invocations (trigger_source, status, started_at, finished_at) values"
        f" ('vercel_cron', %s, {started_at}, {started_at})",
        (status,),
    )


# -- the report --------------------------------------------------------------------


def test_empty_queue_is_healthy_with_every_count_zero(health_api):
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 200
    body = response.json
    assert set(body) >= REQUIRED_KEYS
    assert body["healthy"] is True
    assert body["problems"] == []
    assert body["queueCounts"] == dict.fromkeys(STATUSES, 0)
    assert body["processingEnabled"] is True
    assert body["pausedReason"] is None
    assert body["oldestPendingAgeSeconds"] is None
    assert body["stuckJobs"] == 0
    assert body["failedLast24h"] == 0
    assert body["lastRunAt"] is None
    assert body["recentRuns"] == []
    assert body["recentJobs"] == []


def test_counts_per_status_include_zeros(health_api, sql):
    for status in ("pending", "pending", "pending", "succeeded", "failed"):
        _insert(sql, status, completed_at="now()" if status != "pending" else None)
    _insert(sql, "processing", lease_expires_at="now() + interval '10 minutes'")
    body = health_api.request("GET", headers=admin_headers()).json
    assert body["queueCounts"] == {"pending": 3, "processing": 1, "succeeded": 1, "failed": 1, "cancelled": 0}
    assert body["healthy"] is True


def test_recently_due_jobs_are_healthy(health_api, sql):
    _insert(sql, run_at="now() - interval '5 minutes'")
    body = health_api.request("GET", headers=admin_headers()).json
    assert body["healthy"] is True
    assert 299 <= body["oldestPendingAgeSeconds"] <= 330


def test_an_overdue_job_makes_it_unhealthy_503_with_the_same_body(health_api, sql):
    _insert(sql, run_at="now() - interval '11 minutes'")
    _insert(sql, run_at="now() - interval '1 minute'")
    _run(sql)
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 503
    body = response.json
    assert set(body) >= REQUIRED_KEYS
    assert body["healthy"] is False
    assert 659 <= body["oldestPendingAgeSeconds"] <= 700
    assert len(body["problems"]) == 1
    assert "waited 66" in body["problems"][0] or "waited 67" in body["problems"][0]
    assert "600 s threshold" in body["problems"][0]
    assert "2 jobs due" in body["problems"][0]


def test_age_counts_from_when_the_job_became_due(health_api, sql):
    """A job scheduled for later does not age while it waits for its run_at."""
    sql.execute(
        "insert into job_queue (task_type, run_at, created_at) values ('t', now() + interval '1 hour',"
        " now() - interval '3 hours')"
    )
    body = health_api.request("GET", headers=admin_headers()).json
    assert body["healthy"] is True
    assert body["oldestPendingAgeSeconds"] is None
    assert body["queueCounts"]["pending"] == 1


def test_threshold_is_configurable(health_api, admin_env, sql):
    _insert(sql, run_at="now() - interval '2 minutes'")
    _run(sql)
    assert health_api.request("GET", headers=admin_headers()).status == 200
    admin_env(JOB_QUEUE_HEALTH_MAX_WAIT_SECONDS="60")
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 503
    assert "60 s threshold" in response.json["problems"][0]


def test_paused_queue_with_overdue_jobs_says_it_is_paused(health_api, sql):
    sql.execute("select job_queue_set_processing(false, 'vendor maintenance')")
    _insert(sql, run_at="now() - interval '20 minutes'")
    _run(sql, status="paused")
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 503
    body = response.json
    assert body["processingEnabled"] is False
    assert body["pausedReason"] == "vendor maintenance"
    assert "paused (vendor maintenance)" in body["problems"][0]


def test_paused_queue_without_backlog_is_healthy(health_api, sql):
    sql.execute("select job_queue_set_processing(false, 'quiet hours')")
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 200
    assert response.json["processingEnabled"] is False


def test_jobs_stuck_past_their_lease_make_it_unhealthy(health_api, sql):
    _insert(sql, "processing", lease_expires_at="now() - interval '1 second'")
    _insert(sql, "processing", lease_expires_at="now() + interval '5 minutes'")
    _run(sql)
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 503
    assert response.json["stuckJobs"] == 1
    assert response.json["queueCounts"]["processing"] == 2
    assert response.json["problems"] == [
        "1 job is stuck in processing past its lease: the worker holding it stopped before finishing, "
        "and no worker has run since to take it over."
    ]


def test_worker_silent_longer_than_the_threshold_while_jobs_are_due(health_api, sql):
    _run(sql, started_at="now() - interval '20 minutes'")
    _insert(sql, run_at="now() - interval '10 seconds'")
    response = health_api.request("GET", headers=admin_headers())
    assert response.status == 503
    assert any("worker has not run for 12" in p for p in response.json["problems"])


def test_worker_silent_without_due_jobs_is_healthy(health_api, sql):
    _run(sql, started_at="now() - interval '2 hours'")
    _insert(sql, run_at="now() + interval '1 hour'")
    assert health_api.request("GET", headers=admin_headers()).status == 200


def test_failures_counted_over_the_last_24_hours(health_api, sql):
    _insert(sql, "failed", completed_at="now() - interval '1 hour'")
    _insert(sql, "failed", completed_at="now() - interval '23 hours'")
    _insert(sql, "failed", completed_at="now() - interval '25 hours'")
    body = health_api.request("GET", headers=admin_headers()).json
    assert body["failedLast24h"] == 2
    assert body["queueCounts"]["failed"] == 3
    assert body["healthy"] is True  # failures are reported, not a health verdict


def test_last_run_and_recent_runs_come_from_real_worker_calls(health_api, worker_api, sql):
    sql.execute("select job_queue_enqueue('test_noop', '{}'::jsonb)")
    assert worker_api.request("GET", headers=cron_headers()).status == 200
    assert worker_api.request("POST", headers=runner_headers()).status == 200
    body = health_api.request("GET", headers=admin_headers()).json
    assert body["lastRunAt"] is not None
    runs = body["recentRuns"]
    assert [r["triggerSource"] for r in runs] == ["runner_secret", "vercel_cron"]
    assert runs[1]["succeeded"] == 1
    assert runs[0]["processed"] == 0
    assert {"id", "status", "startedAt", "finishedAt", "durationMs", "claimed", "failed", "error"} <= set(runs[0])
    assert datetime.fromisoformat(body["lastRunAt"]) == datetime.fromisoformat(runs[0]["startedAt"])


def test_recent_lists_hold_the_last_ten_newest_first(health_api, sql):
    for i in range(12):
        sql.execute(
            "insert into job_queue (task_type, created_at) values (%s, now() - make_interval(secs => %s))",
            (f"t{i}", 100 - i),
        )
        _run(sql, started_at=f"now() - interval '{100 - i} seconds'")
    body = health_api.request("GET", headers=admin_headers()).json
    assert [j["taskType"] for j in body["recentJobs"]] == [f"t{i}" for i in range(11, 1, -1)]
    assert len(body["recentRuns"]) == 10
    started = [r["startedAt"] for r in body["recentRuns"]]
    assert started == sorted(started, reverse=True)
    job = body["recentJobs"][0]
    assert {"id", "taskType", "status", "attempts", "maxAttempts", "lastError", "runAt", "createdAt"} <= set(job)


# -- who may read it ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param(runner_headers(), 200, id="runner-secret"),
        pytest.param({"Authorization": f"Bearer {CRON_SECRET}"}, 200, id="cron-secret"),
        pytest.param(admin_headers(), 200, id="admin"),
        pytest.param({"Cookie": "sb-x-auth-token=" + "base64-"}, 401, id="empty-cookie"),
        pytest.param({}, 401, id="none"),
        pytest.param({"x-job-runner-secret": "wrong"}, 401, id="wrong-runner-secret"),
        pytest.param(bearer("garbage"), 401, id="garbage-token"),
        pytest.param(bearer(hs256(expires_in=-1)), 401, id="expired-admin"),
        pytest.param(coach_headers(), 403, id="coach"),
    ],
)
def test_who_may_read_health(health_api, headers, status):
    response = health_api.request("GET", headers=headers)
    assert response.status == status
    if status != 200:
        assert "queueCounts" not in response.json


@pytest.mark.parametrize("headers", [{}, bearer("garbage"), {"x-job-runner-secret": "wrong"}])
def test_a_401_names_the_runner_secrets_it_also_accepts(health_api, headers):
    response = health_api.request("GET", headers=headers)
    assert response.status == 401
    assert "x-job-runner-secret" in response.json["message"]
    assert "JOB_QUEUE_RUNNER_SECRET" in response.json["message"]


def test_unset_runner_secret_matches_nothing(health_api, admin_env):
    admin_env(JOB_QUEUE_RUNNER_SECRET=None, CRON_SECRET=None)
    assert health_api.request("GET", headers={"x-job-runner-secret": ""}).status == 401
    assert health_api.request("GET", headers={"Authorization": "Bearer undefined"}).status == 401


def test_unknown_query_parameter_is_400(health_api):
    response = health_api.request("GET", query="verbose=1", headers=runner_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_request"


def test_head_answers_the_status_without_a_body(health_api, sql):
    assert health_api.request("HEAD", headers=runner_headers()).status == 200
    _insert(sql, run_at="now() - interval '1 hour'")
    response = health_api.request("HEAD", headers=runner_headers())
    assert response.status == 503
    assert response.raw == b""


def test_post_is_405(health_api):
    assert health_api.request("POST", headers=runner_headers()).status == 405


# -- cost and the verdict, without HTTP ----------------------------------------------


def test_report_is_one_round_trip(db, sql):
    _insert(sql)
    before = db.statements
    report = health_report(db, load_settings({}))
    assert db.statements - before == 1
    assert report.to_json()["queueCounts"]["pending"] == 1


def test_snapshot_counts_through_indexes_not_the_whole_table(sql):
    sql.execute(
        "insert into job_queue (task_type, status, attempts, completed_at, run_at)"
        " select 't', (array['succeeded', 'failed', 'cancelled'])[1 + g % 3], 1,"
        "        now() - (g % 48) * interval '1 hour', now() - interval '2 days'"
        "   from generate_series(1, 30000) g"
    )
    sql.execute("insert into job_queue (task_type) select 't' from generate_series(1, 50)")
    sql.execute("vacuum analyze job_queue")

    def seq_scans() -> int:
        sql.execute("select pg_stat_force_next_flush()")
        sql.execute("select pg_stat_clear_snapshot()")
        return sql.execute("select seq_scan from pg_stat_user_tables where relname = 'job_queue'").fetchone()[
            "seq_scan"
        ]

    before = seq_scans()
    row = sql.execute("select * from job_queue_health_snapshot(10)").fetchone()
    sql.execute("select 1")
    assert seq_scans() == before
    assert row["succeeded"] + row["failed"] + row["cancelled"] == 30000
    assert row["pending"] == 50
    assert row["failed_last_24h"] == sum(1 for g in range(1, 30001) if g % 3 == 1 and g % 48 < 24)


def _snapshot(**overrides) -> HealthSnapshot:
    now = datetime.now(UTC)
    values = {
        "checked_at": now,
        "processing_enabled": True,
        "paused_reason": None,
        "settings_updated_at": now,
        "pending": 0,
        "processing": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
        "due_pending": 0,
        "oldest_due_pending_age_seconds": None,
        "stuck_jobs": 0,
        "failed_last_24h": 0,
        "last_run_at": now - timedelta(minutes=1),
        "last_run_age_seconds": 60.0,
        "recent_runs": [],
        "recent_jobs": [],
    }
    values.update(overrides)
    return HealthSnapshot(**values)


def test_waiting_exactly_the_threshold_is_still_healthy():
    assert assess(_snapshot(due_pending=1, pending=1, oldest_due_pending_age_seconds=600.0), 600) == []
    assert len(assess(_snapshot(due_pending=1, pending=1, oldest_due_pending_age_seconds=600.5), 600)) == 1


def test_never_run_worker_is_a_problem_only_once_a_job_is_overdue():
    never = {"last_run_at": None, "last_run_age_seconds": None, "due_pending": 1, "pending": 1}
    assert assess(_snapshot(**never, oldest_due_pending_age_seconds=30.0), 600) == []
    problems = assess(_snapshot(**never, oldest_due_pending_age_seconds=700.0), 600)
    assert len(problems) == 2
    assert "never run" in problems[1]
