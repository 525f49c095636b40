"""The operator CLI (scripts/jobs.py) against a real database, through the bundle's own queue code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lib.jobs.registry import TaskRegistry
from scripts import jobs as cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_cli(
    app_env: Callable[..., None], test_tasks: TaskRegistry, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Any]:
    """Run the CLI in-process; return (exit code, parsed --json output)."""

    def run(*argv: str) -> tuple[int, Any]:
        capsys.readouterr()
        try:
            code = cli.main(["--json", *argv], registry=test_tasks)
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return run


def insert_job(sql: psycopg.Connection, task_type: str = "test_noop", **columns: Any) -> str:
    values = {"task_type": task_type, **columns}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = sql.execute(f"insert into job_queue ({names}) values ({marks}) returning id", list(values.values()))
    return str(row.fetchone()["id"])


def status_of(sql: psycopg.Connection, job_id: str) -> str:
    return sql.execute("select status from job_queue where id = %s", (job_id,)).fetchone()["status"]


# -- enqueue ---------------------------------------------------------------------


def test_enqueue_adds_a_due_job_with_the_given_payload(run_cli, sql) -> None:
    code, out = run_cli("enqueue", "test_noop", "--payload", '{"n": 1}')
    assert code == 0
    row = sql.execute("select task_type, payload, status, run_at <= now() as due from job_queue").fetchone()
    assert row == {"task_type": "test_noop", "payload": {"n": 1}, "status": "pending", "due": True}
    assert out["deduplicated"] is False


def test_enqueue_fills_defaults_like_the_admin_trigger_and_dedupes_against_it(run_cli, sql) -> None:
    from lib.game_platform.payloads import SyncRequest

    code, first = run_cli("enqueue", "game_platform_sync")
    assert code == 0
    assert first["payload"] == SyncRequest().to_payload()
    assert first["payload"] == {"dryRun": False, "coachId": None, "forceFullSync": False, "forceFlashCtfSync": False}
    code, second = run_cli("enqueue", "game_platform_sync")
    assert (code, second["deduplicated"], second["jobId"]) == (0, True, first["jobId"])
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 1


def test_enqueue_accepts_and_validates_the_game_platform_options(run_cli, sql) -> None:
    code, out = run_cli("enqueue", "game_platform_totals_sweep", "--payload", '{"forceAll": true, "batchSize": 20}')
    assert code == 0
    assert out["payload"] == {"dryRun": False, "coachId": None, "batchSize": 20, "forceAll": True}
    code, out = run_cli("enqueue", "game_platform_sync", "--payload", '{"forceFullSync": true}')
    assert code == 0
    assert out["payload"]["forceFullSync"] is True
    assert out["payload"]["forceFlashCtfSync"] is False
    code, _ = run_cli("enqueue", "game_platform_sync", "--payload", '{"forceFlashCtfSync": "yes"}')
    assert code == 2
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 2


def test_enqueue_no_dedupe_always_adds(run_cli, sql) -> None:
    run_cli("enqueue", "test_noop")
    code, out = run_cli("enqueue", "test_noop", "--no-dedupe")
    assert (code, out["deduplicated"]) == (0, False)
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 2


def test_enqueue_run_at_in_the_future_is_not_run_yet(run_cli, sql) -> None:
    code, _out = run_cli("enqueue", "test_noop", "--run-at", "+2h")
    assert code == 0
    assert sql.execute("select run_at > now() + interval '1 hour' as later from job_queue").fetchone()["later"]
    code, ran = run_cli("run")
    assert (code, ran["processed"]) == (0, 0)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["enqueue", "no_such_type"], "unknown task type"),
        (["enqueue", "game_platform_totals_sweep", "--payload", '{"batchSize": 0}'], "batchSize"),
        (["enqueue", "game_platform_sync", "--payload", '{"surprise": 1}'], "surprise"),
        (["enqueue", "game_platform_sync", "--payload", '{"cursor": null}'], "set by the game_platform_sync handler"),
    ],
)
def test_enqueue_refuses_unknown_types_and_invalid_payloads_with_exit_2(run_cli, sql, argv, needle) -> None:
    code, out = run_cli(*argv)
    assert code == 2
    assert needle in out["error"]
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 0


def test_malformed_arguments_exit_2(run_cli) -> None:
    assert run_cli("enqueue", "test_noop", "--payload", "{not json")[0] == 2
    assert run_cli("show", "not-a-uuid")[0] == 2
    assert run_cli("run", "--limit", "0")[0] == 2


# -- run -----------------------------------------------------------------------


def test_run_drains_through_the_worker_and_exits_1_when_a_job_failed(run_cli, sql) -> None:
    ok = insert_job(sql, "test_noop")
    bad = insert_job(sql, "test_permanent")
    code, out = run_cli("run", "--limit", "10")
    assert code == 1
    assert {r["id"]: r["status"] for r in out["results"]} == {ok: "succeeded", bad: "failed"}
    assert (status_of(sql, ok), status_of(sql, bad)) == ("succeeded", "failed")
    run = sql.execute("select trigger_source, processed from job_queue_invocations").fetchone()
    assert run == {"trigger_source": "cli", "processed": 2}


def test_run_exits_0_when_every_job_succeeded(run_cli, sql) -> None:
    insert_job(sql, "test_noop")
    code, out = run_cli("run")
    assert (code, out["succeeded"], out["failed"]) == (0, 1, 0)


def test_run_respects_the_pause_switch_unless_forced(run_cli, sql) -> None:
    job = insert_job(sql, "test_noop")
    assert run_cli("pause", "--reason", "vendor maintenance")[0] == 0
    code, out = run_cli("run")
    assert (code, out) == (0, {"status": "paused", "processed": 0, "reason": "vendor maintenance"})
    assert status_of(sql, job) == "pending"
    code, out = run_cli("run", "--force")
    assert (code, out["succeeded"]) == (0, 1)


# -- status, list, show ------------------------------------------------------------


def test_status_is_the_health_report_and_exits_0_when_healthy(run_cli, sql) -> None:
    insert_job(sql, "test_noop", status="succeeded", completed_at="now()")
    code, out = run_cli("status")
    assert code == 0
    assert out["healthy"] is True
    assert out["queueCounts"] == {"pending": 0, "processing": 0, "succeeded": 1, "failed": 0, "cancelled": 0}


def test_status_exits_1_and_names_the_problem_when_unhealthy(run_cli, sql, capsys) -> None:
    insert_job(sql, "test_noop", run_at="2000-01-01T00:00:00Z")
    code, out = run_cli("status")
    assert code == 1
    assert out["healthy"] is False
    assert any("waited" in p for p in out["problems"])
    # The terminal rendering says the same.
    assert cli.main(["status"]) == 1
    text = capsys.readouterr().out
    assert "UNHEALTHY" in text
    assert "1 pending" in text


def test_list_filters_by_status_newest_first(run_cli, sql) -> None:
    old = insert_job(sql, "test_noop", status="failed", created_at="2026-01-01T00:00:00Z", completed_at="now()")
    new = insert_job(sql, "test_boom", status="failed", created_at="2026-02-01T00:00:00Z", completed_at="now()")
    insert_job(sql, "test_noop")
    code, out = run_cli("list", "--status", "failed")
    assert code == 0
    assert [j["id"] for j in out["jobs"]] == [new, old]
    code, out = run_cli("list", "--type", "test_boom")
    assert [j["id"] for j in out["jobs"]] == [new]


def test_show_prints_one_job_in_full_and_exits_3_for_an_unknown_id(run_cli, sql) -> None:
    job = insert_job(sql, "test_noop", payload=json.dumps({"k": "v"}), last_error="boom")
    code, out = run_cli("show", job)
    assert code == 0
    assert (out["id"], out["payload"], out["last_error"]) == (job, {"k": "v"}, "boom")
    code, out = run_cli("show", "00000000-0000-4000-8000-000000000000")
    assert code == 3
    assert "no job" in out["error"]


# -- operator actions --------------------------------------------------------------


def test_pause_and_resume_flip_the_switch(run_cli, sql) -> None:
    code, out = run_cli("pause", "--reason", "deploying")
    assert (code, out["processing_enabled"], out["paused_reason"]) == (0, False, "deploying")
    code, out = run_cli("resume")
    assert (code, out["processing_enabled"], out["paused_reason"]) == (0, True, None)
    row = sql.execute("select processing_enabled from job_queue_settings").fetchone()
    assert row["processing_enabled"] is True


def test_pause_requires_a_reason(run_cli) -> None:
    assert run_cli("pause")[0] == 2


def test_an_empty_reason_is_shown_as_none(run_cli, capsys) -> None:
    code, out = run_cli("pause", "--reason", "")
    assert (code, out["paused_reason"]) == (0, None)
    assert cli.main(["pause", "--reason", "  "]) == 0
    text = capsys.readouterr().out
    assert "no reason given" in text
    assert "None" not in text


def test_retry_puts_a_failed_job_back_and_refuses_a_succeeded_one(run_cli, sql) -> None:
    failed = insert_job(sql, "test_noop", status="failed", attempts=5, max_attempts=5, completed_at="now()")
    done = insert_job(sql, "test_noop", status="succeeded", completed_at="now()")
    code, out = run_cli("retry", failed)
    assert (code, out["status"], out["previous_status"]) == (0, "pending", "failed")
    assert status_of(sql, failed) == "pending"
    code, out = run_cli("retry", done)
    assert code == 4
    assert "succeeded" in out["error"]
    assert run_cli("retry", "00000000-0000-4000-8000-000000000000")[0] == 3


def test_cancel_stops_a_pending_job_once(run_cli, sql) -> None:
    job = insert_job(sql, "test_noop")
    code, out = run_cli("cancel", job, "--reason", "not needed")
    assert (code, out["status"]) == (0, "cancelled")
    assert sql.execute("select last_error from job_queue").fetchone()["last_error"] == "not needed"
    code, out = run_cli("cancel", job)
    assert code == 4
    assert "already cancelled" in out["error"]


def test_cleanup_removes_finished_jobs_past_the_age(run_cli, sql) -> None:
    insert_job(sql, "test_noop", status="succeeded", completed_at="2000-01-01T00:00:00Z")
    recent = insert_job(sql, "test_noop", status="succeeded", completed_at="now()")
    code, out = run_cli("cleanup", "--older-than", "7d", "--yes")
    assert (code, out["removed"]) == (0, 1)
    remaining = [str(r["id"]) for r in sql.execute("select id from job_queue").fetchall()]
    assert remaining == [recent]


def test_cleanup_of_the_default_window_or_more_does_not_ask(run_cli, sql) -> None:
    insert_job(sql, "test_noop", status="succeeded", completed_at="2000-01-01T00:00:00Z")
    assert run_cli("cleanup")[1]["removed"] == 1
    insert_job(sql, "test_noop", status="succeeded", completed_at="2000-01-01T00:00:00Z")
    assert run_cli("cleanup", "--older-than", "60d")[1]["removed"] == 1


def test_cleanup_inside_the_default_window_refuses_without_a_terminal_or_yes(run_cli, sql) -> None:
    insert_job(sql, "test_noop", status="succeeded", completed_at="now()")
    code, out = run_cli("cleanup", "--older-than", "0d")
    assert code == 2
    assert "--yes" in out["error"]
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == 1


class _Terminal:
    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


@pytest.mark.parametrize(("answer", "code", "left"), [("y\n", 0, 0), ("\n", 2, 1), ("no\n", 2, 1)])
def test_cleanup_inside_the_default_window_asks_at_a_terminal(run_cli, sql, monkeypatch, answer, code, left) -> None:
    insert_job(sql, "test_noop", status="succeeded", completed_at=datetime.now(UTC) - timedelta(hours=1))
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    assert run_cli("cleanup", "--older-than", "1m")[0] == code
    assert sql.execute("select count(*) as n from job_queue").fetchone()["n"] == left


# -- as operators run it -------------------------------------------------------------


def _script(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "jobs.py"), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",  # the script must find `lib` by itself
        timeout=60,
        check=False,
    )


def test_the_script_runs_from_anywhere_and_exits_5_without_a_database(clean_db: str, tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_URL")}
    base["JOB_QUEUE_DEV_DIR"] = str(tmp_path / "no-dev-server-here")
    missing = _script("status", env=base)
    assert missing.returncode == 5
    assert "DATABASE_URL" in missing.stderr

    unreachable = _script("status", env={**base, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert unreachable.returncode == 5
    assert "unreachable" in unreachable.stderr

    ok = _script("--json", "status", env={**base, "DATABASE_URL": clean_db})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["healthy"] is True


def test_a_reader_that_leaves_early_is_no_error(clean_db: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": clean_db}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "jobs.py"), "status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    process.stdout.close()  # like `| head` that has read enough: the script's output meets a closed pipe
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in stderr
    assert b"BrokenPipe" not in stderr


# -- schedules -------------------------------------------------------------------


@pytest.fixture
def a_schedule(sql) -> str:
    sql.execute(
        "insert into job_queue_schedules (name, task_type, payload, cron, next_run_at)"
        " values ('nightly', 'test_noop', '{\"n\": 1}', '0 2 * * *', job_queue_cron_next('0 2 * * *', now()))"
    )
    return "nightly"


def schedule_row(sql: psycopg.Connection, name: str) -> dict[str, Any]:
    return sql.execute("select * from job_queue_schedules where name = %s", (name,)).fetchone()


def test_schedules_list_shows_next_and_last_run(run_cli, a_schedule, sql) -> None:
    code, out = run_cli("schedules", "list")
    assert code == 0
    [listed] = out["schedules"]
    assert listed["name"] == "nightly"
    assert listed["cron"] == "0 2 * * *"
    assert listed["nextRunAt"] == schedule_row(sql, "nightly")["next_run_at"].isoformat()


def test_schedules_disable_and_enable(run_cli, a_schedule, sql) -> None:
    assert run_cli("schedules", "disable", "nightly")[0] == 0
    assert schedule_row(sql, "nightly")["enabled"] is False
    code, out = run_cli("schedules", "enable", "nightly")
    assert code == 0
    assert out["enabled"] is True
    assert schedule_row(sql, "nightly")["enabled"] is True


def test_schedules_set_cron_validates_in_the_database(run_cli, a_schedule, sql) -> None:
    code, out = run_cli("schedules", "set-cron", "nightly", "*/15 * * * *")
    assert code == 0
    assert out["cron"] == "*/15 * * * *"
    code, out = run_cli("schedules", "set-cron", "nightly", "*/15 * * *")
    assert code == cli.EXIT_USAGE
    assert "five fields" in out["error"]
    assert schedule_row(sql, "nightly")["cron"] == "*/15 * * * *"


def test_schedules_run_now_enqueues_once_and_keeps_the_next_slot(run_cli, a_schedule, sql) -> None:
    before = schedule_row(sql, "nightly")["next_run_at"]
    code, first = run_cli("schedules", "run-now", "nightly")
    assert code == 0
    assert first["deduplicated"] is False
    code, again = run_cli("schedules", "run-now", "nightly")
    assert (again["deduplicated"], again["jobId"]) == (True, first["jobId"])
    row = schedule_row(sql, "nightly")
    assert str(row["last_job_id"]) == first["jobId"]
    assert row["next_run_at"] == before
    jobs = sql.execute("select payload, status from job_queue").fetchall()
    assert jobs == [{"payload": {"n": 1}, "status": "pending"}]


@pytest.mark.parametrize("action", [["enable"], ["disable"], ["set-cron", "* * * * *"], ["run-now"]])
def test_schedules_of_an_unknown_name_exit_3(run_cli, action) -> None:
    argv = ["schedules", action[0], "no-such-schedule", *action[1:]]
    code, out = run_cli(*argv)
    assert code == cli.EXIT_NOT_FOUND
    assert "no-such-schedule" in out["error"]
