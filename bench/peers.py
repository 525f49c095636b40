"""The peer queues, each set up the way its own documentation and CLI do it.

- procrastinate: `App(connector=PsycopgConnector(conninfo=...))`, the schema from
  `schema_manager.apply_schema_async()`, an async no-op task, one worker run by
  `app.run_worker_async(concurrency=1, wait=False)` (wait=False: stop once the
  queue is empty). Other options are the defaults (LISTEN/NOTIFY on, jobs kept
  after they finish), under the standard asyncio loop that `procrastinate worker` uses.
- pgqueuer, twice: on psycopg (`PgQueuer.from_psycopg_connection(AsyncConnection(
  autocommit=True))`) and on asyncpg (`PgQueuer.from_asyncpg_connection(
  asyncpg.connect(...))`, its fastest driver), the schema from `Queries.install()`, an async no-op entrypoint, one
  `PgQueuer.run(mode=drain)` with the default batch of 10, under uvloop, which
  `pgq run` picks when it is installed (it is a dependency of pgqueuer).

Only the worker's run is timed; opening the app and enqueueing are not. A
job counts as done when its completion is written to the database:
- procrastinate writes it before fetching the next job (concurrency 1), so its
  time is the worker's whole run (its exit after the last job takes ~20 ms);
- pgqueuer buffers completions and writes them in batches (`log_jobs`), so its
  time ends when the batch holding the last completion has been written. Its
  drain mode then spends seconds on its way out (with the psycopg driver, the
  LISTEN watcher holds the connection for up to 1 s at a time and the exit
  checks wait on it); that tail is not counted, but kept in `tails` and printed.
Ours is timed to the end of its last (empty) invocation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from bench.common import NOOP


class CompletionClock:
    """Counts written completions and notes when the last expected one was written."""

    def __init__(self) -> None:
        self.expected = 0
        self.written = 0
        self.last_at = 0.0
        self.tails: list[float] = []

    def expect(self, jobs: int) -> None:
        self.expected, self.written, self.last_at = jobs, 0, 0.0

    def wrote(self, count: int) -> None:
        self.written += count
        if self.written >= self.expected and not self.last_at:
            self.last_at = time.perf_counter()

    def close(self, started: float) -> float:
        """Seconds from `started` to the last completion; the rest of the run is kept as a tail."""
        ended = time.perf_counter()
        if self.written != self.expected:
            raise RuntimeError(f"{self.written} completions written, expected {self.expected}")
        self.tails.append(ended - self.last_at)
        return self.last_at - started


class Procrastinate:
    name = short = "procrastinate"
    loop_name = "asyncio"

    def __init__(self, conninfo: str) -> None:
        import procrastinate

        self.conninfo = conninfo
        self.version = procrastinate.__version__
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

        @self.app.task(name=NOOP)
        async def bench_noop() -> None:
            return None

        self.task = bench_noop
        asyncio.run(self._install())

    async def _install(self) -> None:
        async with self.app.open_async():
            await self.app.schema_manager.apply_schema_async()

    def drain_round(self, jobs: int) -> float:
        return asyncio.run(self._round(jobs))

    async def _round(self, jobs: int) -> float:
        async with self.app.open_async():
            await self.task.batch_defer_async(*({} for _ in range(jobs)))
            started = time.perf_counter()
            await self.app.run_worker_async(concurrency=1, wait=False, install_signal_handlers=False)
            return time.perf_counter() - started

    def done(self) -> int:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            row = conn.execute("select count(*) from procrastinate_jobs where status = 'succeeded'").fetchone()
        return int(row[0]) if row else 0


class PgQueuer:
    """pgqueuer on psycopg (AsyncConnection, autocommit)."""

    name = short = "pgqueuer/psycopg"
    driver = "psycopg"

    def __init__(self, conninfo: str) -> None:
        import pgqueuer

        self.conninfo = conninfo
        self.version = pgqueuer.__version__
        self._run, self.loop_name = _pgqueuer_loop()
        self.clock = CompletionClock()
        self._run(self._install())

    async def _connect(self) -> Any:
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)

    def _queries(self, conn: Any) -> Any:
        from pgqueuer import Queries

        return Queries.from_psycopg_connection(conn)

    def _app(self, conn: Any) -> Any:
        from pgqueuer import PgQueuer as App

        return App.from_psycopg_connection(conn)

    async def _install(self) -> None:
        conn = await self._connect()
        try:
            await self._queries(conn).install()
        finally:
            await conn.close()

    def drain_round(self, jobs: int) -> float:
        return float(self._run(self._round(jobs)))

    async def _round(self, jobs: int) -> float:
        from pgqueuer.domain.types import QueueExecutionMode

        conn = await self._connect()
        try:
            await self._queries(conn).enqueue([NOOP] * jobs, [None] * jobs, [0] * jobs)
            pgq = self._app(conn)
            queries: Any = pgq.qm.queries
            write = queries.log_jobs

            async def log_jobs(job_status: list[Any]) -> None:
                await write(job_status)
                self.clock.wrote(sum(1 for _, status, _ in job_status if status == "successful"))

            queries.log_jobs = log_jobs  # the completion buffer writes through this

            @pgq.entrypoint(NOOP)
            async def bench_noop(job: Any) -> None:
                return None

            self.clock.expect(jobs)
            started = time.perf_counter()
            await pgq.run(mode=QueueExecutionMode.drain)
            return self.clock.close(started)
        finally:
            await conn.close()

    def done(self) -> int:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            left = conn.execute("select count(*) from pgqueuer").fetchone()
            ok = conn.execute("select count(*) from pgqueuer_log where status = 'successful'").fetchone()
        assert left is not None
        assert ok is not None
        if left[0]:
            raise RuntimeError(f"pgqueuer left {left[0]} jobs in its queue after draining")
        return int(ok[0])


class PgQueuerAsyncpg(PgQueuer):
    """pgqueuer on asyncpg, the driver its documentation and `pgq run` default to: its fastest configuration."""

    name = short = "pgqueuer/asyncpg"
    driver = "asyncpg"

    async def _connect(self) -> Any:
        import asyncpg

        params = psycopg.conninfo.conninfo_to_dict(self.conninfo)
        return await asyncpg.connect(
            host=params.get("host"),
            port=int(params.get("port") or 5432),
            user=params.get("user"),
            password=params.get("password"),
            database=params.get("dbname"),
        )

    def _queries(self, conn: Any) -> Any:
        from pgqueuer import Queries

        return Queries.from_asyncpg_connection(conn)

    def _app(self, conn: Any) -> Any:
        from pgqueuer import PgQueuer as App

        return App.from_asyncpg_connection(conn)


def _pgqueuer_loop() -> tuple[Callable[[Awaitable[Any]], Any], str]:
    """The event loop `pgq run` uses: uvloop when installed, else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run, "asyncio"
    return uvloop.run, "uvloop"
