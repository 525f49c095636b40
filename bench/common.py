"""What every measurement shares: the no-op task, settings for a bench database, timing and printing."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lib.jobs.registry import TaskRegistry, TaskSpec
from lib.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
NOOP = "bench_noop"


class AnyPayload(BaseModel):
    model_config = ConfigDict(extra="allow")


def noop(ctx: Any, payload: AnyPayload) -> None:
    return None


NOOP_SPEC = TaskSpec(NOOP, AnyPayload, noop, quick=True)


def noop_registry() -> TaskRegistry:
    """A registry of its own holding only the no-op task (the default registry is left alone)."""
    registry = TaskRegistry()
    registry.register(NOOP_SPEC)
    return registry


def bench_settings(conninfo: str) -> Settings:
    return load_settings({"DATABASE_URL": conninfo})


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The worker writes one JSON log line per event to stdout; send them to /dev/null.

    The lines are still encoded and written (the endpoint pays that), just not shown.
    """
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def heading(title: str) -> None:
    print(f"\n== {title}", flush=True)


def line(text: str = "") -> None:
    print(f"   {text}" if text else "", flush=True)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None, indent: str = "   ") -> str:
    """A plain fixed-width table (also valid Markdown when `header` is given)."""
    cells = [[str(c) for c in row] for row in rows]
    if header is not None:
        cells.insert(0, [str(h) for h in header])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    out = []
    for n, row in enumerate(cells):
        out.append(indent + "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0 and header is not None:
            out.append(indent + "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


@dataclass
class Verdict:
    """One row of the final summary."""

    measure: str
    figure: str
    goal: str = ""
    met: bool | None = None  # None: no goal

    @property
    def verdict(self) -> str:
        return "—" if self.met is None else ("met" if self.met else "MISSED")


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)

    def add(self, measure: str, figure: str, goal: str = "", met: bool | None = None) -> None:
        self.verdicts.append(Verdict(measure, figure, goal, met))


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}/s"


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"
