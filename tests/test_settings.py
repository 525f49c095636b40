"""Environment validation: read once, clear messages, secrets never echoed, never a crash at import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lib.errors import ConfigurationError
from lib.settings import load_settings, secret_value
from tests.support.api import ROOT


def test_defaults_apply_to_an_empty_environment():
    settings = load_settings({})
    assert settings.database_url is None
    assert settings.worker_max_duration_seconds == 300
    assert settings.worker_lease_seconds == 360
    assert settings.game_platform_api_base_url == "https://api.metactf.com/integrations/syned/v1"
    assert not settings.runner_secrets_configured


def test_empty_and_blank_variables_count_as_unset():
    settings = load_settings(
        {"CRON_SECRET": "", "JOB_QUEUE_RUNNER_SECRET": "   ", "JOB_WORKER_MAX_DURATION_SECONDS": ""}
    )
    assert secret_value(settings.cron_secret) == ""
    assert secret_value(settings.job_queue_runner_secret) == ""
    assert settings.worker_max_duration_seconds == 300


def test_postgres_url_is_accepted_for_vercels_supabase_integration():
    assert secret_value(load_settings({"POSTGRES_URL": "postgresql://x"}).database_url) == "postgresql://x"
    both = load_settings({"POSTGRES_URL": "postgresql://x", "DATABASE_URL": "postgresql://y"})
    assert secret_value(both.database_url) == "postgresql://y"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOB_WORKER_MAX_DURATION_SECONDS", "five"),
        ("JOB_WORKER_MAX_DURATION_SECONDS", "-3"),
        ("DB_CONNECT_TIMEOUT_SECONDS", "0"),
        ("GAME_PLATFORM_CONCURRENCY", "many"),
    ],
)
def test_malformed_variable_is_named_without_its_value(name, value):
    with pytest.raises(ConfigurationError) as info:
        load_settings({name: value, "CRON_SECRET": "s3cr3t-value"})
    assert name in str(info.value)
    assert f"'{value}'" not in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


def test_secrets_do_not_appear_in_repr():
    settings = load_settings({"CRON_SECRET": "s3cr3t-value", "DATABASE_URL": "postgresql://u:pw@h/db"})
    assert "s3cr3t-value" not in repr(settings)
    assert "pw@h" not in repr(settings)


def test_importing_every_api_file_needs_no_environment():
    code = (
        "import importlib.util, pathlib\n"
        "for path in sorted(pathlib.Path('api').rglob('*.py')):\n"
        "    spec = importlib.util.spec_from_file_location(path.stem.replace('-', '_'), path)\n"
        "    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "    assert module.handler\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "JOB_WORKER_MAX_DURATION_SECONDS": "not-a-number"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_variable_is_documented_in_the_readme():
    # The README, or the reference page of its topic under docs/ (which the README links).
    readme = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    from lib.settings import variable_names

    missing = [name for name in variable_names() if f"`{name}`" not in readme]
    assert missing == []
