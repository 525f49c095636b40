"""The runner secrets the tests configure, and the headers that present them."""

CRON_SECRET = "test-cron-secret-7f3a"
RUNNER_SECRET = "test-runner-secret-91bc"


def cron_headers() -> dict[str, str]:
    """What Vercel Cron sends."""
    return {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"}


def runner_headers() -> dict[str, str]:
    """What an operator's curl or pg_net sends."""
    return {"x-job-runner-secret": RUNNER_SECRET}
