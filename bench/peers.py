"""The peer queues, each set up the way its own documentation and CLI do it.

- procrastinate: `App(connector=PsycopgConnector(conninfo=...))`, the schema from
  `schema_manager.apply_schema_async()`, an async no-op task, one worker run by
  `app.run_worker_async(concurrency=1, wait=False)` (wait=False: stop once the
  queue is empty). Other options are the defaults (LISTEN/NOTIFY on, jobs kept
  after they finish), under the standard asyncio loop that `procrastinate worker` uses.
- pgqueuer: `PgQueuer.from_psycopg_connection(AsyncConnection(autocommit=True))`,
  the schema from `Queries.install()`, an async no-op entrypoint, one
  `PgQueuer.run(mode=drain)` with the default batch of 10, under uvloop, which
  `pgq run` picks when it is installed (it is a dependency of pgqueuer).

Only the worker's run is timed; opening the app and enqueueing are not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from bench.common import NOOP


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
    name = short = "pgqueuer"

    def __init__(self, conninfo: str) -> None:
        import pgqueuer

        self.conninfo = conninfo
        self.version = pgqueuer.__version__
        self._run, self.loop_name = _pgqueuer_loop()
        self._run(self._install())

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)

    async def _install(self) -> None:
        from pgqueuer import Queries

        conn = await self._connect()
        try:
            await Queries.from_psycopg_connection(conn).install()
        finally:
            await conn.close()

    def drain_round(self, jobs: int) -> float:
        return self._run(self._round(jobs))

    async def _round(self, jobs: int) -> float:
        from pgqueuer import PgQueuer, Queries
        from pgqueuer.domain.types import QueueExecutionMode

        conn = await self._connect()
        try:
            await Queries.from_psycopg_connection(conn).enqueue([NOOP] * jobs, [None] * jobs, [0] * jobs)
            pgq = PgQueuer.from_psycopg_connection(conn)

            @pgq.entrypoint(NOOP)
            async def bench_noop(job: Any) -> None:
                return None

            started = time.perf_counter()
            await pgq.run(mode=QueueExecutionMode.drain)
            return time.perf_counter() - started
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


def _pgqueuer_loop() -> tuple[Callable[[Awaitable[Any]], Any], str]:
    """The event loop `pgq run` uses: uvloop when installed, else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run, "asyncio"
    return uvloop.run, "uvloop"
