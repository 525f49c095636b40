"""Round trips: statements one invocation sends to PostgreSQL to process N no-op jobs.

Counted on the client by `Database.statements` (every statement goes through
`Database.execute`), and cross-checked on the server: the connection is in
autocommit, so each statement is one transaction, and the server's
`pg_stat_database` counts the database's commits and rollbacks (read from
another database once the invocation's backend has exited and flushed its
counters), less the one transaction a backend's start-up counts (measured by
connecting once without a statement). `pg_stat_statements` is used as well where the server preloads it.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from bench.common import NOOP, Report, bench_settings, heading, line, noop_registry, quiet_stdout, table
from bench.drain import invoke
from lib.db import close_kept_connections, connect
from lib.queue import Queue
from scripts.local_pg import fresh_database


def _transactions(admin: str, dbname: str) -> int:
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "select xact_commit + xact_rollback from pg_stat_database where datname = %s", (dbname,)
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _settled_transactions(admin: str, dbname: str) -> int:
    """The count once it stops moving: an exited backend flushes its counters shortly after."""
    last = _transactions(admin, dbname)
    for _ in range(40):
        time.sleep(0.1)
        now = _transactions(admin, dbname)
        if now == last:
            return now
        last = now
    return last


def _statements_extension(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("select current_setting('shared_preload_libraries')").fetchone()
    if not row or "pg_stat_statements" not in str(row[0]):
        return False
    conn.execute("create extension if not exists pg_stat_statements")
    return True


def measure_round_trips(admin: str, *, report: Report) -> None:
    heading("6. Round trips: statements one invocation sends for N no-op jobs")
    rows = []
    worst_excess = None
    pss_used = False
    for jobs in (0, 1, 5, 10):
        with fresh_database(admin, "bench_rt") as conninfo:
            dbname = str(psycopg.conninfo.conninfo_to_dict(conninfo)["dbname"])
            settings = bench_settings(conninfo)
            with connect(settings) as db:
                if jobs:
                    Queue(db).enqueue_batch(NOOP, [{} for _ in range(jobs)])
            close_kept_connections()  # every backend of the set-up exits before counting starts
            with psycopg.connect(conninfo, autocommit=True) as conn:
                pss = _statements_extension(conn)
                if pss:
                    conn.execute("select pg_stat_statements_reset()")
            # A backend's start-up counts as a transaction too: measure it and take it off.
            before = _settled_transactions(admin, dbname)
            psycopg.connect(conninfo, autocommit=True).close()
            startup = _settled_transactions(admin, dbname) - before
            before += startup
            with quiet_stdout(), connect(settings) as db:
                processed = invoke(db, settings, noop_registry())
                client = db.statements
            close_kept_connections()  # the invocation's backend exits and flushes its counters
            server = _settled_transactions(admin, dbname) - before - startup
            pss_calls = "—"
            if pss:
                pss_used = True
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    row = conn.execute(
                        "select coalesce(sum(calls), 0) from pg_stat_statements s join pg_database d on d.oid = s.dbid"
                        " where d.datname = %s and s.toplevel and s.query like 'select%%job_queue_%%'",
                        (dbname,),
                    ).fetchone()
                pss_calls = str(int(row[0])) if row else "?"
        if processed != jobs:
            raise RuntimeError(f"the invocation processed {processed} jobs, expected {jobs}")
        excess = client - jobs
        worst_excess = excess if worst_excess is None else max(worst_excess, excess)
        rows.append(
            [str(jobs), str(client), str(server), pss_calls, f"N{excess:+d}", "yes" if client <= jobs + 3 else "NO"]
        )
    print(
        table(
            rows,
            ["N jobs", "client statements", "server transactions", "pg_stat_statements", "=", "≤ N+3"],
        )
    )
    line(
        "per invocation: begin = pause switch + claim + invocation row (1), complete = the successes + its close (1);"
        " a failure is recorded on its own (1 each)"
    )
    if not pss_used:
        line("pg_stat_statements is not preloaded on this server: cross-checked with pg_stat_database only")
    assert worst_excess is not None
    report.add(
        "6. statements per invocation of N jobs",
        f"at most N{worst_excess:+d} (N = 0, 1, 5, 10)",
        "≤ N+3",
        worst_excess <= 3,
    )
