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

from pydantic import BaseModel, ValidationError

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
    "game_platform_sync": "lib.game_platform.sync",
    "game_platform_totals_sweep": "lib.game_platform.sweep",
    "job_queue_cleanup": "lib.jobs.job_queue_cleanup",
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


class PayloadRejected(ValueError):
    """A payload its task's model refuses. `problems`: one `{"field", "message"}` per bad field."""

    def __init__(self, task_type: str, problems: list[dict[str, str]]) -> None:
        super().__init__(
            f"invalid payload for {task_type}: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        )
        self.problems = problems


def stored_payload(spec: TaskSpec, raw: dict[str, Any]) -> dict[str, Any]:
    """The payload as a job of this task stores it: validated, every default filled in, camelCase keys.

    Equal requests then store equal payloads, hence equal dedupe keys, wherever
    they come from (admin triggers, schedules, the CLI). A model may name its
    public form (`to_payload`), leaving out what only its handler writes (a
    continuation cursor); such a field in `raw` is refused.
    """
    try:
        model = spec.payload_model.model_validate(raw)
    except ValidationError as exc:
        raise PayloadRejected(
            spec.task_type,
            [
                {"field": ".".join(str(p) for p in e["loc"]) or "payload", "message": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None
    to_payload = getattr(model, "to_payload", None)
    payload: dict[str, Any] = to_payload() if callable(to_payload) else model.model_dump(mode="json", by_alias=True)
    internal = sorted(set(raw) - set(payload))
    if internal:
        raise PayloadRejected(
            spec.task_type,
            [{"field": name, "message": f"set by the {spec.task_type} handler itself"} for name in internal],
        )
    return payload


default_registry = TaskRegistry(BUILTIN_TASK_MODULES)
