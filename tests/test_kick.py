"""The kick: a trigger, a retry or the CLI's enqueue starts the worker at once, and a failed kick changes nothing."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from lib.kick import kick_worker
from lib.settings import load_settings
from scripts import jobs as cli
from tests.support.secrets import RUNNER_SECRET
from tests.support.tokens import admin_headers

SYNC = "api/admin/jobs/trigger-sync.py"
ACTIONS = "api/admin/job-queue/actions.py"
WORKER = "api/jobs/run.py"


def wait_for(condition: Callable[[], Any], seconds: float = 15.0) -> Any:
    """Poll until `condition()` is truthy; the deadline is generous because this is no timing test."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def dead_url() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/jobs/run"


def logged(capsys: pytest.CaptureFixture[str]) -> tuple[str, list[dict[str, Any]]]:
    out = capsys.readouterr().out
    return out, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def attempted(sql, job_id: str) -> bool:
    row = sql.execute("select attempts from job_queue where id = %s", (job_id,)).fetchone()
    return row is not None and row["attempts"] >= 1


def claimed_by_a_kick(sql) -> bool:
    row = sql.execute("select count(*) as n from job_queue_invocations where trigger_source = 'kick' and claimed >= 1")
    return row.fetchone()["n"] >= 1


def kick_runs(sql) -> int:
    return sql.execute("select count(*) as n from job_queue_invocations where trigger_source = 'kick'").fetchone()["n"]


@pytest.fixture
def worker(admin_env, serve, test_tasks):
    server = serve(WORKER)
    admin_env(JOB_QUEUE_WORKER_URL=worker_url(server.port))
    return server


def worker_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/jobs/run"


def test_a_trigger_kicks_the_worker_and_the_job_starts_without_any_cron_call(worker, serve, sql):
    sync = serve(SYNC)
    response = sync.request("POST", body={"dryRun": True}, headers=admin_headers())
    assert response.status == 200
    # This worker has no vendor token: it claims the sync and hands it back, its
    # attempt unspent (a configuration error). The kick's run having claimed it shows it started.
    wait_for(lambda: claimed_by_a_kick(sql))
    assert kick_runs(sql) >= 1  # the only worker call there was: the kick's
    assert (
        sql.execute("select count(*) as n from job_queue_invocations where trigger_source <> 'kick'").fetchone()["n"]
        == 0
    )


def test_a_retry_kicks_the_worker(worker, serve, sql):
    job_id = str(
        sql.execute(
            "insert into job_queue (task_type, status, attempts, max_attempts, completed_at)"
            " values ('test_noop', 'failed', 1, 1, now()) returning id"
        ).fetchone()["id"]
    )
    actions = serve(ACTIONS)
    response = actions.request("POST", body={"action": "retry", "jobId": job_id}, headers=admin_headers())
    assert response.status == 200
    wait_for(
        lambda: sql.execute("select status from job_queue where id = %s", (job_id,)).fetchone()["status"] == "succeeded"
    )
    assert kick_runs(sql) >= 1


def test_the_cli_enqueue_kicks_the_worker_and_keeps_stdout_for_its_json(worker, test_tasks, sql, capsys):
    capsys.readouterr()
    assert cli.main(["--json", "enqueue", "test_noop", "--payload", '{"n": 7}'], registry=test_tasks) == 0
    job_id = json.loads(capsys.readouterr().out)["jobId"]
    wait_for(lambda: attempted(sql, job_id))
    assert kick_runs(sql) >= 1


def test_a_kick_to_a_dead_url_changes_nothing_and_the_trigger_answers_normally(admin_env, serve, sql, capsys):
    admin_env(JOB_QUEUE_WORKER_URL=dead_url())
    sync = serve(SYNC)
    capsys.readouterr()
    response = sync.request("POST", headers=admin_headers())
    assert response.status == 200
    assert response.json["success"] is True
    row = sql.execute("select status, attempts from job_queue where id = %s", (response.json["jobId"],)).fetchone()
    assert row == {"status": "pending", "attempts": 0}
    out, lines = logged(capsys)
    [failure] = [line for line in lines if line["event"] == "kick.failed"]
    assert failure["level"] == "warning"
    assert "ConnectionRefusedError" in failure["error"]
    assert RUNNER_SECRET not in out


def test_a_refused_kick_is_logged_with_its_status_and_changes_nothing(worker, sql, capsys):
    wrong = load_settings(
        {"JOB_QUEUE_WORKER_URL": worker_url(worker.port), "JOB_QUEUE_RUNNER_SECRET": "not-the-secret"}
    )
    capsys.readouterr()
    kick_worker(wrong)
    _, lines = logged(capsys)
    [refusal] = [line for line in lines if line["event"] == "kick.refused"]
    assert (refusal["status"], refusal["answer"]) == (401, "unauthorized")
    assert "not-the-secret" not in json.dumps(lines)
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 0


class _SlowWorker(BaseHTTPRequestHandler):
    """Accepts the kick, then takes its time before answering, as a worker draining jobs does."""

    received: ClassVar[list[dict[str, str]]] = []
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).received.append({k.lower(): v for k, v in self.headers.items()})
        type(self).release.wait(10)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def test_a_kick_returns_while_the_worker_is_still_busy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowWorker)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    _SlowWorker.received.clear()
    _SlowWorker.release.clear()
    try:
        settings = load_settings(
            {
                "JOB_QUEUE_WORKER_URL": f"http://127.0.0.1:{server.server_address[1]}/api/jobs/run",
                "JOB_QUEUE_RUNNER_SECRET": RUNNER_SECRET,
            }
        )
        kick_worker(settings)  # returns although the worker has not answered
        assert not _SlowWorker.release.is_set()
        [headers] = _SlowWorker.received
        assert headers["x-job-runner-secret"] == RUNNER_SECRET
        assert headers["user-agent"].startswith("job-queue-kick/")
    finally:
        _SlowWorker.release.set()
        server.shutdown()
        server.server_close()


def test_without_a_worker_url_nothing_is_sent(capsys):
    kick_worker(load_settings({"JOB_QUEUE_RUNNER_SECRET": RUNNER_SECRET}))
    assert "kick." not in capsys.readouterr().out


# -- where the kick goes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, None),
        ({"JOB_QUEUE_WORKER_URL": "http://127.0.0.1:3000/api/jobs/run"}, "http://127.0.0.1:3000/api/jobs/run"),
        ({"VERCEL_URL": "app-abc123.vercel.app"}, "https://app-abc123.vercel.app/api/jobs/run"),
        (
            {"VERCEL_URL": "app-abc123.vercel.app", "VERCEL_PROJECT_PRODUCTION_URL": "jobs.example.com"},
            "https://jobs.example.com/api/jobs/run",
        ),
        (
            {"JOB_QUEUE_WORKER_URL": "https://w.example.com/api/jobs/run", "VERCEL_URL": "app.vercel.app"},
            "https://w.example.com/api/jobs/run",
        ),
    ],
)
def test_the_worker_url_is_the_setting_else_derived_from_vercel(environ, url):
    assert load_settings(environ).worker_url == url


@pytest.mark.parametrize("value", ["/api/jobs/run", "ftp://x/api/jobs/run", "example.com/api/jobs/run"])
def test_a_relative_or_odd_worker_url_is_a_configuration_error(value):
    from lib.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="JOB_QUEUE_WORKER_URL"):
        load_settings({"JOB_QUEUE_WORKER_URL": value})
