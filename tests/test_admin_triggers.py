"""POST /api/admin/jobs/trigger-sync and /trigger-totals-sweep through their real handlers."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from tests.support.tokens import admin_headers, coach_headers

SYNC = "api/admin/jobs/trigger-sync.py"
SWEEP = "api/admin/jobs/trigger-totals-sweep.py"


@pytest.fixture
def sync_api(admin_env, serve):
    return serve(SYNC)


@pytest.fixture
def sweep_api(admin_env, serve):
    return serve(SWEEP)


SYNC_DEFAULTS = {"dryRun": False, "coachId": None, "forceFullSync": False, "forceFlashCtfSync": False}
SWEEP_DEFAULTS = {"dryRun": False, "coachId": None, "batchSize": 100, "forceAll": False}


def _jobs(sql):
    return sql.execute("select task_type, payload, status, run_at <= now() as due from job_queue").fetchall()


# -- enqueue -----------------------------------------------------------------------


def test_sync_with_empty_body_enqueues_defaults(sync_api, sql):
    response = sync_api.request("POST", headers=admin_headers())
    assert response.status == 200
    body = response.json
    assert body == {"success": True, "jobId": body["jobId"], "message": "Incremental sync job enqueued successfully"}
    row = sql.execute("select * from job_queue where id = %s", (body["jobId"],)).fetchone()
    assert row["task_type"] == "game_platform_sync"
    assert row["payload"] == SYNC_DEFAULTS
    assert row["status"] == "pending"
    assert _jobs(sql)[0]["due"] is True


def test_sync_with_every_field(sync_api, sql):
    coach = uuid.uuid4()
    response = sync_api.request("POST", body={"dryRun": True, "coachId": str(coach).upper()}, headers=admin_headers())
    assert response.status == 200
    assert _jobs(sql)[0]["payload"] == {**SYNC_DEFAULTS, "dryRun": True, "coachId": str(coach)}


def test_sync_with_empty_json_object(sync_api, sql):
    assert sync_api.request("POST", body={}, headers=admin_headers()).status == 200
    assert _jobs(sql)[0]["payload"] == SYNC_DEFAULTS


def test_sweep_with_empty_body_enqueues_defaults(sweep_api, sql):
    response = sweep_api.request("POST", headers=admin_headers())
    assert response.status == 200
    assert response.json["message"] == "Totals sweep job enqueued successfully"
    assert response.json["success"] is True
    assert "deduplicated" not in response.json
    jobs = _jobs(sql)
    assert [(j["task_type"], j["payload"]) for j in jobs] == [("game_platform_totals_sweep", SWEEP_DEFAULTS)]


@pytest.mark.parametrize("batch_size", [1, 250, 1000])
def test_sweep_batch_size_bounds_are_accepted(sweep_api, sql, batch_size):
    coach = str(uuid.uuid4())
    body = {"dryRun": True, "coachId": coach, "batchSize": batch_size}
    assert sweep_api.request("POST", body=body, headers=admin_headers()).status == 200
    assert _jobs(sql)[0]["payload"] == {**SWEEP_DEFAULTS, **body}


def test_sync_accepts_its_force_options(sync_api, sql):
    body = {"forceFullSync": True, "forceFlashCtfSync": True}
    assert sync_api.request("POST", body=body, headers=admin_headers()).status == 200
    assert _jobs(sql)[0]["payload"] == {**SYNC_DEFAULTS, **body}


def test_sweep_accepts_force_all(sweep_api, sql):
    assert sweep_api.request("POST", body={"forceAll": True}, headers=admin_headers()).status == 200
    assert _jobs(sql)[0]["payload"] == {**SWEEP_DEFAULTS, "forceAll": True}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (SYNC, {"forceFullSync": "true"}, "forceFullSync"),
        (SYNC, {"forceFlashCtfSync": 1}, "forceFlashCtfSync"),
        (SYNC, {"forceAll": True}, "forceAll"),
        (SWEEP, {"forceAll": None}, "forceAll"),
        (SWEEP, {"forceFullSync": True}, "forceFullSync"),
    ],
)
def test_force_options_are_validated_like_the_others(admin_env, serve, sql, path, body, field):
    response = serve(path).request("POST", body=body, headers=admin_headers())
    assert response.status == 400
    assert response.json["error"] == "invalid_request"
    assert {d["field"] for d in response.json["details"]} == {field}
    assert _jobs(sql) == []


# -- validation: 400 and nothing enqueued --------------------------------------------

COMMON_BAD_BODIES = [
    pytest.param(b"{not json", "invalid_json", id="malformed-json"),
    pytest.param(b"[]", "invalid_request", id="array"),
    pytest.param(b'"sync"', "invalid_request", id="string"),
    pytest.param(b"null", "invalid_request", id="null"),
    pytest.param(b"42", "invalid_request", id="number"),
    pytest.param({"dryRun": "true"}, "invalid_request", id="dryRun-string"),
    pytest.param({"dryRun": 1}, "invalid_request", id="dryRun-number"),
    pytest.param({"dryRun": None}, "invalid_request", id="dryRun-null"),
    pytest.param({"coachId": "not-a-uuid"}, "invalid_request", id="coachId-bad-uuid"),
    pytest.param({"coachId": 12}, "invalid_request", id="coachId-number"),
    pytest.param({"coachId": ""}, "invalid_request", id="coachId-empty"),
    pytest.param({"dry_run": True}, "invalid_request", id="snake-case-name"),
    pytest.param({"dryRun": False, "force": True}, "invalid_request", id="unknown-field"),
]

SWEEP_BAD_BODIES = [
    pytest.param({"batchSize": 0}, "invalid_request", id="batchSize-0"),
    pytest.param({"batchSize": 1001}, "invalid_request", id="batchSize-1001"),
    pytest.param({"batchSize": "x"}, "invalid_request", id="batchSize-x"),
    pytest.param({"batchSize": "100"}, "invalid_request", id="batchSize-numeric-string"),
    pytest.param({"batchSize": 10.5}, "invalid_request", id="batchSize-fraction"),
    pytest.param({"batchSize": -1}, "invalid_request", id="batchSize-negative"),
    pytest.param({"batchSize": True}, "invalid_request", id="batchSize-bool"),
    pytest.param({"batchSize": None}, "invalid_request", id="batchSize-null"),
]


@pytest.mark.parametrize(("body", "error"), COMMON_BAD_BODIES)
def test_bad_sync_body_is_400_and_enqueues_nothing(sync_api, sql, body, error):
    response = sync_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400, response.json
    assert response.json["error"] == error
    assert response.json["message"]
    assert _jobs(sql) == []


@pytest.mark.parametrize(("body", "error"), COMMON_BAD_BODIES + SWEEP_BAD_BODIES)
def test_bad_sweep_body_is_400_and_enqueues_nothing(sweep_api, sql, body, error):
    response = sweep_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400, response.json
    assert response.json["error"] == error
    assert _jobs(sql) == []


def test_batch_size_is_not_a_sync_field(sync_api, sql):
    response = sync_api.request("POST", body={"batchSize": 100}, headers=admin_headers())
    assert response.status == 400
    assert [d["field"] for d in response.json["details"]] == ["batchSize"]
    assert _jobs(sql) == []


def test_each_bad_field_is_listed(sweep_api):
    body = {"dryRun": "no", "coachId": "x", "batchSize": 0, "extra": 1}
    response = sweep_api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400
    assert {d["field"] for d in response.json["details"]} == {"dryRun", "coachId", "batchSize", "extra"}


def test_get_is_405(sync_api, sql):
    response = sync_api.request("GET", headers=admin_headers())
    assert response.status == 405
    assert response.headers["allow"] == "POST"
    assert _jobs(sql) == []


@pytest.mark.parametrize("path", [SYNC, SWEEP])
@pytest.mark.parametrize(("headers", "status"), [({}, 401), (coach_headers(), 403)])
def test_non_admins_enqueue_nothing(admin_env, serve, sql, path, headers, status):
    response = serve(path).request("POST", body={}, headers=headers)
    assert response.status == status
    assert _jobs(sql) == []


def test_auth_is_checked_before_the_body(sync_api):
    assert sync_api.request("POST", body=b"{oops", headers=coach_headers()).status == 403


# -- deduplication ---------------------------------------------------------------------


def test_equal_trigger_while_pending_returns_the_same_job(sync_api, sql):
    first = sync_api.request("POST", body={}, headers=admin_headers()).json
    second = sync_api.request("POST", body={"dryRun": False, "coachId": None}, headers=admin_headers())
    assert second.status == 200
    assert second.json == {
        "success": True,
        "jobId": first["jobId"],
        "message": "deduplicated: an equal job is already queued",
        "deduplicated": True,
    }
    assert len(_jobs(sql)) == 1


def test_equal_trigger_while_processing_returns_the_same_job(sync_api, sql, queue):
    first = sync_api.request("POST", headers=admin_headers()).json["jobId"]
    assert [str(j.id) for j in queue.claim(5, timedelta(minutes=5))] == [first]
    second = sync_api.request("POST", headers=admin_headers()).json
    assert second["jobId"] == first
    assert second["deduplicated"] is True
    assert second["message"] == "deduplicated: an equal job is already queued"


def test_a_deduplicated_sweep_says_so_too(sweep_api, sql):
    first = sweep_api.request("POST", body={"batchSize": 50}, headers=admin_headers()).json
    second = sweep_api.request("POST", body={"batchSize": 50}, headers=admin_headers()).json
    assert first["message"] == "Totals sweep job enqueued successfully"
    assert (second["jobId"], second["message"], second["deduplicated"]) == (
        first["jobId"],
        "deduplicated: an equal job is already queued",
        True,
    )


def test_trigger_after_the_job_finished_enqueues_a_new_one(sync_api, sql):
    first = sync_api.request("POST", headers=admin_headers()).json["jobId"]
    sql.execute("select job_queue_cancel(%s)", (first,))
    second = sync_api.request("POST", headers=admin_headers()).json
    assert second["jobId"] != first
    assert "deduplicated" not in second


def test_different_payloads_are_different_jobs(sync_api, sweep_api, sql):
    headers = admin_headers()
    ids = {
        sync_api.request("POST", body={}, headers=headers).json["jobId"],
        sync_api.request("POST", body={"dryRun": True}, headers=headers).json["jobId"],
        sync_api.request("POST", body={"coachId": str(uuid.uuid4())}, headers=headers).json["jobId"],
        sweep_api.request("POST", body={}, headers=headers).json["jobId"],
        sweep_api.request("POST", body={"batchSize": 50}, headers=headers).json["jobId"],
    }
    assert len(ids) == 5
    assert len(_jobs(sql)) == 5


def test_dedupe_key_matches_what_sql_callers_compute(sync_api, sql):
    """pg_cron and the CLI dedupe through job_queue_payload_key of the same payload."""
    job_id = sync_api.request("POST", headers=admin_headers()).json["jobId"]
    row = sql.execute(
        "select dedupe_key = job_queue_payload_key("
        '\'{"coachId": null, "dryRun": false, "forceFullSync": false, "forceFlashCtfSync": false}\'::jsonb) as same'
        " from job_queue where id = %s",
        (job_id,),
    ).fetchone()
    assert row["same"] is True


@pytest.mark.parametrize("path", [SYNC, SWEEP])
def test_six_concurrent_equal_triggers_create_exactly_one_job(admin_env, serve, sql, path):
    api = serve(path)
    headers = admin_headers()
    barrier = threading.Barrier(6)
    responses = []
    lock = threading.Lock()

    def trigger() -> None:
        barrier.wait()
        response = api.request("POST", body={"dryRun": True}, headers=headers)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=trigger) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.status for r in responses] == [200] * 6
    assert len({r.json["jobId"] for r in responses}) == 1
    assert sorted(r.json.get("deduplicated", False) for r in responses) == [False] + [True] * 5
    assert len(_jobs(sql)) == 1
