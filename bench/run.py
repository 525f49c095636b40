"""Benchmarks of the job queue: one command, every figure measured side by side in the same run.

    python bench/run.py            # the full pass (7–15 minutes on 2 cores)
    python bench/run.py --quick    # a short pass with smaller sizes (a few minutes)
    python bench/run.py --only drain,claim --profile

Needs `pip install -r requirements-bench.txt` (the peer queues). PostgreSQL is
`DATABASE_URL`'s server when set, else an embedded one (pgserver); every
measurement creates its own databases on it and drops them afterwards.

Measures (see README, "Benchmarks"):
  1. drain throughput against procrastinate and pgqueuer, and where our time goes
  2. the server's raw single-client transaction rate, and our drain as a fraction of it
  3. the claim's cost as finished and future jobs pile up
  4. single against batched enqueue
  5. the worker endpoint's cold start against a floor of psycopg + http.server
  5b. each function's cold start inside the bundle Vercel's builder makes, with and
      without VERCEL_PYTHON_COMPILEALL=1 (needs node/npm and a CPython 3.12; ~3 min)
  6. statements one invocation sends for N jobs
  7. peak memory of one invocation over 10 jobs of 1 MB each
  8. the kick: an admin trigger → its job started, through the dev server
  9. fan-out: 1,000 due jobs drained from one call through scripts/dev.py's server
then the Game Platform sync benchmark (bench/bench_sync.py) when it exists.

Nothing here asserts a timing: it prints figures and whether each goal is met.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

# Run as a script (`python bench/run.py`), the repo root is not on sys.path: put it there
# so that `lib`, `scripts` and `bench` import as they do for the tests.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

import psycopg  # noqa: E402

from bench.common import Report, heading, line, table  # noqa: E402
from scripts.local_pg import postgres_server  # noqa: E402

MEASURES = ("drain", "claim", "enqueue", "coldstart", "bundle", "roundtrips", "memory", "kick", "fanout", "sync")


def machine_description(admin: str) -> list[tuple[str, str]]:
    cpu = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute("select current_setting('server_version'), current_setting('synchronous_commit')").fetchone()
    assert row is not None
    source = "DATABASE_URL" if os.environ.get("DATABASE_URL", "").strip() else "embedded (pgserver)"
    return [
        ("nproc", str(os.cpu_count())),
        ("CPU", cpu),
        ("Python", platform.python_version()),
        ("PostgreSQL", f"{row[0]}, {source}, synchronous_commit={row[1]}"),
        ("psycopg", psycopg.__version__),
    ]


def run_sync_benchmark(quick: bool, report: Report) -> None:
    heading("Game Platform sync benchmark (bench/bench_sync.py)")
    if importlib.util.find_spec("bench.bench_sync") is None:
        line("NOT AVAILABLE YET: bench/bench_sync.py does not exist in this checkout, so the Game Platform")
        line("sync benchmark was not run. It is written separately; rerun this command once it has landed.")
        report.add("Game Platform sync (bench_sync)", "NOT RUN: bench/bench_sync.py is not available yet")
        return
    from bench import bench_sync  # type: ignore[attr-defined]

    code = bench_sync.main(["--quick"] if quick else [])
    report.add("Game Platform sync (bench_sync)", "see its table above" if not code else f"exited with {code}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short pass with smaller sizes")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(MEASURES)}")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of our drain")
    args = parser.parse_args(argv)
    selected = set(MEASURES) if not args.only else {m.strip() for m in args.only.split(",")}
    unknown = selected - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    quick = args.quick
    report = Report()
    started = time.perf_counter()

    with postgres_server() as admin:
        heading("Machine" + (" (--quick: smaller sizes, figures are rougher)" if quick else ""))
        machine = machine_description(admin)
        print(table([list(r) for r in machine]))
        line("timings on a shared machine are noisy: compare figures from the same run only")

        if "drain" in selected:
            from bench.drain import measure_drain

            measure_drain(
                admin,
                jobs=2_000 if quick else 20_000,
                rounds=2 if quick else 4,
                ceiling_tx=1_000 if quick else 2_500,
                report=report,
                profile=args.profile,
            )
        if "claim" in selected:
            from bench.history import measure_claim_history

            measure_claim_history(
                admin,
                finished=100_000 if quick else 1_000_000,
                future=10_000 if quick else 100_000,
                claims=300 if quick else 1_000,
                report=report,
            )
        if "enqueue" in selected:
            from bench.enqueue import measure_enqueue

            measure_enqueue(admin, jobs=2_000 if quick else 10_000, report=report)
        if "coldstart" in selected:
            from bench.coldstart import measure_cold_start

            measure_cold_start(repetitions=7 if quick else 21, report=report)
        if "bundle" in selected:
            from bench.coldstart_bundle import measure_bundle_cold_start

            measure_bundle_cold_start(repetitions=3 if quick else 5, report=report)
        if "roundtrips" in selected:
            from bench.roundtrips import measure_round_trips

            measure_round_trips(admin, report=report)
        if "memory" in selected:
            from bench.memory import measure_memory

            measure_memory(admin, report=report)
        if "kick" in selected:
            from bench.kick_latency import measure_kick_latency

            measure_kick_latency(admin, samples=20, report=report)
        if "fanout" in selected:
            from bench.fanout import measure_fanout

            measure_fanout(admin, jobs=1_000, max_parallel=4, report=report)

    if "sync" in selected:
        run_sync_benchmark(quick, report)

    heading(f"Summary ({'--quick' if quick else 'full'} pass, {time.perf_counter() - started:.0f} s)")
    print(table([[v.measure, v.figure, v.goal, v.verdict] for v in report.verdicts], ["measure", "result", "goal", ""]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
