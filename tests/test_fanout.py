"""Fan-out over a backlog through the real worker endpoint over HTTP: one call drains it, under the bound."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel, ConfigDict

from lib.jobs.context import JobContext
from lib.jobs.registry import TaskRegistry, TaskSpec
from lib.queue import Queue
from tests.support.api import ApiServer
from tests.support.jobs import JobFactory
from tests.support.secrets import runner_headers

PROBE = "test_fanout_probe"


class ProbePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = 0.02
    pause: bool = False


class Probe:
    """Counts each job's runs and the peak of jobs running at once (one per running invocation)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()
        self.running = 0
        self.peak = 0
        self.pause_with: Callable[[], None] | None = None

    def handle(self, ctx: JobContext, payload: ProbePayload) -> None:
        with self.lock:
            self.runs[str(ctx.job_id)] += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if payload.pause and self.pause_with is not None:
                self.pause_with()
            time.sleep(payload.seconds)
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def probe(task_registry: TaskRegistry) -> Probe:
    """The probe task type, in the registry this test's servers run (conftest's `task_registry`)."""
    probe = Probe()
    task_registry.register(TaskSpec(PROBE, ProbePayload, probe.handle, quick=True))
    return probe


@pytest.fixture
def fanout_api(app_env: Callable[..., None], serve: Callable[[str], ApiServer]) -> Callable[..., ApiServer]:
    """The worker endpoint, served, with JOB_QUEUE_WORKER_URL pointing at itself."""

    def start(**env: str) -> ApiServer:
        server = serve("api/jobs/run.py")
        app_env(JOB_QUEUE_WORKER_URL=f"http://127.0.0.1:{server.port}{server.route}", **env)
        return server

    return start


def _enqueue(sql: psycopg.Connection, count: int, payload: str = "{}") -> None:
    sql.execute("select job_queue_enqueue_batch(%s, array_fill(%s::jsonb, array[%s]))", (PROBE, payload, count))


def _settle(sql: psycopg.Connection, limit_seconds: float = 120.0) -> dict[str, int]:
    """Wait until no run is live and the job counts stop changing; return them by status."""
    deadline = time.monotonic() + limit_seconds
    last: dict[str, int] | None = None
    while time.monotonic() < deadline:
        time.sleep(0.3)
        live = sql.execute("select job_queue_live_invocations() as n").fetchone()["n"]
        counts = {
            r["status"]: r["n"]
            for r in sql.execute("select status, count(*)::int as n from job_queue group by status").fetchall()
        }
        if live == 0 and counts == last:
            return counts
        last = counts
    raise AssertionError(f"the fan-out did not settle: {last}")


def _post(api: ApiServer, body: dict[str, Any] | None = None) -> Any:
    response = api.request("POST", body=body or {"limit": 10}, headers=runner_headers())
    assert response.status == 200, response.raw
    return response.json


def test_one_call_drains_the_backlog_exactly_once_under_the_bound(fanout_api, sql, probe):
    api = fanout_api(JOB_WORKER_MAX_PARALLEL="3")
    _enqueue(sql, 120)
    first = _post(api)
    assert first["status"] == "ok"
    assert first["followUps"] >= 1

    counts = _settle(sql)
    assert counts == {"succeeded": 120}
    assert len(probe.runs) == 120
    assert set(probe.runs.values()) == {1}  # no job ran twice
    assert sql.execute("select count(*) as n from job_queue where attempts <> 1").fetchone()["n"] == 0
    assert 2 <= probe.peak <= 3  # it fanned out, and never past the bound
    fanned = sql.execute("select count(*) as n from job_queue_invocations where trigger_source = 'fanout'").fetchone()[
        "n"
    ]
    assert fanned >= 11  # 120 jobs, 10 per invocation: the first call ran 10 of them


def test_never_more_than_the_bound_at_once(fanout_api, sql, probe):
    api = fanout_api(JOB_WORKER_MAX_PARALLEL="2")
    _enqueue(sql, 80, '{"seconds": 0.05}')
    _post(api)
    assert _settle(sql) == {"succeeded": 80}
    assert probe.peak == 2
    assert set(probe.runs.values()) == {1}


def test_a_pause_stops_the_chain(fanout_api, sql, probe, clean_db):
    api = fanout_api(JOB_WORKER_MAX_PARALLEL="2")

    def pause() -> None:
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("select job_queue_set_processing(false, 'stop the chain')")

    probe.pause_with = pause
    _enqueue(sql, 200)
    # The first job due pauses the queue: the invocations running finish their batches, and none follows.
    first = sql.execute("select id from job_queue limit 1").fetchone()["id"]
    JobFactory(sql).stage(first, payload={"pause": True}, due_ago=timedelta(hours=1))
    _post(api)
    counts = _settle(sql)
    assert counts.get("pending", 0) >= 150
    done = counts.get("succeeded", 0)
    assert 10 <= done <= 30  # the first batch, and those its follow-ups claimed before the pause
    assert set(probe.runs.values()) == {1}
    declined = _post(api, {"limit": 10, "chain": {"generation": 1, "startedAt": datetime.now(UTC).isoformat()}})
    assert declined == {"status": "declined", "processed": 0, "reason": "processing is paused"}


def test_the_chain_stops_after_its_generations(fanout_api, sql, probe):
    # One at a time: the first call (generation 0) and two generations of follow-ups run 10 jobs each.
    api = fanout_api(JOB_WORKER_MAX_PARALLEL="1", JOB_WORKER_FANOUT_MAX_GENERATIONS="2")
    _enqueue(sql, 100)
    _post(api)
    assert _settle(sql) == {"succeeded": 30, "pending": 70}


def test_a_follow_up_past_the_chains_limits_is_declined(fanout_api, sql, probe):
    api = fanout_api(JOB_WORKER_FANOUT_MAX_SECONDS="60", JOB_WORKER_FANOUT_MAX_GENERATIONS="5")
    _enqueue(sql, 5)
    old = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    too_old = _post(api, {"limit": 10, "chain": {"generation": 1, "startedAt": old}})
    assert too_old["status"] == "declined"
    assert "time limit" in too_old["reason"]
    too_deep = _post(api, {"limit": 10, "chain": {"generation": 6, "startedAt": datetime.now(UTC).isoformat()}})
    assert too_deep["status"] == "declined"
    assert "generation limit" in too_deep["reason"]
    assert sql.execute("select count(*) as n from job_queue where status = 'pending'").fetchone()["n"] == 5
    # a refusal records no invocation
    assert sql.execute("select count(*) as n from job_queue_invocations").fetchone()["n"] == 0


def test_a_malformed_chain_is_a_400(fanout_api, sql):
    api = fanout_api()
    response = api.request("POST", body={"chain": {"generation": "x"}}, headers=runner_headers())
    assert response.status == 400
    assert response.json["error"]


def test_admission_counts_the_runs_already_running(db, sql):
    queue = Queue(db)
    now = datetime.now(UTC)
    admitted = []
    for _ in range(3):
        with db.transaction():
            admission = queue.fanout_admit(2, 1, 10, now, timedelta(minutes=5))
            if admission.admitted:
                queue.begin_invocation("fanout", 10, False, timedelta(minutes=5))  # left running
        admitted.append(admission)
    assert [a.admitted for a in admitted] == [True, True, False]
    assert admitted[2].live_invocations == 2
    assert sql.execute("select job_queue_live_invocations() as n").fetchone()["n"] == 2


def test_no_follow_ups_without_a_worker_url(app_env, serve, sql, probe):
    api = serve("api/jobs/run.py")  # JOB_QUEUE_WORKER_URL unset
    _enqueue(sql, 30)
    assert _post(api)["followUps"] == 0
    assert _settle(sql) == {"succeeded": 10, "pending": 20}
