"""The pause switch, the job list and detail, retry and cancel: real handlers over HTTP, real worker."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from lib.db import Database
from lib.queue import Queue
from tests.support.jobs import JobFactory
from tests.support.secrets import cron_headers
from tests.support.tasks import recorder
from tests.support.tokens import admin_headers, coach_headers

TOGGLE = "api/admin/job-queue/toggle.py"
JOBS = "api/admin/job-queue/jobs.py"
ACTIONS = "api/admin/job-queue/actions.py"


@pytest.fixture
def toggle_api(admin_env, serve):
    return serve(TOGGLE)


@pytest.fixture
def jobs_api(admin_env, serve):
    return serve(JOBS)


@pytest.fixture
def actions_api(admin_env, serve):
    return serve(ACTIONS)


def _settings(sql):
    return sql.execute("select processing_enabled, paused_reason, updated_at from job_queue_settings").fetchone()


def _enqueue(sql, task_type="test_noop", payload="{}", *, run_at="now()", max_attempts=5):
    return str(
        sql.execute(
            f"select job_queue_enqueue(%s, %s::jsonb, {run_at}, %s) as id", (task_type, payload, max_attempts)
        ).fetchone()["id"]
    )


def _job(sql, job_id):
    return sql.execute("select * from job_queue where id = %s", (job_id,)).fetchone()


# -- toggle ------------------------------------------------------------------------------


def test_pause_and_resume_round_trip(toggle_api, sql):
    response = toggle_api.request(
        "POST", body={"enabled": False, "reason": "vendor maintenance"}, headers=admin_headers()
    )
    assert response.status == 200
    body = response.json
    assert set(body) == {"processingEnabled", "pausedReason", "updatedAt"}
    assert body["processingEnabled"] is False
    assert body["pausedReason"] == "vendor maintenance"
    row = _settings(sql)
    assert row["processing_enabled"] is False
    assert datetime.fromisoformat(body["updatedAt"]) == row["updated_at"]

    response = toggle_api.request("POST", body={"enabled": True}, headers=admin_headers())
    assert response.json["processingEnabled"] is True
    assert response.json["pausedReason"] is None
    assert _settings(sql)["processing_enabled"] is True


def test_pause_without_reason(toggle_api):
    body = toggle_api.request("POST", body={"enabled": False}, headers=admin_headers()).json
    assert body == {"processingEnabled": False, "pausedReason": None, "updatedAt": body["updatedAt"]}


def test_resume_drops_the_reason(toggle_api):
    toggle_api.request("POST", body={"enabled": False, "reason": "x"}, headers=admin_headers())
    body = toggle_api.request("POST", body={"enabled": True, "reason": "ignored"}, headers=admin_headers()).json
    assert body["pausedReason"] is None


def test_worker_obeys_the_switch_on_its_next_call(toggle_api, worker_api, sql):
    job = _enqueue(sql)
    toggle_api.request("POST", body={"enabled": False, "reason": "deploy"}, headers=admin_headers())
    paused = worker_api.request("GET", headers=cron_headers())
    assert paused.json == {"status": "paused", "processed": 0, "reason": "deploy"}
    assert _job(sql, job)["status"] == "pending"

    toggle_api.request("POST", body={"enabled": True}, headers=admin_headers())
    resumed = worker_api.request("GET", headers=cron_headers())
    assert resumed.json["status"] == "ok"
    assert resumed.json["succeeded"] == 1
    assert _job(sql, job)["status"] == "succeeded"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing-enabled"),
        pytest.param(b"", id="empty-body"),
        pytest.param({"enabled": "false"}, id="enabled-string"),
        pytest.param({"enabled": 0}, id="enabled-number"),
        pytest.param({"enabled": None}, id="enabled-null"),
        pytest.param({"enabled": False, "reason": 5}, id="reason-number"),
        pytest.param({"enabled": False, "reason": "x" * 501}, id="reason-too-long"),
        pytest.param({"enabled": False, "paused": True}, id="unknown-field"),
        pytest.param(b"{nope", id="malformed-json"),
        pytest.param(b"[false]", id="array"),
        pytest.param({"enabled": False, "reason": "a\u0000b"}, id="reason-with-nul"),
        pytest.param({"enabled": False, "reason": "\ud800"}, id="reason-lone-surrogate"),
        pytest.param(b'{"enabled": false, "reason": "\\ud800"}', id="reason-escaped-lone-surrogate"),
        pytest.param(b'{"enabled": false, "reason": NaN}', id="reason-nan"),
        pytest.param(b'{"enabled": false, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", id="deeply-nested"),
        pytest.param(b'{"enabled": false, "x": ' + b"[" * 65 + b"]" * 65 + b"}", id="nested-65-deep"),
    ],
)
def test_bad_toggle_body_is_400_and_changes_nothing(toggle_api, sql, body):
    before = _settings(sql)
    response = toggle_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400
    assert response.json["error"] in {"invalid_request", "invalid_json"}
    assert _settings(sql) == before


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (coach_headers(), 403)])
def test_non_admins_cannot_toggle(toggle_api, sql, headers, status):
    before = _settings(sql)
    assert toggle_api.request("POST", body={"enabled": False}, headers=headers).status == status
    assert _settings(sql) == before


def test_toggle_is_post_only(toggle_api):
    assert toggle_api.request("GET", headers=admin_headers()).status == 405


# -- list ------------------------------------------------------------------------------------


def _insert_at(sql, seconds_ago, task_type="t", status="pending"):
    return str(
        sql.execute(
            "insert into job_queue (task_type, status, created_at) values (%s, %s, now() - make_interval(secs => %s))"
            " returning id",
            (task_type, status, seconds_ago),
        ).fetchone()["id"]
    )


def _list(api, query=""):
    response = api.request("GET", query=query, headers=admin_headers())
    assert response.status == 200, response.json
    return response.json


def test_list_is_newest_first(jobs_api, sql):
    ids = [_insert_at(sql, s) for s in (30, 10, 20)]
    body = _list(jobs_api)
    assert [j["id"] for j in body["jobs"]] == [ids[1], ids[2], ids[0]]
    assert body["nextCursor"] is None


def test_list_items_are_summaries(jobs_api, sql):
    job = _enqueue(sql, "t", '{"dryRun": true}')
    [item] = _list(jobs_api)["jobs"]
    assert item["id"] == job
    assert item["payload"] == {"dryRun": True}
    assert {"taskType", "status", "attempts", "maxAttempts", "lastError", "runAt", "createdAt", "updatedAt"} <= set(
        item
    )
    assert "output" not in item


def test_list_filters_by_status_and_task_type(jobs_api, sql):
    a = _insert_at(sql, 5, "sync", "pending")
    b = _insert_at(sql, 4, "sync", "failed")
    c = _insert_at(sql, 3, "sweep", "failed")
    _insert_at(sql, 2, "sweep", "succeeded")
    assert [j["id"] for j in _list(jobs_api, "status=failed")["jobs"]] == [c, b]
    assert [j["id"] for j in _list(jobs_api, "taskType=sync")["jobs"]] == [b, a]
    assert [j["id"] for j in _list(jobs_api, "status=failed&taskType=sync")["jobs"]] == [b]
    assert _list(jobs_api, "status=cancelled")["jobs"] == []


def test_keyset_pagination_walks_every_job_once(jobs_api, sql):
    ids = [_insert_at(sql, 100 - i) for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        body = _list(jobs_api, "limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += [j["id"] for j in body["jobs"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))


def test_pagination_breaks_ties_on_equal_creation_times(jobs_api, sql):
    sql.execute(
        "insert into job_queue (task_type, created_at) select 't', '2026-11-28 12:00:00+00' from generate_series(1, 5)"
    )
    seen, cursor = [], None
    for _ in range(5):
        body = _list(jobs_api, "limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [j["id"] for j in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5


def test_new_jobs_do_not_shift_later_pages(jobs_api, sql):
    ids = [_insert_at(sql, 100 - i) for i in range(4)]
    first = _list(jobs_api, "limit=2")
    _insert_at(sql, 0)
    second = _list(jobs_api, f"limit=2&cursor={first['nextCursor']}")
    assert [j["id"] for j in second["jobs"]] == [ids[1], ids[0]]


def test_filtered_pagination(jobs_api, sql):
    failed = [_insert_at(sql, 100 - i, status="failed") for i in range(5)]
    for i in range(5):
        _insert_at(sql, 50 - i, status="succeeded")
    first = _list(jobs_api, "status=failed&limit=3")
    second = _list(jobs_api, f"status=failed&limit=3&cursor={first['nextCursor']}")
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == list(reversed(failed))
    assert second["nextCursor"] is None


def test_limit_defaults_to_50_and_allows_100(jobs_api, sql):
    sql.execute("insert into job_queue (task_type) select 't' from generate_series(1, 120)")
    assert len(_list(jobs_api)["jobs"]) == 50
    body = _list(jobs_api, "limit=100")
    assert len(body["jobs"]) == 100
    assert body["nextCursor"] is not None


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=abc",
        "status=done",
        "status=",
        "taskType=",
        "cursor=not-a-cursor",
        "cursor=" + "A" * 20,
        "page=2",
        "limit=1&limit=2",
        "id=not-a-uuid",
        "id=12345",
        f"id={uuid.uuid4()}&status=failed",
        "taskType=%00",
        "taskType=a%00b",
        "cursor=%00",
        "status=%00",
        "%00=1",
    ],
)
def test_bad_list_query_is_400(jobs_api, query):
    response = jobs_api.request("GET", query=query, headers=admin_headers())
    assert response.status == 400, response.json
    assert response.json["error"] == "invalid_request"


def test_nul_in_a_query_value_names_the_field(jobs_api):
    response = jobs_api.request("GET", query="taskType=%00", headers=admin_headers())
    assert response.status == 400
    assert response.json["details"][0]["field"] == "taskType"
    assert "NUL" in response.json["details"][0]["message"]


def test_nul_in_the_toggle_reason_names_the_field(toggle_api):
    response = toggle_api.request("POST", body={"enabled": False, "reason": "a\u0000b"}, headers=admin_headers())
    assert response.status == 400
    assert response.json["details"] == [
        {
            "field": "reason",
            "message": "contains a NUL character (\\u0000), which cannot be stored",
            "type": "unstorable_text",
        }
    ]


def test_jobs_is_get_only(jobs_api):
    assert jobs_api.request("POST", body={}, headers=admin_headers()).status == 405


# -- detail ----------------------------------------------------------------------------------


def test_detail_returns_the_job_in_full(jobs_api, sql, queue):
    job_id = _enqueue(sql, "t", '{"coachId": null, "dryRun": false}', max_attempts=3)
    [claimed] = queue.claim(1, timedelta(minutes=10))
    queue.mark_failed(claimed, "upstream 503", timedelta(seconds=30))
    JobFactory(sql).stage(job_id, output={"partial": 3})

    body = _list(jobs_api, f"id={job_id}")
    job = body["job"]
    assert job["id"] == job_id
    assert job["taskType"] == "t"
    assert job["status"] == "pending"
    assert job["payload"] == {"coachId": None, "dryRun": False}
    assert job["output"] == {"partial": 3}
    assert job["lastError"] == "upstream 503"
    assert job["attempts"] == 1
    assert job["maxAttempts"] == 3
    for key in ("runAt", "createdAt", "updatedAt", "completedAt", "lockedAt", "leaseExpiresAt"):
        assert key in job
    assert job["lockedAt"] is not None  # when the last attempt took it
    row = _job(sql, job_id)
    assert datetime.fromisoformat(job["runAt"]) == row["run_at"]
    assert "leaseToken" not in job
    assert str(claimed.lease_token) not in str(body)


def test_detail_of_a_processing_job_shows_its_lease(jobs_api, sql, queue):
    job_id = _enqueue(sql)
    queue.claim(1, timedelta(minutes=10))
    job = _list(jobs_api, f"id={job_id}")["job"]
    assert job["status"] == "processing"
    lease = datetime.fromisoformat(job["leaseExpiresAt"]) - datetime.fromisoformat(job["lockedAt"])
    assert timedelta(minutes=9) < lease <= timedelta(minutes=10)


def test_detail_of_an_unknown_job_is_404(jobs_api):
    response = jobs_api.request("GET", query=f"id={uuid.uuid4()}", headers=admin_headers())
    assert response.status == 404
    assert response.json["error"] == "not_found"


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (coach_headers(), 403)])
def test_non_admins_cannot_read_jobs(jobs_api, sql, headers, status):
    job_id = _enqueue(sql)
    assert jobs_api.request("GET", headers=headers).status == status
    response = jobs_api.request("GET", query=f"id={job_id}", headers=headers)
    assert response.status == status
    assert job_id not in response.raw.decode()


# -- actions: cancel -------------------------------------------------------------------------


def _act(api, action, job_id, headers=None):
    return api.request(
        "POST", body={"action": action, "jobId": job_id}, headers=admin_headers() if headers is None else headers
    )


def test_cancel_a_pending_job(actions_api, worker_api, sql):
    job_id = _enqueue(sql)
    response = _act(actions_api, "cancel", job_id)
    assert response.status == 200
    assert response.json == {
        "success": True,
        "action": "cancel",
        "jobId": job_id,
        "status": "cancelled",
        "previousStatus": "pending",
    }
    assert _job(sql, job_id)["status"] == "cancelled"
    assert worker_api.request("GET", headers=cron_headers()).json["processed"] == 0
    assert recorder.runs[job_id] == 0


def test_cancel_while_processing_survives_the_workers_late_success(actions_api, worker_api, sql):
    job_id = _enqueue(sql, "test_sleep", '{"seconds": 1.5}')
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(r=worker_api.request("POST", headers=cron_headers())))
    worker.start()
    deadline = time.monotonic() + 10
    while _job(sql, job_id)["status"] != "processing":
        assert time.monotonic() < deadline, "the worker never claimed the job"
        time.sleep(0.02)

    response = _act(actions_api, "cancel", job_id)
    assert response.status == 200
    assert response.json["previousStatus"] == "processing"
    assert response.json["status"] == "cancelled"

    worker.join(30)
    [result] = outcome["r"].json["results"]
    assert result["id"] == job_id
    # The worker reports its own attempt, fenced out: not recorded; the job itself is cancelled.
    assert result["status"] == "failed"
    assert result["leaseLost"] is True
    assert result["jobStatus"] == "cancelled"
    assert result["lastError"].startswith("lease lost: the job was cancelled while it ran")
    row = _job(sql, job_id)
    assert row["status"] == "cancelled"
    assert row["output"] is None
    assert row["completed_at"] is not None
    assert recorder.runs[job_id] == 1
    # And nothing brings it back: the next worker call has nothing to do.
    assert worker_api.request("GET", headers=cron_headers()).json["processed"] == 0


def test_cancel_while_processing_survives_a_late_failure(actions_api, sql, queue):
    _enqueue(sql)
    [job] = queue.claim(1, timedelta(minutes=10))
    assert _act(actions_api, "cancel", str(job.id)).status == 200
    assert queue.mark_failed(job, "late failure", timedelta(seconds=1)) is None
    assert queue.mark_succeeded(job, {"late": True}) is None
    row = _job(sql, job.id)
    assert row["status"] == "cancelled"
    assert row["output"] is None
    assert row["last_error"] != "late failure"


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_finished_jobs_cannot_be_cancelled(actions_api, sql, status):
    job_id = _enqueue(sql)
    JobFactory(sql).stage(job_id, status)
    before = _job(sql, job_id)
    response = _act(actions_api, "cancel", job_id)
    assert response.status == 409
    assert response.json["error"] == "conflict"
    assert response.json["status"] == status
    assert status in response.json["message"]
    assert _job(sql, job_id) == before


# -- actions: retry --------------------------------------------------------------------------


def test_retry_a_failed_job_runs_it_again(actions_api, worker_api, sql):
    job_id = _enqueue(sql, max_attempts=1)
    JobFactory(sql).stage(job_id, "failed", attempts=1, last_error="boom")
    response = _act(actions_api, "retry", job_id)
    assert response.status == 200
    assert response.json == {
        "success": True,
        "action": "retry",
        "jobId": job_id,
        "status": "pending",
        "previousStatus": "failed",
    }
    row = _job(sql, job_id)
    assert row["status"] == "pending"
    assert row["max_attempts"] > row["attempts"]
    assert row["completed_at"] is None
    result = worker_api.request("GET", headers=cron_headers()).json
    assert [r["status"] for r in result["results"]] == ["succeeded"]


def test_retry_a_cancelled_job(actions_api, sql):
    job_id = _enqueue(sql)
    sql.execute("select job_queue_cancel(%s)", (job_id,))
    assert _act(actions_api, "retry", job_id).json["previousStatus"] == "cancelled"
    assert _job(sql, job_id)["status"] == "pending"


def test_retry_a_scheduled_pending_job_makes_it_due_now(actions_api, sql):
    job_id = _enqueue(sql, run_at="now() + interval '2 hours'")
    assert _act(actions_api, "retry", job_id).status == 200
    assert sql.execute("select run_at <= now() as due from job_queue where id = %s", (job_id,)).fetchone()["due"]


@pytest.mark.parametrize("status", ["processing", "succeeded"])
def test_processing_and_succeeded_jobs_cannot_be_retried(actions_api, sql, status):
    job_id = _enqueue(sql)
    JobFactory(sql).stage(job_id, status)
    before = _job(sql, job_id)
    response = _act(actions_api, "retry", job_id)
    assert response.status == 409
    assert response.json["status"] == status
    assert _job(sql, job_id) == before


def test_retry_refused_while_an_equal_job_is_live(actions_api, admin_env, serve, sql):
    trigger = serve("api/admin/jobs/trigger-sync.py")
    first = trigger.request("POST", headers=admin_headers()).json["jobId"]
    sql.execute("select job_queue_cancel(%s)", (first,))
    second = trigger.request("POST", headers=admin_headers()).json["jobId"]
    response = _act(actions_api, "retry", first)
    assert response.status == 409
    assert response.json["duplicateOf"] == second
    assert response.json["status"] == "cancelled"
    assert _job(sql, first)["status"] == "cancelled"


def _equal_finished_jobs(sql, count):
    """`count` cancelled jobs with one dedupe key, as repeated equal triggers leave them."""
    ids = []
    for _ in range(count):
        row = sql.execute("select job_id from job_queue_enqueue_unique('test_noop', '{}'::jsonb, 'k1')").fetchone()
        sql.execute("select job_queue_cancel(%s)", (row["job_id"],))
        ids.append(str(row["job_id"]))
    return ids


def _wait_until_a_statement_waits_for_a_lock(sql):
    for _ in range(1000):
        waiting = sql.execute(
            "select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
        ).fetchone()["n"]
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the retry never waited for the open transaction")


def _retry_in_background(api, job_id):
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(response=_act(api, "retry", job_id)))
    thread.start()
    return thread, answer


@pytest.mark.parametrize("rival", ["retry", "trigger"])
def test_retry_racing_an_equal_job_going_live_is_409_not_500(actions_api, sql, clean_db, rival):
    """The twin check passes, then the rival commits first: the unique index decides, and it is a 409."""
    first, second = _equal_finished_jobs(sql, 2)
    with psycopg.connect(clean_db, prepare_threshold=None) as rival_conn:
        if rival == "retry":
            rival_conn.execute("select job_queue_retry(%s)", (first,))
            live = first
        else:
            live = str(
                rival_conn.execute(
                    "select job_id from job_queue_enqueue_unique('test_noop', '{}'::jsonb, 'k1')"
                ).fetchone()[0]
            )
        thread, answer = _retry_in_background(actions_api, second)
        _wait_until_a_statement_waits_for_a_lock(sql)
        rival_conn.commit()
    thread.join(30)
    response = answer["response"]
    assert response.status == 409, response.json
    assert response.json["duplicateOf"] == live
    assert response.json["status"] == "cancelled"
    assert _job(sql, second)["status"] == "cancelled"


def test_concurrent_retries_of_equal_jobs_revive_exactly_one(actions_api, sql):
    jobs = _equal_finished_jobs(sql, 12)
    barrier = threading.Barrier(len(jobs))
    answers = {}

    def retry(job_id):
        barrier.wait()
        answers[job_id] = _act(actions_api, "retry", job_id)

    threads = [threading.Thread(target=retry, args=(job_id,)) for job_id in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    statuses = sorted(answer.status for answer in answers.values())
    assert statuses == [200] + [409] * (len(jobs) - 1)
    [revived] = [job_id for job_id, answer in answers.items() if answer.status == 200]
    assert {answer.json["duplicateOf"] for answer in answers.values() if answer.status == 409} == {revived}
    live = sql.execute("select id from job_queue where status in ('pending', 'processing')").fetchall()
    assert [str(row["id"]) for row in live] == [revived]


# -- actions: bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"action": "purge", "jobId": "00000000-0000-4000-8000-000000000001"}, id="unknown-action"),
        pytest.param({"action": "RETRY", "jobId": "00000000-0000-4000-8000-000000000001"}, id="wrong-case"),
        pytest.param({"action": "retry"}, id="missing-jobId"),
        pytest.param({"jobId": "00000000-0000-4000-8000-000000000001"}, id="missing-action"),
        pytest.param({"action": "retry", "jobId": "42"}, id="malformed-jobId"),
        pytest.param({"action": "retry", "jobId": 42}, id="numeric-jobId"),
        pytest.param({"action": "cancel", "jobId": "00000000-0000-4000-8000-000000000001", "x": 1}, id="extra"),
        pytest.param(b"{bad", id="malformed-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'["retry"]', id="array"),
    ],
)
def test_bad_action_body_is_400_and_changes_nothing(actions_api, sql, body):
    job_id = _enqueue(sql)
    before = _job(sql, job_id)
    response = actions_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400, response.json
    assert _job(sql, job_id) == before


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_action_on_an_unknown_job_is_404(actions_api, action):
    response = _act(actions_api, action, str(uuid.uuid4()))
    assert response.status == 404
    assert response.json["error"] == "not_found"


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (coach_headers(), 403)])
@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_non_admins_cannot_act(actions_api, sql, headers, status, action):
    job_id = _enqueue(sql)
    before = _job(sql, job_id)
    assert _act(actions_api, action, job_id, headers=headers).status == status
    assert _job(sql, job_id) == before


# -- cost ---------------------------------------------------------------------------------


def test_listing_pages_read_an_index_not_the_whole_table(sql):
    """Deep pages of a big history cost an index range each: no sequential scan, few tuples read."""
    sql.execute(
        "insert into job_queue (task_type, status, created_at, completed_at)"
        " select (array['sync', 'sweep'])[1 + g % 2], (array['succeeded', 'failed', 'cancelled'])[1 + g % 3],"
        "        now() - g * interval '1 second', now()"
        "   from generate_series(1, 30000) g"
    )
    sql.execute("vacuum analyze job_queue")
    queue = Queue(Database(sql, 30))
    deep = queue.list_jobs(limit=50, after=queue.list_jobs(limit=100).next_cursor)
    deep_failed = queue.list_jobs(
        status="failed", limit=50, after=queue.list_jobs(status="failed", limit=100).next_cursor
    )

    def counters():
        sql.execute("select pg_stat_force_next_flush()")
        sql.execute("select pg_stat_clear_snapshot()")
        return sql.execute(
            "select seq_scan, coalesce(idx_tup_fetch, 0) as fetched"
            " from pg_stat_user_tables where relname = 'job_queue'"
        ).fetchone()

    before = counters()
    for kwargs in (
        {"limit": 50, "after": deep.next_cursor},
        {"status": "failed", "limit": 50, "after": deep_failed.next_cursor},
        {"task_type": "sync", "limit": 50},
    ):
        page = queue.list_jobs(**kwargs)
        assert len(page.jobs) == 50
    sql.execute("select 1")
    after = counters()
    assert after["seq_scan"] == before["seq_scan"]
    # The planner may walk the creation-order index and filter (here a third of the rows match), but a
    # page never costs more than a few pages' worth of rows, however deep it is and however big the table.
    assert after["fetched"] - before["fetched"] < 1000
