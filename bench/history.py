"""Claim cost as history piles up: an empty queue against one with many finished and future jobs.

Two databases on the same server, each holding the same due jobs to claim:
- "empty": only those due jobs;
- "history": the same, plus `finished` finished jobs (succeeded, failed,
  cancelled) and `future` jobs scheduled hours ahead, bulk-loaded with
  generate_series, then VACUUM ANALYZE (both databases alike).
Claims of 10 (`Queue.claim`, as the worker sends it) alternate between the two
over warm connections, so noise falls on both alike. Between claims (untimed)
the claimed jobs are marked succeeded in one statement, so that, as in
production, only a handful of jobs are ever in `processing`. Besides wall time, the
shared buffers one claim touches (EXPLAIN ANALYZE BUFFERS of the call) are
printed: a figure that does not depend on the machine's load.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import psycopg

from bench.common import NOOP, Report, bench_settings, fmt_ms, heading, line, percentile, table
from lib.db import Database, connect
from lib.queue import Queue
from scripts.local_pg import fresh_database

LEASE = timedelta(minutes=15)

FINISHED_SQL = """
insert into job_queue (task_type, payload, status, run_at, attempts, max_attempts,
                       created_at, updated_at, completed_at, last_error, output)
select %(task)s, jsonb_build_object('n', g),
       (array['succeeded', 'succeeded', 'succeeded', 'failed', 'cancelled'])[1 + g %% 5],
       now() - make_interval(secs => g), 1, 5,
       now() - make_interval(secs => g), now() - make_interval(secs => g - 1),
       now() - make_interval(secs => g - 1),
       case when g %% 5 = 3 then 'bench: failed for good' end,
       case when g %% 5 < 3 then '{"ok": true}'::jsonb end
  from generate_series(1, %(count)s) as g
"""

FUTURE_SQL = """
insert into job_queue (task_type, payload, status, run_at)
select %(task)s, jsonb_build_object('n', g), 'pending', now() + interval '1 hour' + make_interval(secs => g)
  from generate_series(1, %(count)s) as g
"""

# Arranging state, not measured: finishes what a claim took, as the worker's marks would.
FINISH_SQL = """
update job_queue
   set status = 'succeeded', completed_at = now(), updated_at = now(), lease_token = null, lease_expires_at = null
 where id = any(%s)
"""


def _load(conninfo: str, *, due: int, finished: int, future: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if finished:
            conn.execute(FINISHED_SQL, {"task": NOOP, "count": finished})
        if future:
            conn.execute(FUTURE_SQL, {"task": NOOP, "count": future})
    with connect(bench_settings(conninfo)) as db:
        Queue(db).enqueue_batch(NOOP, [{} for _ in range(due)])
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("vacuum analyze job_queue")
    return time.perf_counter() - started


def _claim_buffers(conninfo: str) -> tuple[int, float]:
    """Shared buffers touched and server time of one claim of 10, on a warm backend (rolled back)."""
    with psycopg.connect(conninfo) as conn:
        conn.execute("select * from job_queue_claim(10, %s)", (LEASE,))  # compiles the function: not counted
        row = conn.execute(
            "explain (analyze, buffers, format json) select * from job_queue_claim(10, %s)", (LEASE,)
        ).fetchone()
        conn.rollback()
    assert row is not None
    plan: Any = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    top = plan[0]["Plan"]
    buffers = int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))
    return buffers, float(plan[0].get("Execution Time", 0.0))


def _table_size(conninfo: str) -> tuple[int, str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "select count(*), pg_size_pretty(pg_total_relation_size('job_queue')) from job_queue"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def measure_claim_history(admin: str, *, finished: int, future: int, claims: int, report: Report) -> None:
    heading(
        f"3. Claim cost vs history: {claims:,} claims of 10, empty table vs {finished:,} finished "
        f"+ {future:,} future jobs"
    )
    warmup = 20
    due = (claims + warmup) * 10
    with fresh_database(admin, "bench_claim_empty") as empty, fresh_database(admin, "bench_claim_hist") as hist:
        _load(empty, due=due, finished=0, future=0)
        seconds = _load(hist, due=due, finished=finished, future=future)
        sizes = {name: _table_size(c) for name, c in (("empty", empty), ("history", hist))}
        line(f"bulk load of the history: {seconds:.1f} s (generate_series, then VACUUM ANALYZE)")
        buffers = {name: _claim_buffers(c) for name, c in (("empty", empty), ("history", hist))}

        timings: dict[str, list[float]] = {"empty": [], "history": []}
        with connect(bench_settings(empty)) as db_empty, connect(bench_settings(hist)) as db_hist:
            dbs: dict[str, Database] = {"empty": db_empty, "history": db_hist}
            for n in range(claims + warmup):
                order = ("empty", "history") if n % 2 == 0 else ("history", "empty")
                for name in order:
                    queue = Queue(dbs[name])
                    started = time.perf_counter()
                    got = queue.claim(10, LEASE)
                    elapsed = (time.perf_counter() - started) * 1000
                    if len(got) != 10:
                        raise RuntimeError(f"{name}: a claim returned {len(got)} jobs, expected 10")
                    if n >= warmup:
                        timings[name].append(elapsed)
                    dbs[name].execute(FINISH_SQL, ([job.id for job in got],))

    rows = []
    stats: dict[str, tuple[float, float]] = {}
    for name in ("empty", "history"):
        p50, p95 = percentile(timings[name], 50), percentile(timings[name], 95)
        stats[name] = (p50, p95)
        count, size = sizes[name]
        rows.append(
            [name, f"{count:,} rows, {size}", fmt_ms(p50), fmt_ms(p95), f"{buffers[name][0]}", fmt_ms(buffers[name][1])]
        )
    print(table(rows, ["table", "job_queue", "p50", "p95", "buffers/claim", "server time (1 claim)"]))
    r50 = stats["history"][0] / stats["empty"][0]
    r95 = stats["history"][1] / stats["empty"][1]
    line(
        f"ratio history/empty: p50 {r50:.2f}, p95 {r95:.2f}; buffers {buffers['history'][0] / buffers['empty'][0]:.2f}"
    )
    label = "" if finished >= 1_000_000 else f" (--quick sizes: {finished:,} + {future:,})"
    report.add(
        "3. claim p50/p95, history vs empty" + label,
        f"{fmt_ms(stats['empty'][0])}/{fmt_ms(stats['empty'][1])} → "
        f"{fmt_ms(stats['history'][0])}/{fmt_ms(stats['history'][1])} = {r50:.2f}×/{r95:.2f}×",
        "≤ 1.2×",
        r50 <= 1.2 and r95 <= 1.2,
    )
