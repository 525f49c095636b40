-- Throughput (issue 17): a leaner invocation.
--
-- An invocation's two statements, job_queue_begin_run and job_queue_complete_run,
-- composed smaller functions, three of them `language sql` with several
-- statements: PostgreSQL plans such a function's statements again on every call
-- (only PL/pgSQL keeps its plans for the session), and begin_run wrote the run
-- row twice (inserted, then updated with the invocation's id and its jobs).
-- Now both are PL/pgSQL with their statements inline, so every plan is kept by
-- the connection the worker keeps; the run row is written once when the
-- invocation begins and once when it ends; the schedules are evaluated only
-- when one is due (one probe of a handful of rows), and the claim's two passes
-- over expired leases run only when a lease has expired (one index probe).
-- Semantics are those of the definitions they replace (begin_run:
-- 20261201000200_job_queue_schedules.sql; complete_run:
-- 20261128000700_job_queue_two_statement_run.sql; claim:
-- 20261128000100_job_queue.sql; the asynchronous commit:
-- 20261201000500_job_queue_throughput.sql).

-- Claims up to p_limit due jobs for one worker, oldest due first.
--
-- A job left in `processing` past its lease belongs to a worker that died (most
-- often: killed at the function's time limit). The claim takes it over as a new
-- attempt, or fails it for good when its attempts are spent. SKIP LOCKED lets
-- overlapping workers claim disjoint sets without waiting on each other.
create or replace function public.job_queue_claim(
    p_limit integer,
    p_lease interval default interval '15 minutes'
)
returns setof public.job_queue
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_reclaimed integer := 0;
begin
    if p_limit is null or p_limit < 1 then
        raise exception 'p_limit must be at least 1 (got %)', p_limit using errcode = '22023';
    end if;
    if p_lease is null or p_lease <= interval '0' then
        raise exception 'p_lease must be a positive interval (got %)', p_lease using errcode = '22023';
    end if;

    -- Expired leases are rare: one probe of the processing index decides whether to look.
    if exists (select from job_queue s where s.status = 'processing' and s.lease_expires_at <= now()) then
        -- Expired leases with no attempts left: failed for good, saying why.
        update job_queue j
           set status = 'failed',
               last_error = format(
                   'lease expired at %s during attempt %s of %s: the worker stopped before finishing (killed at its time limit?)',
                   j.lease_expires_at, j.attempts, j.max_attempts),
               completed_at = now(),
               updated_at = now(),
               lease_token = null,
               lease_expires_at = null
         where j.id in (
            select s.id from job_queue s
             where s.status = 'processing' and s.lease_expires_at <= now() and s.attempts >= s.max_attempts
             order by s.lease_expires_at
             limit 100
             for update skip locked);

        -- Expired leases with attempts left: taken over as a new attempt.
        return query
        with expired as (
            select s.id from job_queue s
             where s.status = 'processing' and s.lease_expires_at <= now() and s.attempts < s.max_attempts
             order by s.lease_expires_at
             limit p_limit
             for update skip locked
        ), taken as (
            update job_queue j
               set attempts = j.attempts + 1,
                   lease_token = gen_random_uuid(),
                   locked_at = now(),
                   lease_expires_at = now() + p_lease,
                   updated_at = now(),
                   last_error = format('lease expired at %s during attempt %s; reclaimed', j.lease_expires_at, j.attempts)
              from expired
             where j.id = expired.id
            returning j.*
        )
        select * from taken order by run_at;
        get diagnostics v_reclaimed = row_count;
    end if;

    if v_reclaimed < p_limit then
        return query
        with due as (
            select s.id from job_queue s
             where s.status = 'pending' and s.run_at <= now()
             order by s.run_at
             limit p_limit - v_reclaimed
             for update skip locked
        ), claimed as (
            update job_queue j
               set status = 'processing',
                   attempts = j.attempts + 1,
                   lease_token = gen_random_uuid(),
                   locked_at = now(),
                   lease_expires_at = now() + p_lease,
                   updated_at = now()
              from due
             where j.id = due.id
            returning j.*
        )
        select * from claimed order by run_at;
    end if;
end
$$;

-- Records the run and, unless processing is paused (and not forced), claims up to
-- p_limit jobs, after first enqueuing the due schedules' jobs (also while
-- paused, so a paused queue still holds its one pending copy of each), so a job
-- enqueued here can be claimed by this very invocation. Returns one row per
-- claimed job, each carrying the run; when nothing is claimed, one row with the
-- run and NULL job columns. A paused run is recorded already closed, as
-- `paused`. Payloads come back as JSON text, decoded by the worker only when
-- the job's handler runs. `scheduled` (on every row) names the schedules that
-- enqueued or found a live job in this call.
--
-- With p_invocation_id, a repeated call answers the first call's run and the
-- jobs it claimed that are still held (`processing`, locked at the run's
-- start: the claim and the run's row share the transaction's now()), and
-- evaluates no schedule (the first call's enqueues are committed): '{}'.
--
-- The transaction commits without waiting for the WAL flush (see
-- 20261201000500_job_queue_throughput.sql): this transaction only.
create or replace function public.job_queue_begin_run(
    p_trigger_source text,
    p_limit integer,
    p_forced boolean default false,
    p_lease interval default interval '15 minutes',
    p_invocation_id uuid default null
)
returns table (
    run_id bigint,
    processing_enabled boolean,
    paused_reason text,
    scheduled text[],
    id uuid,
    task_type text,
    payload_json text,
    attempts integer,
    max_attempts integer,
    lease_token uuid,
    run_at timestamptz,
    lease_expires_at timestamptz
)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_run bigint;
    v_enabled boolean;
    v_reason text;
    v_status text;
    v_started timestamptz;
    v_ids uuid[];
    v_jobs job_queue[];
    v_scheduled text[] := '{}';
begin
    perform set_config('synchronous_commit', 'off', true);
    if p_invocation_id is not null then
        -- A repeat may arrive while the first call is still running (its client
        -- gave up on the connection, the server did not): wait for it to commit.
        perform pg_advisory_xact_lock(hashtextextended('job_queue_begin_run ' || p_invocation_id::text, 0));
        select r.id, r.status, r.started_at, r.claimed_job_ids
          into v_run, v_status, v_started, v_ids
          from job_queue_runs r
         where r.invocation_id = p_invocation_id;
        if found then
            -- The first call's answer: paused only if it found the queue paused and claimed nothing.
            v_enabled := v_status <> 'paused';
            select s.paused_reason into v_reason from job_queue_settings s;
            return query
            select v_run, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
                   j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
              from unnest(coalesce(v_ids, '{}')) with ordinality as c(id, n)
              join job_queue j on j.id = c.id
             where j.status = 'processing' and j.locked_at = v_started
             order by c.n;
            if found then
                return;
            end if;
            return query
            select v_run, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
                   null::integer, null::uuid, null::timestamptz, null::timestamptz;
            return;
        end if;
    end if;

    -- Nothing due (the common case): one probe of the schedules, no function call.
    if exists (select from job_queue_schedules sc where sc.enabled and sc.next_run_at <= now()) then
        select coalesce(array_agg(d.schedule_name order by d.schedule_name) filter (where d.job_id is not null), '{}')
          into v_scheduled
          from job_queue_enqueue_due_schedules() d;
    end if;

    -- A run still open after an hour (longer than any Vercel function may live)
    -- was interrupted: its invocation never recorded how it ended.
    update job_queue_runs r
       set status = 'failed',
           error = 'interrupted: the invocation ended without recording its outcome (killed at its time limit?)',
           finished_at = null
     where r.status = 'running' and r.started_at < now() - interval '1 hour';

    select s.processing_enabled, s.paused_reason into v_enabled, v_reason from job_queue_settings s;
    if not (v_enabled or coalesce(p_forced, false)) then
        insert into job_queue_runs (trigger_source, requested_limit, forced, invocation_id, status, finished_at,
                                    duration_ms)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_invocation_id,
                'paused', clock_timestamp(), (extract(epoch from clock_timestamp() - now()) * 1000)::integer)
        returning job_queue_runs.id into v_run;
        return query
        select v_run, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
               null::integer, null::uuid, null::timestamptz, null::timestamptz;
        return;
    end if;

    select array_agg(c order by c.n)
      into v_jobs
      from (select c, row_number() over () as n from job_queue_claim(p_limit, p_lease) c) c;
    -- The run's row, written once: its jobs are known by now.
    insert into job_queue_runs (trigger_source, requested_limit, forced, invocation_id, claimed_job_ids)
    values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_invocation_id,
            case when p_invocation_id is not null then (select array_agg(j.id) from unnest(v_jobs) j) end)
    returning job_queue_runs.id into v_run;
    if cardinality(v_jobs) > 0 then
        return query
        select v_run, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
               j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
          from unnest(v_jobs) with ordinality as j
         order by j.ordinality;
        return;
    end if;
    return query
    select v_run, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
           null::integer, null::uuid, null::timestamptz, null::timestamptz;
end
$$;

-- Successes recorded in one statement, fenced as job_queue_mark_succeeded: a
-- job is marked only if it is still `processing` under the lease token given
-- for it, so a job cancelled or taken over meanwhile is left alone and simply
-- absent from the result. (PL/pgSQL, so that its plan is kept.)
create or replace function public.job_queue_mark_succeeded_batch(
    p_ids uuid[],
    p_outputs jsonb[],
    p_lease_tokens uuid[]
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language plpgsql
set search_path = public, pg_temp
as $$
begin
    return query
    update job_queue j
       set status = 'succeeded',
           output = f.output,
           last_error = null,
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
      from unnest(p_ids, p_outputs, p_lease_tokens) as f(id, output, lease_token)
     where j.id = f.id
       and j.status = 'processing'
       and j.lease_token = f.lease_token
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error;
end
$$;

-- Records the invocation's held successes (job_queue_mark_succeeded_batch) and
-- closes the run with its counts; the successes actually recorded are added to
-- p_succeeded. Returns the jobs it marked; a held job missing from the result
-- had lost its lease. Commits without waiting for the WAL flush, as
-- job_queue_begin_run.
create or replace function public.job_queue_complete_run(
    p_run_id bigint,
    p_status text,
    p_claimed integer,
    p_processed integer,
    p_succeeded integer,
    p_failed integer,
    p_released integer,
    p_error text default null,
    p_succeeded_ids uuid[] default '{}',
    p_outputs jsonb[] default '{}',
    p_lease_tokens uuid[] default '{}'
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_marked integer := 0;
begin
    perform set_config('synchronous_commit', 'off', true);
    if cardinality(p_succeeded_ids) > 0 then
        return query
        select m.id, m.status, m.attempts, m.max_attempts, m.run_at, m.last_error
          from job_queue_mark_succeeded_batch(p_succeeded_ids, p_outputs, p_lease_tokens) m;
        get diagnostics v_marked = row_count;
    end if;
    update job_queue_runs r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded + v_marked,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_run_id;
end
$$;

-- Inlined above: the run row is written by job_queue_begin_run and job_queue_complete_run alone.
drop function if exists public.job_queue_run_start(text, integer, boolean);
drop function if exists public.job_queue_run_finish(bigint, text, integer, integer, integer, integer, integer, text);
