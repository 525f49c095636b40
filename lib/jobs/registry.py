"""Task types and the handlers that run them.

Built-in task types are registered by module path and imported on first use, so
a worker cold start does not pay for the Game Platform client (httpx) unless a
Game Platform job actually runs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from pydantic import BaseModel

from lib.jobs.context import JobContext

Handler = Callable[[JobContext, Any], Any]


class TaskSpec(NamedTuple):
    """A task type: its payload model (validated before the handler runs) and its handler.

    `quick`: its jobs finish in well under a second (no network calls, no large
    writes). The worker holds the successes of quick jobs to write them together;
    before any other job it writes what it holds, so a crash during a long job
    re-runs only that job.
    """

    task_type: str
    payload_model: type[BaseModel]
    handle: Handler
    quick: bool = False


BUILTIN_TASK_MODULES: dict[str, str] = {
    "game_platform_sync": "lib.jobs.game_platform_sync",
    "game_platform_totals_sweep": "lib.jobs.game_platform_totals_sweep",
}


class TaskRegistry:
    """Task type → TaskSpec. Modules named for lazy loading must define `TASK: TaskSpec`."""

    def __init__(self, lazy_modules: dict[str, str] | None = None) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self._lazy = dict(lazy_modules or {})
        self._lock = threading.Lock()

    def register(self, spec: TaskSpec) -> TaskSpec:
        with self._lock:
            self._specs[spec.task_type] = spec
        return spec

    def unregister(self, task_type: str) -> None:
        with self._lock:
            self._specs.pop(task_type, None)

    def get(self, task_type: str) -> TaskSpec | None:
        spec = self._specs.get(task_type)
        if spec is not None:
            return spec
        module_name = self._lazy.get(task_type)
        if module_name is None:
            return None
        spec = importlib.import_module(module_name).TASK
        if spec.task_type != task_type:
            raise RuntimeError(f"{module_name}.TASK is {spec.task_type!r}, registered as {task_type!r}")
        return self.register(spec)

    def task_types(self) -> list[str]:
        return sorted(set(self._specs) | set(self._lazy))


default_registry = TaskRegistry(BUILTIN_TASK_MODULES)
