"""Sentry reports and the 500 path, against a local Sentry ingest server."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

import pytest

from lib.http import Request, Routes, VercelHandler
from scripts.local_http import LocalHTTPServer
from tests.support.api import ROOT, request
from tests.support.fake_sentry import FakeSentry
from tests.support.secrets import runner_headers


@pytest.fixture
def sentry(app_env):
    fake = FakeSentry()
    app_env(SENTRY_DSN=fake.dsn, VERCEL_ENV="preview", VERCEL_GIT_COMMIT_SHA="abc123")
    yield fake
    fake.close()
    app_env(SENTRY_DSN=None)
    from lib.observability import init_sentry
    from lib.settings import get_settings

    init_sentry(get_settings())  # switch the SDK off again for the tests that follow


def _enqueue(sql, task_type, max_attempts=5):
    return str(
        sql.execute("select job_queue_enqueue(%s, '{}'::jsonb, now(), %s) as id", (task_type, max_attempts)).fetchone()[
            "id"
        ]
    )


def test_retryable_failure_is_a_warning_with_job_tags(sentry, worker_api, sql):
    job_id = _enqueue(sql, "test_boom", max_attempts=3)
    worker_api.request("POST", headers=runner_headers())
    [event] = sentry.events  # flushed before the response returned
    assert event["level"] == "warning"
    assert event["tags"]["jobId"] == job_id
    assert event["tags"]["taskType"] == "test_boom"
    assert event["extra"]["attempts"] == 1
    assert event["extra"]["maxAttempts"] == 3
    assert event["environment"] == "preview"
    assert event["release"] == "abc123"
    assert event["exception"]["values"][-1]["value"] == "upstream exploded"


def test_permanent_failure_is_an_error(sentry, worker_api, sql):
    job_id = _enqueue(sql, "test_permanent")
    worker_api.request("POST", headers=runner_headers())
    [event] = sentry.events
    assert event["level"] == "error"
    assert event["tags"]["jobId"] == job_id


def test_last_attempt_failure_is_an_error(sentry, worker_api, sql):
    _enqueue(sql, "test_boom", max_attempts=1)
    worker_api.request("POST", headers=runner_headers())
    [event] = sentry.events
    assert event["level"] == "error"


def test_success_sends_nothing(sentry, worker_api, sql):
    _enqueue(sql, "test_noop")
    worker_api.request("POST", headers=runner_headers())
    assert sentry.events == []


def test_worker_cold_start_imports_no_sentry_httpx_or_jwt():
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('run', 'api/jobs/run.py')\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sentry_sdk', 'httpx', 'jwt')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bug_is_a_500_reported_to_sentry_and_logged(sentry, capsys):
    def broken(request: Request):
        raise KeyError("missing_field")

    class handler(VercelHandler):  # noqa: N801 - as an api file names it
        routes = Routes(GET=broken)

    server = LocalHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        response = request(server.server_address[1], "GET", "/api/broken")
    finally:
        server.shutdown()
        server.server_close()
    assert response.status == 500
    assert json.loads(response.raw) == {
        "error": "internal_error",
        "message": "An unexpected error occurred; it has been reported.",
    }
    assert "missing_field" not in response.raw.decode()
    [event] = sentry.events
    assert event["level"] == "error"
    assert event["tags"]["path"] == "/api/broken"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(r["event"] == "http.bug" and "KeyError" in r["error"] for r in logged)


def test_database_outage_is_a_503_reported_to_sentry(sentry, app_env, worker_api):
    app_env(SENTRY_DSN=sentry.dsn, DATABASE_URL="postgresql://postgres@127.0.0.1:9/postgres")
    response = worker_api.request("POST", headers=runner_headers())
    assert response.status == 503
    [event] = sentry.events
    assert event["level"] == "error"
    assert event["tags"]["outage"] == "database"
    assert event["tags"]["path"] == "/api/jobs/run"


def test_vendor_calls_leave_no_log_line_when_the_root_logger_is_at_info(caplog, worker_api):
    """Vercel's bridge sets the root logger to INFO; httpx would then log every request in plain text."""
    import httpx

    import lib.observability  # noqa: F401 - importing it is what quiets them

    with caplog.at_level(logging.INFO):
        assert httpx.get(f"http://127.0.0.1:{worker_api.port}/api/jobs/run").status_code == 401
        logging.getLogger("httpx").warning("a warning still shows")
    assert [(r.name, r.levelname) for r in caplog.records] == [("httpx", "WARNING")]
