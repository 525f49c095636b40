"""Kick latency: an admin trigger → its job started, through the dev server (scripts/dev.py).

The dev server runs as a child process on a database of its own (migrated, with
an admin profile), serving every api file and setting JOB_QUEUE_WORKER_URL to
its own worker. Each sample POSTs /api/admin/jobs/trigger-sync (`dryRun`: the
sandbox vendor, no writes), then polls the job until the worker has claimed it
(`locked_at`, the database's clock on this same machine) and finished it, so
the next trigger is not deduplicated against it. The figure is claim time minus
the moment the trigger was sent: what a user waits between the click and the
job running. Without the kick it is the wait for the next cron tick (up to 300
s with `*/5`; a day on Vercel Hobby).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

from bench.common import ROOT, Report, heading, line, median, percentile, table
from scripts.devserver.secrets import admin_access_token
from scripts.local_pg import fresh_database

GOAL_SECONDS = 1.0


class _DevServer:
    """`scripts/dev.py` on a free port; its output is read (and dropped) by a thread so it never blocks."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "dev.py"), "--port", "0", "--data-dir", str(data_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.url: str | None = None
        self.ready = threading.Event()
        self.tail: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for text in self.process.stdout:
            self.tail = [*self.tail[-40:], text.rstrip()]
            if text.startswith("ready: "):
                self.url = text.removeprefix("ready: ").strip()
                self.ready.set()
        self.ready.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _trigger(url: str, token: str) -> str:
    request = urllib.request.Request(
        url + "/api/admin/jobs/trigger-sync",
        data=json.dumps({"dryRun": True}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    if body.get("deduplicated"):
        raise RuntimeError("the trigger was deduplicated: the previous job had not finished")
    return str(body["jobId"])


def _started_and_finished(conn: psycopg.Connection[tuple[object, ...]], job_id: str, timeout: float) -> float:
    """The job's claim time (epoch seconds), once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "select extract(epoch from locked_at)::float8, status in ('succeeded', 'failed', 'cancelled')"
            " or (status = 'pending' and attempts > 0) from job_queue where id = %s",
            (job_id,),
        ).fetchone()
        if row is not None and row[0] is not None and row[1]:
            return float(row[0])  # type: ignore[arg-type]
        time.sleep(0.005)
    raise RuntimeError(f"job {job_id} was not started and finished within {timeout:.0f} s")


def measure_kick_latency(admin: str, *, samples: int, report: Report) -> None:
    heading(f"Kick: admin trigger → job started, through the dev server (median of {samples})")
    jwt_secret = "bench-" + secrets.token_urlsafe(32)
    admin_id = str(uuid.uuid4())
    with fresh_database(admin, prefix="jq_bench_kick") as conninfo, tempfile.TemporaryDirectory() as data_dir:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "insert into profiles (id, role, email) values (%s, 'admin', 'bench@example.com')", (admin_id,)
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOB_QUEUE_") and k != "POSTGRES_URL"}
        env |= {
            "DATABASE_URL": conninfo,
            "SUPABASE_JWT_SECRET": jwt_secret,
            "CRON_SECRET": "bench-" + secrets.token_urlsafe(16),
            "JOB_QUEUE_RUNNER_SECRET": "bench-" + secrets.token_urlsafe(16),
        }
        env.pop("GAME_PLATFORM_API_BASE_URL", None)  # the dev server's sandbox vendor
        server = _DevServer(env, Path(data_dir))
        try:
            if not server.ready.wait(180) or server.url is None:
                raise RuntimeError("the dev server did not start:\n" + "\n".join(server.tail))
            token = admin_access_token(jwt_secret, admin_id, None, 3600)
            latencies: list[float] = []
            answers: list[float] = []
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for n in range(samples + 1):  # the first warms the server's imports and connections
                    sent = time.time()
                    job_id = _trigger(server.url, token)
                    answered = time.time()
                    started = _started_and_finished(conn, job_id, timeout=60)
                    if n:
                        latencies.append(started - sent)
                        answers.append(answered - sent)
        finally:
            server.stop()
    ms = [x * 1000 for x in latencies]
    print(
        table(
            [
                [
                    "trigger → job started (claimed)",
                    f"{median(ms):.0f} ms",
                    f"{percentile(ms, 90):.0f} ms",
                    f"{max(ms):.0f} ms",
                ],
                [
                    "trigger answered",
                    f"{median(answers) * 1000:.0f} ms",
                    f"{percentile(answers, 90) * 1000:.0f} ms",
                    f"{max(answers) * 1000:.0f} ms",
                ],
            ],
            ["", "median", "p90", "max"],
        )
    )
    line("without the kick a triggered job waits for the next cron tick: up to 300 s with Vercel Cron */5")
    figure = median(latencies)
    report.add(
        "kick: trigger → job started",
        f"median {figure * 1000:.0f} ms over {samples}",
        f"< {GOAL_SECONDS:.0f} s",
        figure < GOAL_SECONDS,
    )


if __name__ == "__main__":
    from scripts.local_pg import postgres_server

    bench_report = Report()
    with postgres_server() as admin_url:
        measure_kick_latency(admin_url, samples=20, report=bench_report)
    for verdict in bench_report.verdicts:
        print(verdict.measure, verdict.figure, verdict.verdict)
