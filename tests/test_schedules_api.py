"""GET|POST /api/admin/job-queue/schedules through the real handler: list, change, create; auth and validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from psycopg.types.json import Jsonb

from lib.game_platform.payloads import SyncRequest
from tests.support.secrets import runner_headers
from tests.support.tokens import admin_headers, coach_headers

SCHEDULES = "api/admin/job-queue/schedules.py"
SYNC_DEFAULTS = SyncRequest().to_payload()


@pytest.fixture
def api(admin_env, serve, sql):
    sql.execute(
        "insert into job_queue_schedules (name, task_type, payload, cron, next_run_at) values"
        " ('game_platform_sync', 'game_platform_sync', %s, '*/30 * * * *', job_queue_cron_next('*/30 * * * *', now()))",
        (Jsonb(SYNC_DEFAULTS),),
    )
    return serve(SCHEDULES)


def _row(sql, name="game_platform_sync"):
    return sql.execute("select * from job_queue_schedules where name = %s", (name,)).fetchone()


def test_list_shows_each_schedule_with_its_next_and_last_run(api, sql):
    response = api.request("GET", headers=admin_headers())
    assert response.status == 200
    [schedule] = response.json["schedules"]
    row = _row(sql)
    assert schedule == {
        "name": "game_platform_sync",
        "taskType": "game_platform_sync",
        "payload": SYNC_DEFAULTS,
        "cron": "*/30 * * * *",
        "enabled": True,
        "nextRunAt": row["next_run_at"].isoformat(),
        "lastEnqueuedAt": None,
        "lastJobId": None,
    }


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_a_session_is_401_and_a_coach_is_403(api, sql, method):
    body = {"name": "game_platform_sync", "enabled": False} if method == "POST" else None
    assert api.request(method, body=body).status == 401
    assert api.request(method, body=body, headers=runner_headers()).status == 401
    assert api.request(method, body=body, headers=coach_headers()).status == 403
    assert _row(sql)["enabled"] is True


def test_disable_then_enable_sets_the_next_slot_from_now(api, sql):
    sql.execute("update job_queue_schedules set next_run_at = now() - interval '1 day'")
    response = api.request("POST", body={"name": "game_platform_sync", "enabled": False}, headers=admin_headers())
    assert response.status == 200
    assert response.json["schedule"]["enabled"] is False
    assert response.json["created"] is False
    response = api.request("POST", body={"name": "game_platform_sync", "enabled": True}, headers=admin_headers())
    assert response.status == 200
    assert datetime.fromisoformat(response.json["schedule"]["nextRunAt"]) > datetime.now(UTC)


def test_a_new_cron_moves_the_next_slot(api, sql):
    response = api.request("POST", body={"name": "game_platform_sync", "cron": "5 4 * * sun"}, headers=admin_headers())
    assert response.status == 200
    row = _row(sql)
    assert row["cron"] == "5 4 * * sun"
    slot = row["next_run_at"].astimezone(UTC)
    assert (slot.weekday(), slot.hour, slot.minute) == (6, 4, 5)
    assert slot > datetime.now(UTC)


def test_a_payload_is_stored_with_its_defaults_filled_in(api, sql):
    response = api.request(
        "POST", body={"name": "game_platform_sync", "payload": {"dryRun": True}}, headers=admin_headers()
    )
    assert response.status == 200
    assert _row(sql)["payload"] == {**SYNC_DEFAULTS, "dryRun": True}


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"name": "game_platform_sync", "cron": "61 * * * *"}, "cron", "outside 0-59"),
        ({"name": "game_platform_sync", "cron": "* * * *"}, "cron", "five fields"),
        ({"name": "game_platform_sync", "cron": "0 0 30 2 *"}, "cron", "matches no date"),
        ({"name": "game_platform_sync", "payload": {"dryRun": "yes"}}, "payload.dryRun", "boolean"),
        ({"name": "game_platform_sync", "payload": {"nope": 1}}, "payload.nope", "not permitted"),
        ({"name": "game_platform_sync", "payload": {"cursor": None}}, "payload.cursor", "handler itself"),
        ({"name": "game_platform_sync", "enabled": "yes"}, "enabled", "boolean"),
        ({"name": "Bad Name", "enabled": True}, "name", "pattern"),
        ({"name": "game_platform_sync", "when": "now"}, "when", "Extra inputs"),
        ({"name": "new-one", "taskType": "no_such_task", "cron": "* * * * *"}, "taskType", "unknown task type"),
        ({"name": "new-one", "taskType": "job_queue_cleanup"}, "cron", "needs a cron"),
        (
            {"name": "new-one", "taskType": "job_queue_cleanup", "cron": "0 0 * * *", "payload": {"olderThanDays": -1}},
            "payload.olderThanDays",
            "greater than or equal",
        ),
    ],
)
def test_invalid_fields_are_a_400_naming_them_and_change_nothing(api, sql, body, field, says):
    before = _row(sql)
    response = api.request("POST", body=body, headers=admin_headers())
    assert response.status == 400, response.json
    assert response.json["error"] == "invalid_request"
    detail = next(d for d in response.json["details"] if d["field"] == field)
    assert says in detail["message"]
    assert _row(sql) == before
    assert _row(sql, "new-one") is None


def test_an_unknown_name_without_task_type_is_404(api):
    response = api.request("POST", body={"name": "nightly", "enabled": False}, headers=admin_headers())
    assert response.status == 404
    assert "taskType" in response.json["message"]


def test_the_task_type_of_a_schedule_cannot_change(api, sql):
    body = {"name": "game_platform_sync", "taskType": "job_queue_cleanup"}
    response = api.request("POST", body=body, headers=admin_headers())
    assert response.status == 409
    assert _row(sql)["task_type"] == "game_platform_sync"


def test_create_a_schedule_then_the_worker_keeps_it(api, sql):
    body = {"name": "weekly-cleanup", "taskType": "job_queue_cleanup", "cron": "0 4 * * 1"}
    response = api.request("POST", body=body, headers=admin_headers())
    assert response.status == 201
    created = response.json["schedule"]
    assert response.json["created"] is True
    assert created["payload"] == {"olderThanDays": 30}
    assert created["enabled"] is True
    listed = api.request("GET", headers=admin_headers()).json["schedules"]
    assert [s["name"] for s in listed] == ["game_platform_sync", "weekly-cleanup"]


def test_unknown_query_parameters_are_a_400(api):
    assert api.request("GET", query="x=1", headers=admin_headers()).status == 400
