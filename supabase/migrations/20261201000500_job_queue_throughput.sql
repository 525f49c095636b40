-- Throughput: the worker's bookkeeping commits without waiting for the WAL
-- flush, and invocations fan out over a backlog under a bound.
--
-- 1. Asynchronous commit of the run's two transactions.
--
-- An invocation of 10 jobs commits twice: job_queue_begin_run (the run row and
-- the claim) and job_queue_complete_run (the successes and the run's close).
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

create or replace function public.job_queue_run_start(
    p_trigger_source text,
    p_limit integer default null,
    p_forced boolean default false
)
returns table (run_id bigint, processing_enabled boolean, paused_reason text)
language sql
set search_path = public, pg_temp
as $$
    -- The transaction recording a worker run (and its claim) commits without
    -- waiting for the WAL flush: see this migration's header.
    select set_config('synchronous_commit', 'off', true);
    with interrupted as (
        update job_queue_runs r
           set status = 'failed',
               error = 'interrupted: the invocation ended without recording its outcome (killed at its time limit?)',
               finished_at = null
         where r.status = 'running' and r.started_at < now() - interval '1 hour'
    ), run as (
        insert into job_queue_runs (trigger_source, requested_limit, forced)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false))
        returning job_queue_runs.id
    )
    select run.id, s.processing_enabled, s.paused_reason
      from run cross join job_queue_settings s
$$;

create or replace function public.job_queue_run_finish(
    p_run_id bigint,
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
    -- As job_queue_run_start: the run's close (and the successes recorded with
    -- it by job_queue_complete_run) commits without waiting for the WAL flush.
    select set_config('synchronous_commit', 'off', true);
    update job_queue_runs r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_run_id
$$;

revoke execute on function public.job_queue_run_start(text, integer, boolean) from public, anon, authenticated;
grant execute on function public.job_queue_run_start(text, integer, boolean) to service_role;
revoke execute on function public.job_queue_run_finish(bigint, text, integer, integer, integer, integer, integer, text)
    from public, anon, authenticated;
grant execute on function public.job_queue_run_finish(bigint, text, integer, integer, integer, integer, integer, text)
    to service_role;
