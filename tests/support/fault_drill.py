"""Worker processes driven one invocation at a time, with every job run accounted for.

A drill starts real worker processes (`tests.support.worker_process`, serving
api/jobs/run.py), sends them invocations one after another, and reads each
process's JSON log to learn which jobs each invocation started. Faults (a
SIGKILL, a killed backend, a restarted server, a lost reply) are injected by
the test around those invocations. At the end `account()` checks the promise:
no job lost, none left stuck past its lease, and every repeated run explained
by an invocation that did not finish (killed or answered with an error).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.api import ROOT, request
from tests.support.secrets import RUNNER_SECRET, runner_headers


class WorkerProcess:
    """One worker process whose log goes to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.worker_process"],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.port = self._read_port()
        self.offset = 0

    def _read_port(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            first = self.log.read_text().split("\n", 1)
            if len(first) == 2 and first[0].strip().isdigit():
                return int(first[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"worker process exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError("worker process did not start")

    def new_records(self) -> list[dict[str, Any]]:
        """The JSON log records written since the last call."""
        with self.log.open() as f:
            f.seek(self.offset)
            text = f.read()
        complete, _, _ = text.rpartition("\n")
        self.offset += len(complete) + 1 if complete else 0
        records = []
        for line in complete.splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._out.close()


@dataclass
class Invocation:
    worker: WorkerProcess
    outcome: str = "pending"  # ok | killed | error (a non-200 answer or a dropped connection)
    status: int | None = None
    body: Any = None
    started: list[str] = field(default_factory=list)  # job ids whose run began, in order


@dataclass
class Accounting:
    jobs: int
    runs: int
    faulted_invocations: int
    kills: int

    @property
    def reruns(self) -> int:
        return self.runs - self.jobs


class FaultDrill:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.env = {**os.environ, "JOB_QUEUE_RUNNER_SECRET": RUNNER_SECRET, **env}
        self.workers: list[WorkerProcess] = []
        self.invocations: list[Invocation] = []
        self.kills = 0  # SIGKILLs that landed on a running invocation

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.env, self.tmp_path / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def invoke(self, worker: WorkerProcess, *, limit: int = 10, kill_after: float | None = None) -> Invocation:
        """One invocation; with `kill_after`, the process is SIGKILLed that many seconds in."""
        invocation = Invocation(worker)
        self.invocations.append(invocation)
        done = threading.Event()
        killer = None
        if kill_after is not None:

            def kill() -> None:
                if not done.wait(kill_after):
                    worker.kill()

            killer = threading.Thread(target=kill, daemon=True)
            killer.start()
        try:
            response = request(worker.port, "POST", "/api/jobs/run", {"limit": limit}, runner_headers(), 120)
        except (OSError, http.client.HTTPException):
            invocation.outcome = "killed" if worker.process.poll() is not None else "error"
        else:
            invocation.status = response.status
            invocation.body = response.json
            invocation.outcome = "ok" if response.status == 200 else "error"
        finally:
            done.set()
        if killer is not None:
            killer.join()
        if invocation.outcome == "killed":
            self.kills += 1
        invocation.started = [r["job_id"] for r in worker.new_records() if r.get("event") == "job.started"]
        return invocation

    def drain(self, conninfo: str, worker: WorkerProcess, *, lease_seconds: float, max_rounds: int = 200) -> int:
        """Invoke until no job is pending or processing; return how many times it waited out a lease."""
        lease_waits = 0
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            for _ in range(max_rounds):
                invocation = self.invoke(worker)
                if invocation.outcome != "ok":
                    time.sleep(0.2)
                    continue
                if invocation.body.get("processed"):
                    continue
                row = conn.execute(
                    "select count(*) filter (where status in ('pending', 'processing')),"
                    " count(*) filter (where status = 'processing' and lease_expires_at > now())"
                    " from job_queue"
                ).fetchone()
                assert row is not None
                live, held = row
                if not live:
                    return lease_waits
                if held:  # a dead worker's jobs: claimable once their lease expires
                    lease_waits += 1
                    time.sleep(lease_seconds)
                else:
                    time.sleep(0.05)  # due later (a retry's backoff): not expected in these drills
        raise AssertionError("the queue did not drain")

    def account(self, conninfo: str, job_ids: list[str], *, failing: frozenset[str] = frozenset()) -> Accounting:
        """Check: no job lost or stuck, every repeated run explained by an unfinished invocation.

        Every job must have succeeded, except those in `failing`, which must have failed.
        """
        with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
            rows = conn.execute("select id::text, status from job_queue where id::text = any(%s)", (job_ids,))
            statuses = dict(rows.fetchall())
            stuck = conn.execute("select count(*) from job_queue where status = 'processing'").fetchone()
        assert sorted(statuses) == sorted(job_ids), "a job disappeared"
        assert stuck == (0,), "jobs left processing"
        wrong = {j: s for j, s in statuses.items() if s != ("failed" if j in failing else "succeeded")}
        assert not wrong, f"jobs not finished as expected (lost or stuck): {wrong}"

        runs: dict[str, list[Invocation]] = defaultdict(list)
        for invocation in self.invocations:
            for job_id in invocation.started:
                runs[job_id].append(invocation)
        never_ran = [j for j in job_ids if not runs[j]]
        assert not never_ran, f"jobs marked succeeded without a run: {never_ran}"
        unexplained = {
            job_id: [i.outcome for i in job_runs]
            for job_id, job_runs in runs.items()
            if any(i.outcome == "ok" for i in job_runs[:-1])  # a run that finished cleanly, then another
        }
        assert not unexplained, f"repeated runs not explained by a fault: {unexplained}"
        return Accounting(
            jobs=len(job_ids),
            runs=sum(len(r) for r in runs.values()),
            faulted_invocations=sum(i.outcome != "ok" for i in self.invocations),
            kills=self.kills,
        )

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
