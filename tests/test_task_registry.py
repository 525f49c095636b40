"""The public way to add a task type (lib.jobs): decorator, spec, lazy module; registries stay apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from lib.jobs import JobContext, TaskRegistry, TaskSpec, builtin_registry, default_registry
from lib.settings import load_settings
from lib.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


class Greeting(BaseModel):
    name: str = "world"


def test_the_decorator_registers_the_handler_and_returns_it() -> None:
    registry = TaskRegistry()

    @registry.task("greet", Greeting, quick=True)
    def greet(ctx: JobContext, payload: Greeting) -> dict[str, str]:
        return {"greeting": f"hello {payload.name}"}

    assert registry.get("greet") == TaskSpec("greet", Greeting, greet, quick=True)
    assert registry.task_types() == ["greet"]
    assert registry.get("nope") is None


def test_a_registry_of_ones_own_leaves_the_default_one_alone() -> None:
    mine = builtin_registry()
    mine.register(TaskSpec("only_mine", Greeting, lambda ctx, payload: None))
    copied = default_registry.copy()
    copied.register(TaskSpec("only_copied", Greeting, lambda ctx, payload: None))
    assert default_registry.task_types() == ["game_platform_sync", "game_platform_totals_sweep", "job_queue_cleanup"]
    assert mine.task_types() == [*default_registry.task_types(), "only_mine"]
    assert "only_mine" not in copied.task_types()


def test_a_module_task_is_imported_on_first_use_and_must_name_itself() -> None:
    registry = TaskRegistry()
    registry.register_module("job_queue_cleanup", "lib.jobs.job_queue_cleanup")
    spec = registry.get("job_queue_cleanup")
    assert spec is not None
    assert spec.task_type == "job_queue_cleanup"
    registry.register_module("misnamed", "lib.jobs.job_queue_cleanup")
    with pytest.raises(RuntimeError, match="misnamed"):
        registry.get("misnamed")


def test_importing_the_api_and_the_builtin_registry_loads_no_handler_module() -> None:
    code = (
        "import sys; from lib.jobs import builtin_registry; r = builtin_registry(); r.task_types();"
        "heavy = ('httpx', 'lib.jobs.game_platform', 'lib.game_platform');"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_worker_runs_the_registry_it_is_given(db, clean_db, queue) -> None:
    registry = TaskRegistry()

    @registry.task("greet", Greeting, quick=True)
    def greet(ctx: JobContext, payload: Greeting) -> dict[str, str]:
        return {"greeting": f"hello {payload.name}"}

    job_id = queue.enqueue("greet", {"name": "ops"})
    report = Worker(db, load_settings({"DATABASE_URL": clean_db}), registry=registry).drain(
        limit=5, force=False, trigger_source="test"
    )
    assert [(r.id, r.status) for r in report.results] == [(str(job_id), "succeeded")]
    job = queue.get_job(job_id)
    assert job is not None
    assert job.output == {"greeting": "hello ops"}


def test_the_example_of_docs_jobs_md_runs(db, clean_db, queue) -> None:
    import re
    import types
    from uuid import uuid4

    text = (ROOT / "docs" / "jobs.md").read_text(encoding="utf-8")
    source = re.search(r"```python\n(# lib/jobs/send_welcome_email\.py\n.*?)```", text, re.S)
    assert source is not None
    module = types.ModuleType("send_welcome_email_example")
    sys.modules[module.__name__] = module  # pydantic resolves the postponed annotations through it
    try:
        exec(compile(source.group(1), "docs/jobs.md", "exec"), module.__dict__)
        registry = TaskRegistry([module.TASK])
        user = uuid4()
        good = queue.enqueue("send_welcome_email", {"userId": str(user), "language": "de"})
        unknown = queue.enqueue("send_welcome_email", {"userId": str(user), "language": "fr"}, max_attempts=3)
        Worker(db, load_settings({"DATABASE_URL": clean_db}), registry=registry).drain(
            limit=5, force=False, trigger_source="test"
        )
    finally:
        del sys.modules[module.__name__]
    done = queue.get_job(good)
    failed = queue.get_job(unknown)
    assert done is not None
    assert failed is not None
    assert (done.status, done.output) == ("succeeded", {"userId": str(user), "message": "Willkommen!", "attempt": 1})
    assert (failed.status, failed.last_error) == ("failed", "no welcome text in 'fr'")
