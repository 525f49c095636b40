"""Enqueue: N single enqueues (one statement and one commit each) against one batched enqueue of N."""

from __future__ import annotations

import time

from bench.common import NOOP, Report, bench_settings, fmt_rate, heading, line, rate, table
from lib.db import connect
from lib.queue import Queue
from scripts.local_pg import fresh_database


def measure_enqueue(admin: str, *, jobs: int, report: Report) -> None:
    heading(f"4. Enqueue: {jobs:,} single enqueues vs one batched enqueue of {jobs:,} (warm connection)")
    with fresh_database(admin, "bench_enqueue") as conninfo, connect(bench_settings(conninfo)) as db:
        queue = Queue(db)
        queue.enqueue(NOOP, {"warmup": True})
        queue.enqueue_batch(NOOP, [{"warmup": True}])
        payloads = [{"n": n} for n in range(jobs)]

        started = time.perf_counter()
        for payload in payloads:
            queue.enqueue(NOOP, payload)
        single = time.perf_counter() - started

        started = time.perf_counter()
        ids = queue.enqueue_batch(NOOP, payloads)
        batch = time.perf_counter() - started
        if len(ids) != jobs:
            raise RuntimeError(f"enqueue_batch returned {len(ids)} ids for {jobs} payloads")
        row = db.fetchone("select count(*) as n from job_queue")
        assert row is not None
        assert row["n"] == 2 * jobs + 2

    print(
        table(
            [
                ["single (Queue.enqueue)", f"{single:.2f} s", fmt_rate(rate(jobs, single)), f"{jobs:,}"],
                ["batched (Queue.enqueue_batch)", f"{batch:.3f} s", fmt_rate(rate(jobs, batch)), "1"],
            ],
            ["enqueue", "time", "jobs/s", "statements"],
        )
    )
    line(f"batched is {single / batch:.0f}× faster")
    report.add(
        "4. enqueue, single vs batched",
        f"{rate(jobs, single):,.0f}/s vs {rate(jobs, batch):,.0f}/s ({single / batch:.0f}×), {jobs:,} jobs",
    )
