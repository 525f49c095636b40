"""Permanent fault drills: real worker processes, real PostgreSQL, faults injected between and during jobs.

Each drill asserts the queue's promise (tests/support/fault_drill.py): 0 jobs
lost, 0 left stuck past one lease, every repeated run explained by an
invocation that did not finish. Counts are bounded; FAULT_ROUNDS raises them
for a longer soak, FAULT_SEED replays a run (the seed is printed).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from scripts.local_pg import fresh_database
from tests.support.fault_drill import FaultDrill, WorkerProcess
from tests.support.jobs import JobFactory
from tests.support.pg_cluster import throwaway_cluster, unavailable_reason
from tests.support.pg_proxy import pg_proxy
from tests.support.tasks import UNSTORABLE_OUTPUTS

LEASE_SECONDS = 2.0
# A short invocation budget and a lease of the same length: a killed worker's
# jobs are claimable again two seconds later.
WORKER_ENV = {
    "JOB_WORKER_MAX_DURATION_SECONDS": str(LEASE_SECONDS),
    "JOB_WORKER_FINISH_MARGIN_SECONDS": "0",
    "JOB_WORKER_MIN_JOB_SECONDS": "0",
    "JOB_WORKER_LEASE_MARGIN_SECONDS": "0",
    "DB_CONNECT_TIMEOUT_SECONDS": "2",
}
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "6"))
# FAULT_MIX=quick: every drill job quick (50 ms), the worst case for held successes.
QUICK_ONLY = os.environ.get("FAULT_MIX", "mixed") == "quick"


def _seed() -> int:
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(1 << 30))
    print(f"FAULT_SEED={seed}")
    return seed


@pytest.fixture
def drill(tmp_path: Path, clean_db: str) -> Iterator[FaultDrill]:
    drill = FaultDrill(tmp_path, {**WORKER_ENV, "DATABASE_URL": clean_db})
    yield drill
    drill.close()


def _enqueue(conninfo: str, jobs: list[tuple[str, dict[str, object]]]) -> list[str]:
    """Insert jobs due in the given order (each a second apart in the past); many attempts allowed."""
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        return [
            str(
                conn.execute(
                    "select job_queue_enqueue(%s, %s::jsonb, now() - make_interval(secs => %s), 50)",
                    (task_type, json.dumps(payload), len(jobs) - i),
                ).fetchone()[0]  # type: ignore[index]
            )
            for i, (task_type, payload) in enumerate(jobs)
        ]


def _mixed_jobs(rng: random.Random, n: int) -> list[tuple[str, dict[str, object]]]:
    """Mostly quick no-ops, some short sleeps (not quick)."""
    if QUICK_ONLY:
        return [("test_quick_sleep", {"seconds": 0.05})] * n
    return [("test_sleep", {"seconds": 0.15}) if rng.random() < 0.25 else ("test_noop", {}) for _ in range(n)]


def test_sigkill_at_random_points_loses_nothing_and_each_rerun_is_a_kill(drill, clean_db):
    rng = random.Random(_seed())
    job_ids = _enqueue(clean_db, _mixed_jobs(rng, 12 * ROUNDS))
    for _ in range(ROUNDS):
        worker = drill.start_worker()
        for _attempt in range(3):  # until a kill lands mid-invocation
            invocation = drill.invoke(worker, kill_after=rng.uniform(0.02, 0.6))
            if invocation.outcome == "killed":
                break
        worker.kill()
    drill.drain(clean_db, drill.start_worker(), lease_seconds=LEASE_SECONDS)
    accounting = drill.account(clean_db, job_ids)
    assert accounting.kills >= 1
    print(f"sigkill drill: {accounting}, re-runs per kill {accounting.reruns / accounting.kills:.2f}")
    # Each kill costs at most the job it interrupted plus the quick successes held
    # (at most a second's worth, at most one invocation's claim).
    assert accounting.reruns <= accounting.kills * 10


def test_a_kill_during_a_long_job_reruns_that_job_alone(drill, clean_db):
    quick = _enqueue(clean_db, [("test_noop", {})] * 4)
    [long] = _enqueue(clean_db, [("test_sleep", {"seconds": 30})])
    worker = drill.start_worker()
    runner = threading.Thread(target=drill.invoke, args=(worker,))
    runner.start()
    with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as conn:
        _wait_until(lambda: _status(conn, long) == "processing" and _started(worker, drill, long))
        quick_statuses = {_status(conn, j) for j in quick}
        worker.kill()
        runner.join(30)
        JobFactory(conn).stage(long, payload={"seconds": 0})
    assert quick_statuses == {"succeeded"}  # written before the long job began
    drill.drain(clean_db, drill.start_worker(), lease_seconds=LEASE_SECONDS)
    accounting = drill.account(clean_db, [*quick, long])
    assert accounting.reruns == 1  # the interrupted job, nothing else


def _started(worker: WorkerProcess, drill: FaultDrill, job_id: str) -> bool:
    return job_id in worker.log.read_text()


def _status(conn: psycopg.Connection, job_id: str) -> str:
    row = conn.execute("select status from job_queue where id = %s", (job_id,)).fetchone()
    assert row is not None
    return str(row[0])


def _wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_terminating_the_workers_backend_mid_job_loses_and_repeats_nothing(tmp_path, clean_db, direct_database_url):
    # Direct: the drill finds and terminates the worker's own server backend, which
    # needs one client connection = one backend (no pooler in between).
    drill = FaultDrill(tmp_path, {**WORKER_ENV, "DATABASE_URL": direct_database_url})
    try:
        worker = drill.start_worker()
        job_ids: list[str] = []
        with psycopg.connect(direct_database_url, autocommit=True) as conn:
            for _ in range(ROUNDS):
                batch = _enqueue(clean_db, [("test_noop", {}), ("test_sleep", {"seconds": 0.6}), ("test_noop", {})])
                job_ids += batch
                runner = threading.Thread(target=drill.invoke, args=(worker,))
                runner.start()
                _wait_until(lambda b=batch: _status(conn, b[1]) == "processing" and _started(worker, drill, b[1]))
                # The bundle's backends in this database: the worker's, and any a pooler
                # keeps for other tests (harmless to end: the pooler reconnects).
                killed = conn.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where application_name = 'job-queue-bundle' and datname = current_database()"
                ).fetchall()
                assert (True,) in killed
                runner.join(30)
        accounting = drill.account(direct_database_url, job_ids)
        assert accounting.faulted_invocations == 0  # the worker reconnected before its next statement
        assert accounting.reruns == 0
        assert "db.reconnected" in worker.log.read_text()
        reconnects = worker.log.read_text().count('"event":"db.reconnected"')
        assert reconnects == ROUNDS  # its own backend was among those ended, every round
    finally:
        drill.close()


def test_a_lost_reply_to_the_first_statement_strands_nothing(tmp_path, clean_db):
    with pg_proxy(clean_db) as proxy:
        drill = FaultDrill(tmp_path, {**WORKER_ENV, "DATABASE_URL": proxy.conninfo})
        try:
            worker = drill.start_worker()
            job_ids = _enqueue(clean_db, [("test_noop", {})] * (4 * ROUNDS))
            for _ in range(ROUNDS):
                proxy.drop_next_reply()  # the kept connection's next statement: begin_invocation
                invocation = drill.invoke(worker, limit=4)
                assert invocation.outcome == "ok"
                assert invocation.body["processed"] == 4
            assert proxy.replies_dropped == ROUNDS
            accounting = drill.account(clean_db, job_ids)
            assert accounting.reruns == 0
            with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as conn:
                runs = conn.execute("select status, count(*) from job_queue_invocations group by 1").fetchall()
                attempts = conn.execute("select max(attempts) from job_queue").fetchone()
            assert runs == [("completed", ROUNDS)]
            assert attempts == (1,)
        finally:
            drill.close()


def test_a_lost_reply_mid_invocation_costs_reruns_explained_by_the_fault(tmp_path, clean_db):
    rng = random.Random(_seed())
    with pg_proxy(clean_db) as proxy:
        drill = FaultDrill(tmp_path, {**WORKER_ENV, "DATABASE_URL": proxy.conninfo})
        try:
            worker = drill.start_worker()
            job_ids = _enqueue(clean_db, _mixed_jobs(rng, 8 * ROUNDS))
            for _ in range(ROUNDS):
                threading.Timer(rng.uniform(0.05, 0.5), proxy.drop_next_reply).start()
                drill.invoke(worker, limit=8)
            # A drop armed after its invocation ended hits a later first statement, which is repeatable.
            drill.drain(clean_db, worker, lease_seconds=LEASE_SECONDS)
            drill.account(clean_db, job_ids)
        finally:
            drill.close()


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_a_postgresql_restart_mid_drain_loses_nothing(tmp_path):
    rng = random.Random(_seed())
    with throwaway_cluster() as cluster, fresh_database(cluster.admin_url, prefix="jq_restart") as url:
        drill = FaultDrill(tmp_path, {**WORKER_ENV, "DATABASE_URL": url})
        try:
            worker = drill.start_worker()
            job_ids = _enqueue(url, _mixed_jobs(rng, 10 * ROUNDS))
            restarts = max(2, ROUNDS // 2)

            def restart_repeatedly() -> None:
                for _ in range(restarts):
                    time.sleep(rng.uniform(0.3, 1.0))
                    cluster.restart()

            restarter = threading.Thread(target=restart_repeatedly)
            restarter.start()
            while restarter.is_alive():
                if drill.invoke(worker).outcome != "ok":
                    time.sleep(0.1)  # the server is down: try again shortly, as the next cron tick would
            restarter.join()
            drill.drain(url, worker, lease_seconds=LEASE_SECONDS)
            accounting = drill.account(url, job_ids)
            print(f"restart drill: {restarts} restarts, {accounting}")
        finally:
            drill.close()


def test_unstorable_outputs_among_good_ones_fail_alone(drill, clean_db):
    kinds = sorted(UNSTORABLE_OUTPUTS)
    jobs: list[tuple[str, dict[str, object]]] = []
    for kind in kinds:
        jobs += [("test_noop", {}), ("test_output", {"kind": kind})]
    job_ids = _enqueue(clean_db, jobs)
    bad = frozenset(job_ids[1::2])
    drill.drain(clean_db, drill.start_worker(), lease_seconds=LEASE_SECONDS)
    accounting = drill.account(clean_db, job_ids, failing=bad)
    assert accounting.reruns == 0
    with psycopg.connect(clean_db, autocommit=True, prepare_threshold=None) as conn:
        errors = conn.execute("select last_error from job_queue where id::text = any(%s)", (list(bad),)).fetchall()
    assert all(e.startswith("output is not storable as JSON: ") for (e,) in errors)
