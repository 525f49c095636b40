"""/api/jobs/run through its real handler over HTTP: auth, input, pause switch, lifecycle."""

from __future__ import annotations

import pytest

from tests.support.jobs import JobFactory
from tests.support.secrets import CRON_SECRET, RUNNER_SECRET, cron_headers, runner_headers


def _enqueue(sql, task_type="test_noop", payload="{}", max_attempts=5):
    return sql.execute(
        "select job_queue_enqueue(%s, %s::jsonb, now(), %s) as id", (task_type, payload, max_attempts)
    ).fetchone()["id"]


def _job(sql, job_id):
    return sql.execute("select * from job_queue where id = %s", (job_id,)).fetchone()


def _claimed_count(sql):
    return sql.execute("select count(*) as n from job_queue where status <> 'pending'").fetchone()["n"]


# -- auth ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cron_secret_bearer_is_accepted(worker_api, method):
    response = worker_api.request(method, headers=cron_headers())
    assert response.status == 200
    assert response.json["status"] == "ok"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_runner_secret_header_is_accepted(worker_api, method):
    response = worker_api.request(method, headers=runner_headers())
    assert response.status == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="none"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-bearer"),
        pytest.param({"x-job-runner-secret": "wrong"}, id="wrong-runner"),
        pytest.param({"Authorization": f"Basic {CRON_SECRET}"}, id="wrong-scheme"),
        pytest.param({"Authorization": f"Bearer {CRON_SECRET}x"}, id="secret-prefix"),
        pytest.param({"x-job-runner-secret": CRON_SECRET}, id="cron-secret-in-runner-header"),
        pytest.param({"Authorization": f"Bearer {RUNNER_SECRET}"}, id="runner-secret-in-bearer"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_credentials_are_refused(worker_api, sql, method, headers):
    _enqueue(sql)
    response = worker_api.request(method, headers=headers)
    assert response.status == 401
    assert response.json["error"] == "unauthorized"
    assert CRON_SECRET not in response.raw.decode()
    assert RUNNER_SECRET not in response.raw.decode()
    assert _claimed_count(sql) == 0


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_empty_cron_secret_matches_nothing(worker_api, app_env, method):
    app_env(CRON_SECRET="")
    assert worker_api.request(method, headers={"Authorization": "Bearer "}).status == 401
    assert worker_api.request(method, headers={"Authorization": "Bearer"}).status == 401
    # The other secret still works.
    assert worker_api.request(method, headers=runner_headers()).status == 200


def test_bearer_undefined_with_cron_secret_unset_is_refused(worker_api, app_env):
    app_env(CRON_SECRET=None)
    assert worker_api.request("GET", headers={"Authorization": "Bearer undefined"}).status == 401
    assert worker_api.request("GET", headers={"Authorization": "Bearer null"}).status == 401


def test_empty_runner_header_with_runner_secret_unset_is_refused(worker_api, app_env):
    app_env(JOB_QUEUE_RUNNER_SECRET=None)
    assert worker_api.request("POST", headers={"x-job-runner-secret": ""}).status == 401
    assert worker_api.request("POST", headers=cron_headers()).status == 200


def test_both_secrets_unset_refuses_everything_and_logs_it(worker_api, app_env, capsys):
    app_env(CRON_SECRET=None, JOB_QUEUE_RUNNER_SECRET=None)
    for headers in (
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer undefined"},
        {"x-job-runner-secret": ""},
    ):
        assert worker_api.request("POST", headers=headers).status == 401
    assert "auth.misconfigured" in capsys.readouterr().out


# -- input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(b"{not json", "invalid_json", id="malformed"),
        pytest.param(b"[1, 2]", "invalid_request", id="array"),
        pytest.param(b'"five"', "invalid_request", id="string"),
        pytest.param(b"5", "invalid_request", id="number"),
        pytest.param({"limit": 0}, "invalid_request", id="limit-0"),
        pytest.param({"limit": -1}, "invalid_request", id="limit-negative"),
        pytest.param({"limit": 2.5}, "invalid_request", id="limit-fraction"),
        pytest.param({"limit": "5"}, "invalid_request", id="limit-string"),
        pytest.param({"limit": True}, "invalid_request", id="limit-bool"),
        pytest.param({"limit": None}, "invalid_request", id="limit-null"),
        pytest.param({"force": "yes"}, "invalid_request", id="force-string"),
        pytest.param({"force": 1}, "invalid_request", id="force-number"),
        pytest.param({"limti": 3}, "invalid_request", id="unknown-field"),
    ],
)
def test_bad_body_is_a_400_that_claims_nothing(worker_api, sql, body, error):
    _enqueue(sql)
    response = worker_api.request("POST", body=body, headers=runner_headers())
    assert response.status == 400, response.json
    assert response.json["error"] == error
    assert response.json["message"]
    assert _claimed_count(sql) == 0


def test_validation_errors_list_each_bad_field(worker_api):
    response = worker_api.request("POST", body={"limit": 0, "force": "x", "extra": 1}, headers=runner_headers())
    assert response.status == 400
    fields = {d["field"] for d in response.json["details"]}
    assert fields == {"limit", "force", "extra"}


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=-1", "limit=2.5", "limit=abc", "force=maybe", "x=1", "limit=1&limit=2"]
)
def test_bad_query_is_a_400_that_claims_nothing(worker_api, sql, query):
    _enqueue(sql)
    response = worker_api.request("GET", query=query, headers=cron_headers())
    assert response.status == 400
    assert _claimed_count(sql) == 0


def test_oversized_body_is_a_413_that_claims_nothing(worker_api, sql):
    _enqueue(sql)
    response = worker_api.request(
        "POST", body=b'{"limit": 1, "pad": "' + b"x" * 70_000 + b'"}', headers=runner_headers()
    )
    assert response.status == 413
    assert response.json["error"] == "payload_too_large"
    assert _claimed_count(sql) == 0


@pytest.mark.parametrize("limit", [11, 1000])
def test_limit_above_ten_is_capped(worker_api, sql, limit):
    for _ in range(12):
        _enqueue(sql)
    response = worker_api.request("POST", body={"limit": limit}, headers=runner_headers())
    assert response.status == 200
    assert response.json["processed"] == 10


def test_default_limit_is_five(worker_api, sql):
    for _ in range(7):
        _enqueue(sql)
    assert worker_api.request("GET", headers=cron_headers()).json["processed"] == 5


def test_query_string_limit_works_for_get(worker_api, sql):
    for _ in range(3):
        _enqueue(sql)
    assert worker_api.request("GET", query="limit=2", headers=cron_headers()).json["processed"] == 2


def test_unserved_method_is_405_json(worker_api):
    response = worker_api.request("DELETE", headers=runner_headers())
    assert response.status == 405
    assert response.headers["content-type"] == "application/json"
    assert response.json["error"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def test_responses_are_json(worker_api):
    response = worker_api.request("GET", headers=cron_headers())
    assert response.headers["content-type"] == "application/json"


# -- pause switch -----------------------------------------------------------------


def test_paused_queue_claims_nothing(worker_api, sql):
    job = _enqueue(sql)
    sql.execute("select job_queue_set_processing(false, 'vendor maintenance')")
    response = worker_api.request("GET", headers=cron_headers())
    assert response.status == 200
    assert response.json == {"status": "paused", "processed": 0, "reason": "vendor maintenance"}
    assert _job(sql, job)["status"] == "pending"
    run = sql.execute("select status, trigger_source from job_queue_invocations").fetchone()
    assert run == {"status": "paused", "trigger_source": "vercel_cron"}


def test_force_bypasses_the_pause_switch(worker_api, sql):
    job = _enqueue(sql)
    sql.execute("select job_queue_set_processing(false, 'maintenance')")
    response = worker_api.request("POST", body={"force": True}, headers=runner_headers())
    assert response.json["status"] == "ok"
    assert response.json["processed"] == 1
    assert _job(sql, job)["status"] == "succeeded"


def test_resumed_queue_processes_again(worker_api, sql):
    _enqueue(sql)
    sql.execute("select job_queue_set_processing(false, 'x')")
    assert worker_api.request("GET", headers=cron_headers()).json["status"] == "paused"
    sql.execute("select job_queue_set_processing(true)")
    assert worker_api.request("GET", headers=cron_headers()).json["processed"] == 1


# -- lifecycle --------------------------------------------------------------------


def test_success_is_recorded_with_output(worker_api, sql):
    job = _enqueue(sql)
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["status"] == "ok"
    assert body["processed"] == 1
    assert body["succeeded"] == 1
    assert body["failed"] == 0
    assert body["results"][0] == {
        "id": str(job),
        "taskType": "test_noop",
        "status": "succeeded",
        "attempts": 1,
        "lastError": None,
        "durationMs": body["results"][0]["durationMs"],
    }
    row = _job(sql, job)
    assert row["status"] == "succeeded"
    assert row["output"] == {"ok": True, "attempt": 1}
    assert row["completed_at"] is not None
    assert row["lease_token"] is None


def test_failure_schedules_a_retry_with_backoff(worker_api, sql):
    job = _enqueue(sql, "test_boom", max_attempts=3)
    body = worker_api.request("POST", headers=runner_headers()).json
    result = body["results"][0]
    assert result["status"] == "pending"
    assert result["lastError"] == "RuntimeError: upstream exploded"
    assert "retryAt" in result
    assert body["failed"] == 1
    row = _job(sql, job)
    assert row["status"] == "pending"
    assert row["attempts"] == 1
    assert row["completed_at"] is None
    delay = sql.execute(
        "select extract(epoch from run_at - now()) as s from job_queue where id = %s", (job,)
    ).fetchone()["s"]
    assert 0 < delay <= 30  # JOB_RETRY_BASE_SECONDS ceiling for the first retry


def test_handler_requested_delay_is_used(worker_api, sql):
    job = _enqueue(sql, "test_retry_later")
    worker_api.request("POST", headers=runner_headers())
    delay = sql.execute(
        "select extract(epoch from run_at - updated_at) as s from job_queue where id = %s", (job,)
    ).fetchone()["s"]
    assert delay == pytest.approx(120, abs=1)


def test_failure_is_final_at_max_attempts(worker_api, sql):
    job = _enqueue(sql, "test_boom", max_attempts=2)
    worker_api.request("POST", headers=runner_headers())
    JobFactory(sql).stage(job, due=True)  # skip the backoff wait
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["results"][0]["status"] == "failed"
    assert body["results"][0]["attempts"] == 2
    row = _job(sql, job)
    assert row["status"] == "failed"
    assert row["completed_at"] is not None
    assert row["last_error"] == "RuntimeError: upstream exploded"


def test_unknown_task_type_fails_without_retry(worker_api, sql):
    job = _enqueue(sql, "no_such_task")
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["results"][0]["status"] == "failed"
    assert "unknown task type 'no_such_task'" in body["results"][0]["lastError"]
    assert _job(sql, job)["attempts"] == 1


def test_invalid_payload_fails_without_retry(worker_api, sql):
    job = _enqueue(sql, "test_sleep", payload='{"seconds": "soon"}')
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["results"][0]["status"] == "failed"
    assert "invalid payload" in body["results"][0]["lastError"]
    assert "seconds" in body["results"][0]["lastError"]
    assert _job(sql, job)["status"] == "failed"


def test_permanent_error_fails_without_retry(worker_api, sql):
    job = _enqueue(sql, "test_permanent")
    body = worker_api.request("POST", headers=runner_headers()).json
    assert body["results"][0] == {**body["results"][0], "status": "failed", "lastError": "record 42 does not exist"}
    assert _job(sql, job)["attempts"] == 1


def test_each_invocation_is_recorded(worker_api, sql):
    _enqueue(sql)
    _enqueue(sql, "test_boom")
    worker_api.request("GET", headers=cron_headers())
    worker_api.request("POST", headers=runner_headers())
    runs = sql.execute("select * from job_queue_invocations order by id").fetchall()
    assert [r["trigger_source"] for r in runs] == ["vercel_cron", "runner_secret"]
    first = runs[0]
    assert first["status"] == "completed"
    assert (first["claimed"], first["processed"], first["succeeded"], first["failed"]) == (2, 2, 1, 1)
    assert first["finished_at"] is not None
    assert first["duration_ms"] >= 0


def test_pg_net_caller_is_recorded_as_such(worker_api, sql):
    worker_api.request("POST", headers={**runner_headers(), "User-Agent": "pg_net/0.10.0"}, body=b"{}")
    assert sql.execute("select trigger_source from job_queue_invocations").fetchone()["trigger_source"] == "pg_net"


def test_logs_are_json_lines_without_secrets(worker_api, sql, capsys):
    import json

    _enqueue(sql, "test_boom")
    worker_api.request("POST", headers=runner_headers())
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    failure = next(r for r in records if r["event"] == "job.retry_scheduled")
    assert failure["task_type"] == "test_boom"
    assert failure["attempts"] == 1
    assert "RuntimeError: upstream exploded" in failure["error"]
    assert "Traceback" in failure["stack"]
    assert CRON_SECRET not in out
    assert RUNNER_SECRET not in out
