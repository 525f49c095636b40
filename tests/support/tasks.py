"""Task types the tests run through the real worker: they record what ran.

`test_registry()` is a registry of their own (the built-in task types and these),
passed to what runs them (`Worker(registry=...)`, `ApiServer(registry=...)`, the CLI):
the default registry is never changed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

from lib.errors import PermanentJobError, RetryJobLater
from lib.jobs.context import JobContext
from lib.jobs.registry import TaskRegistry, TaskSpec, builtin_registry


class AnyPayload(BaseModel):
    model_config = ConfigDict(extra="allow")


class SleepPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float


class Recorder:
    """Counts executions per job id across threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()

    def record(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs[str(ctx.job_id)] += 1


recorder = Recorder()


def _noop(ctx: JobContext, payload: AnyPayload) -> dict[str, Any]:
    recorder.record(ctx)
    return {"ok": True, "attempt": ctx.attempts}


def _boom(ctx: JobContext, payload: AnyPayload) -> None:
    recorder.record(ctx)
    raise RuntimeError("upstream exploded")


def _permanent(ctx: JobContext, payload: AnyPayload) -> None:
    recorder.record(ctx)
    raise PermanentJobError("record 42 does not exist")


def _retry_later(ctx: JobContext, payload: AnyPayload) -> None:
    recorder.record(ctx)
    raise RetryJobLater("rate limited by upstream", retry_in_seconds=120)


def _sleep(ctx: JobContext, payload: SleepPayload) -> dict[str, float]:
    recorder.record(ctx)
    time.sleep(payload.seconds)
    return {"slept": payload.seconds}


class OutputPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str


# Outputs jsonb refuses, by name (a JSON payload cannot carry them itself).
UNSTORABLE_OUTPUTS: dict[str, Any] = {
    "nan": {"score": float("nan")},
    "infinity": {"rows": [1, float("inf")]},
    "nul_in_string": {"name": "a\x00b"},
    "nul_in_key": {"a\x00b": 1},
    "set": {"ids": {1, 2}},
    "lone_surrogate": {"text": "\ud800"},
}


def _output(ctx: JobContext, payload: OutputPayload) -> Any:
    recorder.record(ctx)
    return UNSTORABLE_OUTPUTS.get(payload.kind, {"kind": payload.kind})


TEST_TASKS = [
    TaskSpec("test_output", OutputPayload, _output, quick=True),
    TaskSpec("test_noop", AnyPayload, _noop, quick=True),
    TaskSpec("test_boom", AnyPayload, _boom, quick=True),
    TaskSpec("test_permanent", AnyPayload, _permanent, quick=True),
    TaskSpec("test_retry_later", AnyPayload, _retry_later, quick=True),
    TaskSpec("test_sleep", SleepPayload, _sleep),  # may be long: successes held before it are written first
    TaskSpec("test_quick_sleep", SleepPayload, _sleep, quick=True),  # declared quick: its successes are held
]


def test_registry() -> TaskRegistry:
    """A new registry: the built-in task types and the test ones."""
    registry = builtin_registry()
    for spec in TEST_TASKS:
        registry.register(spec)
    return registry
