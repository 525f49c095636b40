"""Task types: the registry a worker looks a job's handler up in, and how a task type is added to it.

    registry = TaskRegistry()

    @registry.task("send_welcome_email", WelcomePayload, quick=True)
    def send_welcome_email(ctx: JobContext, payload: WelcomePayload) -> dict[str, Any]:
        ...

    registry.register_module("nightly_export", "myapp.jobs.nightly_export")  # imported on first use

A module named for lazy loading defines `TASK = TaskSpec(...)`; it is imported
the first time a job of its type runs (or an endpoint asks for its payload
model), so a worker cold start does not pay for what the handler imports (our
Game Platform jobs: httpx and the vendor client). `builtin_registry()` is a new
registry holding our own task types, registered that way; `default_registry` is
the one production serves. Tests build a registry of their own and pass it in
(`Worker(registry=...)`, an api handler class with its `registry` attribute set,
as tests/support/api.py serves them); they never change the default one. docs/jobs.md: "Adding a job type".
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from lib.jobs.context import JobContext
from lib.validation import Problem, field_errors, summary

Handler = Callable[[JobContext, Any], Any]
HandlerT = TypeVar("HandlerT", bound=Handler)


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


class TaskRegistry:
    """Task type → TaskSpec; safe to read from several threads (a lazy import happens once)."""

    def __init__(self, specs: Iterable[TaskSpec] = ()) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self._modules: dict[str, str] = {}
        self._lock = threading.Lock()
        for spec in specs:
            self.register(spec)

    def register(self, spec: TaskSpec) -> TaskSpec:
        """Add a task type (replacing one of the same name)."""
        with self._lock:
            self._specs[spec.task_type] = spec
            self._modules.pop(spec.task_type, None)
        return spec

    def task(
        self, task_type: str, payload_model: type[BaseModel], *, quick: bool = False
    ) -> Callable[[HandlerT], HandlerT]:
        """Register the decorated function as the handler of `task_type`."""

        def register(handle: HandlerT) -> HandlerT:
            self.register(TaskSpec(task_type, payload_model, handle, quick))
            return handle

        return register

    def register_module(self, task_type: str, module: str) -> None:
        """Add a task type whose `module` (defining `TASK: TaskSpec`) is imported when first needed."""
        with self._lock:
            self._specs.pop(task_type, None)
            self._modules[task_type] = module

    def get(self, task_type: str) -> TaskSpec | None:
        spec = self._specs.get(task_type)
        if spec is not None:
            return spec
        with self._lock:
            module_name = self._modules.get(task_type)
            if module_name is None:
                return self._specs.get(task_type)  # loaded by another thread meanwhile, or unknown
            spec = importlib.import_module(module_name).TASK
            if not isinstance(spec, TaskSpec) or spec.task_type != task_type:
                raise RuntimeError(f"{module_name}.TASK must be the TaskSpec of {task_type!r}, not {spec!r}")
            self._specs[task_type] = spec
            del self._modules[task_type]
        return spec

    def task_types(self) -> list[str]:
        return sorted(set(self._specs) | set(self._modules))

    def copy(self) -> TaskRegistry:
        """A registry of its own with the same task types (modules not yet imported stay lazy)."""
        other = TaskRegistry()
        with self._lock:
            other._specs = dict(self._specs)
            other._modules = dict(self._modules)
        return other


def builtin_registry() -> TaskRegistry:
    """A new registry of the bundle's own task types, each imported on first use."""
    registry = TaskRegistry()
    registry.register_module("game_platform_sync", "lib.game_platform.sync")
    registry.register_module("game_platform_totals_sweep", "lib.game_platform.sweep")
    registry.register_module("job_queue_cleanup", "lib.jobs.job_queue_cleanup")
    return registry


class PayloadRejected(ValueError):
    """A payload its task's model refuses. `problems`: one `{"field", "message", "type"}` per bad field."""

    def __init__(self, task_type: str, problems: list[Problem]) -> None:
        super().__init__(f"invalid payload for {task_type}: {summary(problems)}")
        self.problems = problems

    @classmethod
    def from_error(cls, task_type: str, exc: ValidationError) -> PayloadRejected:
        return cls(task_type, field_errors(exc, whole="payload"))


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
        raise PayloadRejected.from_error(spec.task_type, exc) from None
    to_payload = getattr(model, "to_payload", None)
    payload: dict[str, Any] = to_payload() if callable(to_payload) else model.model_dump(mode="json", by_alias=True)
    internal = sorted(set(raw) - set(payload))
    if internal:
        raise PayloadRejected(
            spec.task_type,
            [
                {"field": name, "message": f"set by the {spec.task_type} handler itself", "type": "handler_only"}
                for name in internal
            ],
        )
    return payload


default_registry = builtin_registry()
"""The registry production serves: the built-in task types."""
