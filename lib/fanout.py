"""Fan-out over a backlog: an invocation that leaves due jobs behind starts follow-ups.

One invocation claims at most 10 jobs, and Vercel Cron calls the worker every
few minutes; a backlog of 1,000 due jobs would take a hundred ticks. So an
invocation whose claim was full, with due jobs still unclaimed and the
worker's URL known (`Settings.worker_url`), sends follow-up requests to the
worker, as many as there are free places under JOB_WORKER_MAX_PARALLEL, and
every follow-up does the same: one tick drains the backlog while the platform
runs the invocations side by side (docs/throughput.md).

The bound is the database's (job_queue_fanout_admit): a follow-up is admitted
in the transaction that begins it, under one lock, counting the invocations
recorded as running, so a burst of follow-ups never runs more than the bound
at once; the extra ones are refused and end at once. Each request carries the
chain: its generation and when the chain began. A chain past
JOB_WORKER_FANOUT_MAX_GENERATIONS generations or
JOB_WORKER_FANOUT_MAX_SECONDS seconds, or meeting a paused queue, stops. A job
that fails is rescheduled later (not due) or failed for good, and an
invocation whose claim was not full starts nothing, so failures end a chain
rather than feed it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ConfigDict, Field

from lib.jsonnames import CamelModel
from lib.settings import Settings


class Chain(CamelModel):
    """Where an invocation stands in a fan-out chain; sent with each follow-up request."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True)

    generation: int = Field(ge=1, le=1_000_000, description="1 for a follow-up of the invocation cron started")
    started_at: datetime = Field(description="when the chain's first invocation started")

    def to_json(self) -> dict[str, object]:
        return {"generation": self.generation, "startedAt": self.started_at.isoformat()}


def next_link(chain: Chain | None) -> Chain:
    """The chain a follow-up of this invocation carries (a new chain from an invocation outside one)."""
    if chain is None:
        return Chain(generation=1, started_at=datetime.now(UTC))
    return Chain(generation=chain.generation + 1, started_at=chain.started_at)


def start_follow_ups(settings: Settings, chain: Chain, count: int, limit: int) -> int:
    """Send `count` follow-up requests to the worker; returns how many were sent. Never raises."""
    from lib.kick import kick_worker  # only when fanning out: not part of every cold start

    sent = 0
    for _ in range(count):
        if kick_worker(settings, body={"limit": limit, "chain": chain.to_json()}, answer_wait_seconds=0.0):
            sent += 1
    return sent
