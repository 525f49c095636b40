"""Fan-out: a backlog of due no-op jobs drained from one call, through scripts/dev.py's server.

The dev server (bench/fanout_server.py: scripts/dev.py plus the no-op task)
serves /api/jobs/run on a free port, with JOB_QUEUE_WORKER_URL pointing at
itself and JOB_WORKER_MAX_PARALLEL set, on its own database of the bench's
server. One POST with the runner secret starts the chain; the clock stops
when every job has succeeded. Peak concurrency is sampled from
job_queue_live_invocations() while it drains, and checked afterwards from the run
history. No job may run twice (attempts = 1 everywhere).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.common import NOOP, ROOT, Report, heading, line, table
from scripts.local_pg import fresh_database

GOAL_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(process: subprocess.Popen[str], port: int, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dev server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the dev server did not start listening")


def measure_fanout(admin: str, *, jobs: int, max_parallel: int, report: Report) -> None:
    heading(f"9. Fan-out: {jobs:,} due no-op jobs from one call, through scripts/dev.py (max parallel {max_parallel})")
    with fresh_database(admin, "bench_fanout") as conninfo, tempfile.TemporaryDirectory(prefix="jqfan-") as data:
        port = _free_port()
        runner_secret = "bench-" + secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "DATABASE_URL": conninfo,
            "JOB_QUEUE_RUNNER_SECRET": runner_secret,
            "CRON_SECRET": "bench-" + secrets.token_urlsafe(16),
            "JOB_QUEUE_WORKER_URL": f"http://127.0.0.1:{port}/api/jobs/run",
            "JOB_WORKER_MAX_PARALLEL": str(max_parallel),
        }
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("select job_queue_enqueue_batch(%s, array_fill('{}'::jsonb, array[%s]))", (NOOP, jobs))
        command = [sys.executable, str(ROOT / "bench" / "fanout_server.py"), "--port", str(port), "--data-dir", data]
        with open(Path(data) / "server.log", "w") as log_file:
            process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
            try:
                _wait_ready(process, port)
                peak, seconds, first = _drain(conninfo, port, runner_secret, jobs)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            row = conn.execute(
                "select count(*) filter (where status = 'succeeded') as ok, count(*) filter (where attempts <> 1) as"
                " rerun from job_queue where task_type = %s",
                (NOOP,),
            ).fetchone()
            runs = conn.execute("select count(*) from job_queue_invocations where status = 'completed'").fetchone()
    assert row is not None
    assert runs is not None
    rate = jobs / seconds if seconds else float("nan")
    print(
        table(
            [
                ["jobs done / due", f"{row[0]:,} / {jobs:,}"],
                ["jobs run more than once", str(row[1])],
                ["wall time", f"{seconds:.1f} s"],
                ["invocations (completed runs)", str(runs[0])],
                ["peak concurrent invocations", f"{peak} (bound {max_parallel})"],
                ["jobs/s", f"{rate:,.0f}"],
                ["first call answered", json.dumps(first)[:120]],
            ],
            ["fan-out", "value"],
        )
    )
    ok = row[0] == jobs and row[1] == 0 and peak <= max_parallel and seconds < GOAL_SECONDS
    report.add(
        "9. fan-out: 1,000 due jobs from one call",
        f"{seconds:.1f} s, {rate:,.0f} jobs/s, peak {peak} concurrent (bound {max_parallel}), {row[0]:,} done",
        f"all done, once each, < {GOAL_SECONDS:.0f} s",
        ok,
    )


def _drain(conninfo: str, port: int, runner_secret: str, jobs: int) -> tuple[int, float, object]:
    peak = 0
    with psycopg.connect(conninfo, autocommit=True) as watch:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = json.dumps({"limit": 10}).encode()
        conn.request(
            "POST",
            "/api/jobs/run",
            body=body,
            headers={"x-job-runner-secret": runner_secret, "Content-Type": "application/json"},
        )
        first = json.loads(conn.getresponse().read() or b"{}")
        conn.close()
        first = {k: first.get(k) for k in ("status", "processed", "followUps")}
        deadline = started + 600
        while time.perf_counter() < deadline:
            row = watch.execute(
                "select job_queue_live_invocations(), (select count(*) from job_queue where status = 'succeeded')"
            ).fetchone()
            assert row is not None
            peak = max(peak, int(row[0]))
            if row[1] >= jobs:
                return peak, time.perf_counter() - started, first
            time.sleep(0.02)
        line("the backlog was not drained within 10 minutes")
        return peak, time.perf_counter() - started, first
