"""Drain throughput (ours against procrastinate and pgqueuer) and the server's raw transaction ceiling.

Ours runs exactly as `/api/jobs/run` does: each invocation is one
`connect()` + `Worker(db, settings).drain(limit=10, ...)` — one statement records
the run, reads the pause switch and claims 10 under a lease; the jobs run; one
statement records their successes and closes the run. Two variants:
- "as the endpoint": a warm instance keeps its connection for its next
  invocation (`lib.db` does this), so consecutive invocations share it;
- "cold instance": every invocation opens a new connection (and a fresh server
  backend that must plan the queue's functions again), as the first invocation
  of a new instance does.

The engines are measured in interleaved rounds (every round drains a slice of
the jobs through every engine, in rotating order) so that noise from a shared
machine falls on all of them alike. Each engine has its own database on the
same server; finished jobs stay in it between rounds, as they do in production.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.common import (
    NOOP,
    Report,
    bench_settings,
    fmt_rate,
    heading,
    line,
    median,
    noop_registry,
    quiet_stdout,
    rate,
    table,
)
from bench.peers import PgQueuer, PgQueuerAsyncpg, Procrastinate
from lib.db import Database, close_kept_connections, connect
from lib.queue import Queue
from lib.worker import MAX_LIMIT, Worker
from scripts.local_pg import create_database, drop_database, fresh_database


def invoke(db: Database, settings: Any, registry: Any) -> int:
    """One invocation of the endpoint's worker core; returns the number of jobs it processed."""
    report = Worker(db, settings, registry=registry).drain(limit=MAX_LIMIT, force=False, trigger_source="bench")
    return len(report.results)


class OursAsEndpoint:
    name = "ours, as the endpoint (warm instance)"
    short = "ours"

    def __init__(self, conninfo: str) -> None:
        self.settings = bench_settings(conninfo)
        self.registry = noop_registry()

    def enqueue(self, jobs: int) -> None:
        with connect(self.settings) as db:
            Queue(db).enqueue_batch(NOOP, [{} for _ in range(jobs)])

    def drain_round(self, jobs: int) -> float:
        self.enqueue(jobs)
        started = time.perf_counter()
        with quiet_stdout():
            while True:
                with connect(self.settings) as db:
                    if not invoke(db, self.settings, self.registry):
                        break
        return time.perf_counter() - started

    def done(self) -> int:
        with connect(self.settings) as db:
            row = db.fetchone("select count(*) as n from job_queue where status = 'succeeded'")
        assert row is not None
        return int(row["n"])


class OursCold(OursAsEndpoint):
    name = "ours, cold instance (new connection per invocation)"
    short = "ours/cold"

    def drain_round(self, jobs: int) -> float:
        self.enqueue(jobs)
        started = time.perf_counter()
        with quiet_stdout():
            while True:
                close_kept_connections()
                with connect(self.settings) as db:
                    if not invoke(db, self.settings, self.registry):
                        break
        close_kept_connections()
        return time.perf_counter() - started


class RawCeiling:
    """Single-client autocommit `update … set n = n + 1` in a psycopg loop: one transaction per statement."""

    name = "raw ceiling (trivial update)"

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        with self._connect() as conn:
            conn.execute("create table if not exists bench_counter (id int primary key, n bigint not null)")
            conn.execute("insert into bench_counter values (1, 0) on conflict do nothing")

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None)

    def transactions(self, count: int) -> float:
        with self._connect() as conn:
            started = time.perf_counter()
            for _ in range(count):
                conn.execute("update bench_counter set n = n + 1 where id = 1")
            return time.perf_counter() - started


@dataclass
class Tally:
    jobs: int = 0
    seconds: float = 0.0
    round_rates: list[float] = field(default_factory=list)

    def add(self, jobs: int, seconds: float) -> None:
        self.jobs += jobs
        self.seconds += seconds
        self.round_rates.append(rate(jobs, seconds))

    @property
    def rate(self) -> float:
        return rate(self.jobs, self.seconds)


def measure_drain(admin: str, *, jobs: int, rounds: int, ceiling_tx: int, report: Report, profile: bool) -> None:
    heading(f"1-2. Drain throughput: {jobs:,} no-op jobs per engine, in {rounds} interleaved rounds")
    per_round = jobs // rounds
    databases: list[str] = []
    try:
        engines: list[Any] = []
        for cls, migrated in (
            (OursAsEndpoint, True),
            (OursCold, True),
            (Procrastinate, False),
            (PgQueuer, False),
            (PgQueuerAsyncpg, False),
            (RawCeiling, False),
        ):
            conninfo = create_database(admin, "bench_drain")
            databases.append(conninfo)
            if migrated:
                from scripts.migrate import apply_migrations

                apply_migrations(conninfo)
            engines.append(cls(conninfo))
        drainers = engines[:5]
        ceiling: RawCeiling = engines[5]
        proc, pgq, pgq_asyncpg = engines[2], engines[3], engines[4]
        line(
            f"procrastinate {proc.version} ({proc.loop_name}), pgqueuer {pgq.version} ({pgq.loop_name}) "
            "on psycopg 3 and on asyncpg"
        )

        tallies = {e.name: Tally() for e in drainers}
        ceiling_tally = Tally()
        for n in range(rounds):
            order = drainers[n % len(drainers) :] + drainers[: n % len(drainers)]
            ceiling_tally.add(ceiling_tx, ceiling.transactions(ceiling_tx))
            for engine in order:
                tallies[engine.name].add(per_round, engine.drain_round(per_round))
            ceiling_tally.add(ceiling_tx, ceiling.transactions(ceiling_tx))
            line(
                f"round {n + 1}/{rounds}: "
                + ", ".join(f"{e.short} {tallies[e.name].round_rates[-1]:,.0f}/s" for e in drainers)
            )
        for engine in drainers:
            finished = engine.done()
            expected = per_round * rounds
            if finished != expected:
                raise RuntimeError(f"{engine.name}: {finished} jobs finished, expected {expected}")

        rows = []
        for name, t in tallies.items():
            rows.append(
                [
                    name,
                    f"{t.jobs:,}",
                    f"{t.seconds:.1f} s",
                    fmt_rate(t.rate),
                    f"{min(t.round_rates):,.0f}–{max(t.round_rates):,.0f}/s",
                ]
            )
        print(table(rows, ["engine", "jobs", "time", "jobs/s", "range over rounds"]))

        ours = tallies[OursAsEndpoint.name].rate
        ours_cold = tallies[OursCold.name].rate
        peers = {e.name: tallies[e.name].rate for e in (proc, pgq, pgq_asyncpg)}
        faster_name = max(peers, key=lambda k: peers[k])
        faster = peers[faster_name]
        for queuer in (pgq, pgq_asyncpg):
            line(
                f"{queuer.name}'s time ends when its last completion is written; its drain-mode shutdown after "
                f"that (not counted) took {median(queuer.clock.tails):.2f} s per round (median)"
            )
        line()
        for label, value in (("as the endpoint", ours), ("cold instance", ours_cold)):
            ratios = ", ".join(f"{value / r:.2f}× {name}" for name, r in peers.items())
            line(f"ours ({label}): {ratios}")
        line()
        round_ratios = [
            o / f
            for o, f in zip(tallies[OursAsEndpoint.name].round_rates, tallies[faster_name].round_rates, strict=True)
        ]
        line(
            f"HEADLINE: ours (as the endpoint) ÷ the fastest peer ({faster_name}) = {ours / faster:.2f}× "
            f"({ours:,.0f} ÷ {faster:,.0f} jobs/s; per round {min(round_ratios):.2f}–{max(round_ratios):.2f}×)"
        )
        report.add(
            "1. drain, as the endpoint (warm instance) ÷ fastest peer",
            f"{ours:,.0f} jobs/s = {ours / faster:.2f}× {faster_name} ({faster:,.0f}/s)",
            "≥ 1.0× fastest peer",
            ours >= faster,
        )
        report.add(
            "1. drain, cold instance (new connection per invocation)",
            f"{ours_cold:,.0f} jobs/s = {ours_cold / faster:.2f}× {faster_name}",
            "—",
        )
        report.add("1. drain, peers", ", ".join(f"{name} {r:,.0f}/s" for name, r in peers.items()))

        heading("2. Raw ceiling: single-client autocommit trivial update (psycopg loop), same server")
        ceiling_rate = ceiling_tally.rate
        statements = 2  # per invocation of 10 jobs: begin (claim + invocation row), complete (successes + its close)
        line(
            f"{ceiling_rate:,.0f} transactions/s (median of {len(ceiling_tally.round_rates)} samples of "
            f"{ceiling_tx:,}: {median(ceiling_tally.round_rates):,.0f}/s)"
        )
        line(
            f"a job costs {statements / MAX_LIMIT:.1f} transactions in our worker (begin: claim + invocation row; "
            "complete: successes + its close; per 10 jobs), both committed without waiting for the WAL flush "
            "(synchronous_commit off for the invocation's bookkeeping, see 20261128000100_job_queue.sql), "
            "so ours may pass this ceiling of flushed commits"
        )
        line(
            f"ours as the endpoint = {ours / ceiling_rate:.0%} of the ceiling, "
            f"cold instance = {ours_cold / ceiling_rate:.0%} "
            "(" + ", ".join(f"{name} {r / ceiling_rate:.0%}" for name, r in peers.items()) + ")"
        )
        report.add(
            "2. raw ceiling",
            f"{ceiling_rate:,.0f} tx/s; ours {ours / ceiling_rate:.0%} (as the endpoint), "
            f"{ours_cold / ceiling_rate:.0%} (cold instance)",
        )
    finally:
        for conninfo in databases:
            drop_database(admin, conninfo)

    breakdown(admin, invocations=max(20, jobs // 200))
    if profile:
        profile_drain(admin, jobs=min(jobs, 2000))


# -- where the time goes ---------------------------------------------------------------


def _phase(query: str) -> str:
    for name in ("begin_invocation", "complete_invocation", "claim", "mark_succeeded", "mark_failed", "release"):
        if f"job_queue_{name}" in query:
            return name
    return "other statements"


class PhaseClock:
    """Times each statement an invocation sends, by kind (wraps `Database.execute` of one connection)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def instrument(self, db: Database) -> None:
        send = db.execute

        def timed(query: Any, params: Any = None, **options: Any) -> Any:
            started = time.perf_counter()
            try:
                return send(query, params, **options)
            finally:
                self.seconds[_phase(query)] += time.perf_counter() - started

        db.execute = timed  # type: ignore[method-assign]


def _invocation_phases(settings: Any, registry: Any, db: Database | None) -> Counter[str]:
    clock = PhaseClock()
    spent: Counter[str] = Counter()
    started = time.perf_counter()
    if db is None:
        close_kept_connections()  # a cold instance: nothing kept from an earlier invocation
        with connect(settings) as conn:
            spent["connect"] = time.perf_counter() - started
            clock.instrument(conn)
            run_started = time.perf_counter()
            invoke(conn, settings, registry)
            run_seconds = time.perf_counter() - run_started
            closing = time.perf_counter()
        spent["close"] = time.perf_counter() - closing
    else:
        clock.instrument(db)
        invoke(db, settings, registry)
        run_seconds = time.perf_counter() - started
    spent.update(clock.seconds)
    spent["Python (worker, logs, handler)"] = run_seconds - sum(clock.seconds.values())
    return spent


def breakdown(admin: str, *, invocations: int) -> None:
    """Milliseconds per invocation of 10 jobs, by phase, on a cold instance and a warm one."""
    heading(f"1b. Where the time goes: {invocations} invocations of 10 jobs, ms per invocation (mean)")
    with fresh_database(admin, "bench_phases") as conninfo:
        settings = bench_settings(conninfo)
        registry = noop_registry()
        with connect(settings) as db:
            Queue(db).enqueue_batch(NOOP, [{} for _ in range(invocations * MAX_LIMIT * 2)])
        cold: Counter[str] = Counter()
        warm: Counter[str] = Counter()
        with quiet_stdout(), connect(settings) as keep:
            # Alternate the two variants so that noise falls on both alike.
            for _ in range(invocations):
                cold.update(_invocation_phases(settings, registry, None))
                warm.update(_invocation_phases(settings, registry, keep))
    order = ["connect", "begin_invocation", "complete_invocation", "close"]
    order += sorted(k for k in set(cold) | set(warm) if k not in order and not k.startswith("Python"))
    order.append("Python (worker, logs, handler)")
    rows = []
    for phase in order:
        c = cold.get(phase, 0.0) * 1000 / invocations
        w = warm.get(phase, 0.0) * 1000 / invocations
        rows.append([phase, f"{c:.2f}", f"{w:.2f}"])
    c_total = sum(cold.values()) * 1000 / invocations
    w_total = sum(warm.values()) * 1000 / invocations
    rows.append(["total", f"{c_total:.2f}", f"{w_total:.2f}"])
    print(table(rows, ["phase", "cold instance (new connection)", "warm instance (kept connection)"]))
    line(
        f"= {MAX_LIMIT * 1000 / c_total:,.0f} jobs/s cold, {MAX_LIMIT * 1000 / w_total:,.0f} jobs/s warm "
        "(statement times are client round trips: network, server work and commit)"
    )


def profile_drain(admin: str, *, jobs: int) -> None:
    heading(f"1c. cProfile of our drain as the endpoint runs it ({jobs:,} jobs), top functions by own time")
    with fresh_database(admin, "bench_profile") as conninfo:
        engine = OursAsEndpoint(conninfo)
        profiler = cProfile.Profile()
        run: Callable[[], float] = lambda: engine.drain_round(jobs)  # noqa: E731
        profiler.runcall(run)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(15)
