"""The backoff policy: full jitter within a capped exponential ceiling."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from lib.retry import BackoffPolicy


@given(attempt=st.integers(min_value=-5, max_value=10_000), seed=st.integers())
def test_delay_stays_within_floor_and_the_capped_ceiling(attempt, seed):
    policy = BackoffPolicy(base_seconds=30, cap_seconds=3600, rng=random.Random(seed))
    delay = policy.delay(attempt).total_seconds()
    assert policy.floor_seconds <= delay <= min(3600, policy.ceiling(attempt))


@given(attempt=st.integers(min_value=1, max_value=100))
def test_ceiling_grows_exponentially_until_the_cap(attempt):
    policy = BackoffPolicy(base_seconds=10, cap_seconds=1000)
    assert policy.ceiling(attempt) == min(1000, 10 * 2 ** (attempt - 1))
    assert policy.ceiling(attempt + 1) >= policy.ceiling(attempt)


def test_jitter_spreads_retries_of_jobs_that_failed_together():
    policy = BackoffPolicy(base_seconds=30, cap_seconds=3600, rng=random.Random(7))
    delays = {round(policy.delay(5).total_seconds()) for _ in range(50)}
    assert len(delays) > 30


@given(requested=st.floats(min_value=-100, max_value=86_400, allow_nan=False))
def test_a_handlers_own_delay_wins_but_never_below_the_floor(requested):
    policy = BackoffPolicy()
    expected = max(policy.floor_seconds, requested)
    assert abs(policy.delay(3, requested).total_seconds() - expected) < 1e-6  # timedelta keeps microseconds
