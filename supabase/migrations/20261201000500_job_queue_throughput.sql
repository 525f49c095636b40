-- Throughput: the worker's bookkeeping commits without waiting for the WAL
-- flush, status changes write fewer indexes, and invocations fan out over a
-- backlog under a bound.
--
-- 1. Asynchronous commit of the run's two transactions.
--
-- An invocation of 10 jobs commits twice: job_queue_begin_invocation (the run row and
-- the claim) and job_queue_complete_invocation (the successes and the run's close).
-- Measured on the embedded PostgreSQL of bench/run.py, each commit waited
-- ~0.6-0.8 ms for its WAL flush, more than the server work of either statement
-- (bench/drain.py, "where the time goes"); the flush, not the index writes, was
-- what kept us behind pgqueuer on asyncpg. Both transactions now set
-- `synchronous_commit = off` for themselves (set_config(..., true): this
-- transaction only, so it is safe behind a transaction-mode pooler).
--
-- What that gives up, and why it is safe for this queue: only when the database
-- server itself crashes (not the worker) may the last few hundred milliseconds
-- of run bookkeeping be lost (wal_writer_delay, 200 ms, up to three times that).
-- Nothing becomes inconsistent, and no job is lost: enqueues, cancels, retries,
-- failures (job_queue_mark_failed) and the admin switches keep synchronous
-- commits, and WAL is flushed in order, so any later synchronous commit (a job
-- handler's own writes included) makes the earlier run bookkeeping durable too.
-- A lost claim puts the job back as it was (pending); a lost success leaves it
-- `processing` until its lease expires, and it runs again: the at-least-once
-- promise every job already lives with (docs/queue.md). Visibility and locks
-- are unchanged: a committed claim is seen by every other worker at once.
--
-- Both are redefined whole from their latest definitions (run_start:
-- 20261128000500_job_queue_interrupted_runs.sql, run_finish:
-- 20261128000100_job_queue.sql), with the one added statement.

create or replace function public.job_queue_record_invocation_start(
    p_trigger_source text,
    p_limit integer default null,
    p_forced boolean default false
)
returns table (invocation_id bigint, processing_enabled boolean, paused_reason text)
language sql
set search_path = public, pg_temp
as $$
    -- The transaction recording a worker run (and its claim) commits without
    -- waiting for the WAL flush: see this migration's header.
    select set_config('synchronous_commit', 'off', true);
    with interrupted as (
        update job_queue_invocations r
           set status = 'failed',
               error = 'interrupted: the invocation ended without recording its outcome (killed at its time limit?)',
               finished_at = null
         where r.status = 'running' and r.started_at < now() - interval '1 hour'
    ), run as (
        insert into job_queue_invocations (trigger_source, requested_limit, forced)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false))
        returning job_queue_invocations.id
    )
    select run.id, s.processing_enabled, s.paused_reason
      from run cross join job_queue_settings s
$$;

create or replace function public.job_queue_record_invocation_end(
    p_invocation_id bigint,
    p_status text,
    p_claimed integer default 0,
    p_processed integer default 0,
    p_succeeded integer default 0,
    p_failed integer default 0,
    p_released integer default 0,
    p_error text default null
)
returns void
language sql
set search_path = public, pg_temp
as $$
    -- As job_queue_record_invocation_start: the run's close (and the successes recorded with
    -- it by job_queue_complete_invocation) commits without waiting for the WAL flush.
    select set_config('synchronous_commit', 'off', true);
    update job_queue_invocations r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_invocation_id
$$;

revoke execute on function public.job_queue_record_invocation_start(text, integer, boolean) from public, anon, authenticated;
grant execute on function public.job_queue_record_invocation_start(text, integer, boolean) to service_role;
revoke execute on function public.job_queue_record_invocation_end(bigint, text, integer, integer, integer, integer, integer, text)
    from public, anon, authenticated;
grant execute on function public.job_queue_record_invocation_end(bigint, text, integer, integer, integer, integer, integer, text)
    to service_role;

-- 2. Fewer index writes per status change.
--
-- No update of job_queue is HOT (every status change touches `status`, which the
-- claim's partial indexes and the listing index on it read), so each status
-- change wrote a new entry into every non-partial index: the primary key and
-- the three admin listing indexes, three times per job (enqueue, claim, finish).
-- Two of the listing indexes go; measured, -9 % per invocation of 10 jobs:
-- - (status, created_at desc, id desc): the admin list filtered by status now
--   walks (created_at desc, id desc) and filters, which is quick for the common
--   statuses; failed and cancelled jobs, rare and the ones an operator looks
--   for, keep an index of their own, written only when a job fails or is
--   cancelled. The health report's per-status counts stay index-only: pending
--   and processing from the claim's partial indexes, the finished statuses from
--   a partial index on status written once per job, when it finishes.
-- - (task_type, created_at desc, id desc): the list filtered by task type walks
--   (created_at desc, id desc) and filters (an admin page, 50 rows at a time).
-- The claim does not read any of them (tests/test_claim_plan.py).

drop index if exists public.job_queue_status_created_idx;
drop index if exists public.job_queue_task_type_created_idx;
create index if not exists job_queue_finished_status_idx
    on public.job_queue (status)
    where status in ('succeeded', 'failed', 'cancelled');
create index if not exists job_queue_unsuccessful_created_idx
    on public.job_queue (created_at desc, id desc)
    where status in ('failed', 'cancelled');

-- 3. Fan-out over a backlog, bounded.
--
-- An invocation claims at most 10 jobs. When due jobs remain after its claim
-- and the worker's URL is known, it starts follow-up invocations (lib/fanout.py)
-- so that one cron tick drains a backlog. The bound is kept here, race-safe:
-- a follow-up is admitted by job_queue_fanout_admit, in the same transaction as
-- its job_queue_begin_invocation, under one advisory lock, so admissions are serialised
-- and each one counts the runs already recorded as `running` by those before
-- it (the lock is held until the admitted run's row is committed). The runs
-- started by cron, pg_net or an operator count too; those are never refused.
--
-- A chain carries its generation and the moment its first invocation started;
-- a follow-up past JOB_WORKER_FANOUT_MAX_GENERATIONS or
-- JOB_WORKER_FANOUT_MAX_SECONDS is refused, and so is any while processing is
-- paused: a paused queue stops the chain.

-- A run is live while it is `running` and younger than an hour (older ones were
-- interrupted: job_queue_record_invocation_start closes them).
create or replace function public.job_queue_live_invocations()
returns integer
language sql
stable
set search_path = public, pg_temp
as $$
    select count(*)::integer
      from job_queue_invocations r
     where r.status = 'running' and r.started_at > now() - interval '1 hour'
$$;

-- Admits a follow-up invocation, or says why not. Call it in the transaction
-- that then calls job_queue_begin_invocation.
create or replace function public.job_queue_fanout_admit(
    p_max_parallel integer,
    p_generation integer,
    p_max_generations integer,
    p_chain_started_at timestamptz,
    p_max_chain interval
)
returns table (admitted boolean, reason text, live_invocations integer)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_live integer;
    v_enabled boolean;
begin
    if p_max_parallel is null or p_max_parallel < 1 then
        raise exception 'p_max_parallel must be at least 1 (got %)', p_max_parallel using errcode = '22023';
    end if;
    perform pg_advisory_xact_lock(hashtextextended('job_queue_fanout_admit', 0));
    -- Read after the lock: in READ COMMITTED each statement sees what the
    -- admissions before this one committed.
    v_live := job_queue_live_invocations();
    select s.processing_enabled into v_enabled from job_queue_settings s;
    if not coalesce(v_enabled, true) then
        return query select false, 'processing is paused', v_live;
    elsif p_generation is null or p_generation > p_max_generations then
        return query select false, format('the chain reached its generation limit (%s)', p_max_generations), v_live;
    elsif p_chain_started_at is null or now() - p_chain_started_at > p_max_chain then
        return query select false, format('the chain is older than its time limit (%s)', p_max_chain), v_live;
    elsif v_live >= p_max_parallel then
        return query select false, format('%s invocations are running (the limit is %s)', v_live, p_max_parallel),
                            v_live;
    else
        return query select true, null::text, v_live;
    end if;
end
$$;

-- How many follow-ups an invocation should start now: none while paused or
-- when no due job is left unclaimed, else the free places under the bound.
-- Not locked: a count that is stale by the time the follow-ups arrive only
-- costs refused admissions, never an extra running invocation.
create or replace function public.job_queue_fanout_slots(p_max_parallel integer)
returns integer
language sql
stable
set search_path = public, pg_temp
as $$
    select case
               when not s.processing_enabled then 0
               when not exists (select 1 from job_queue j where j.status = 'pending' and j.run_at <= now()) then 0
               else greatest(0, coalesce(p_max_parallel, 1) - job_queue_live_invocations())
           end
      from job_queue_settings s
$$;

revoke execute on function public.job_queue_live_invocations() from public, anon, authenticated;
revoke execute on function public.job_queue_fanout_admit(integer, integer, integer, timestamptz, interval)
    from public, anon, authenticated;
revoke execute on function public.job_queue_fanout_slots(integer) from public, anon, authenticated;
grant execute on function public.job_queue_live_invocations() to service_role;
grant execute on function public.job_queue_fanout_admit(integer, integer, integer, timestamptz, interval)
    to service_role;
grant execute on function public.job_queue_fanout_slots(integer) to service_role;
