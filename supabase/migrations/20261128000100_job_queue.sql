-- The job queue: its tables and the functions that decide what happens to a
-- job (enqueue, claim, finish, cancel, retry, delete, retention) and to a
-- worker invocation (begin, complete, fan-out).
--
-- The worker's path through SQL, in the order an invocation takes it:
-- job_queue_begin_invocation (evaluate the due schedules, record the
-- invocation, read the pause switch, claim), the handlers' job_queue_mark_failed,
-- then job_queue_complete_invocation (the held successes, the invocation's
-- close). The schedules themselves are in 20261128000200_job_queue_schedules.sql,
-- the admin reads in 20261128000300_job_queue_admin.sql.
--
-- Current-state schema: each function here is its one definition, each table is
-- created in its final shape. Migrations are append-only from here on: change a
-- function or a table in a NEW migration file, never by editing an applied one
-- (docs/migrations.md). Privileges are applied in one place, by
-- job_queue_apply_privileges() (20261128000900_privileges.sql): every function
-- callable only by the service role / the bundle's own connection, since
-- Supabase exposes `public` through its REST API. Each table is created with
-- row level security on.
--
-- An adopted database (docs/adoption.md) already has job_queue and
-- job_queue_settings, converted by 20261128000050_adopt_original_app.sql:
-- hence `if not exists` on them and their indexes.

-- ---------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------

create table if not exists public.job_queue (
    id uuid primary key default gen_random_uuid(),
    task_type text not null check (length(task_type) between 1 and 200),
    payload jsonb not null default '{}'::jsonb,
    status text not null default 'pending'
        check (status in ('pending', 'processing', 'succeeded', 'failed', 'cancelled')),
    run_at timestamptz not null default now(),
    attempts integer not null default 0 check (attempts >= 0),
    max_attempts integer not null default 5 check (max_attempts >= 1),
    last_error text,
    output jsonb,
    -- Equal jobs share a dedupe key; at most one of them is pending or processing.
    dedupe_key text,
    -- Fencing: each claim stamps a fresh token; a finish that quotes an old token
    -- (the lease was taken over, or the job was cancelled) changes nothing.
    lease_token uuid,
    locked_at timestamptz,
    lease_expires_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    completed_at timestamptz
);

comment on table public.job_queue is
    'Background jobs drained by /api/jobs/run. Change rows only through the job_queue_* functions.';

alter table public.job_queue enable row level security;

-- The claim reads only these two partial indexes, so its cost does not grow with
-- the number of finished jobs (not in either index) or future jobs (past the
-- `run_at <= now()` end of the ordered scan).
create index if not exists job_queue_pending_run_at_idx
    on public.job_queue (run_at) where status = 'pending';
create index if not exists job_queue_processing_lease_idx
    on public.job_queue (lease_expires_at) where status = 'processing';
-- One live job per dedupe key: this is what makes concurrent equal triggers safe.
create unique index if not exists job_queue_live_dedupe_key_idx
    on public.job_queue (task_type, dedupe_key)
    where dedupe_key is not null and status in ('pending', 'processing');
-- Admin listing (newest first, keyset) and the retention sweep.
create index if not exists job_queue_created_idx
    on public.job_queue (created_at desc, id desc);
create index if not exists job_queue_finished_idx
    on public.job_queue (completed_at)
    where status in ('succeeded', 'failed', 'cancelled');
-- Few index writes per status change. No update of job_queue is HOT (every
-- status change touches `status`, which the partial indexes read), so each
-- status change writes a new entry into every non-partial index; there are two,
-- the primary key and (created_at desc, id desc). The admin list filtered by
-- status or task type walks that one and filters (50 rows at a time); failed
-- and cancelled jobs, rare and the ones an operator looks for, have an index of
-- their own, written only when a job fails or is cancelled. The health report's
-- per-status counts stay index-only: pending and processing from the claim's
-- partial indexes, the finished statuses from a partial index on status written
-- once per job, when it finishes. The claim reads none of these
-- (tests/test_claim_plan.py).
create index if not exists job_queue_finished_status_idx
    on public.job_queue (status)
    where status in ('succeeded', 'failed', 'cancelled');
create index if not exists job_queue_unsuccessful_created_idx
    on public.job_queue (created_at desc, id desc)
    where status in ('failed', 'cancelled');

create table if not exists public.job_queue_settings (
    -- A constant primary key keeps this table at exactly one row.
    id boolean primary key default true check (id),
    processing_enabled boolean not null default true,
    paused_reason text,
    updated_at timestamptz not null default now()
);

insert into public.job_queue_settings (id) values (true) on conflict (id) do nothing;

comment on table public.job_queue_settings is
    'The queue''s global pause switch (one row). The worker reads it on every call.';

alter table public.job_queue_settings enable row level security;

-- One row per worker invocation, so the health report can say when the worker
-- last ran and how it went.
create table if not exists public.job_queue_invocations (
    id bigint generated always as identity primary key,
    trigger_source text not null,
    status text not null default 'running'
        check (status in ('running', 'completed', 'paused', 'failed')),
    requested_limit integer,
    forced boolean not null default false,
    claimed integer not null default 0,
    processed integer not null default 0,
    succeeded integer not null default 0,
    failed integer not null default 0,
    released integer not null default 0,
    error text,
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    duration_ms integer,
    idempotency_key uuid,
    claimed_job_ids uuid[]
);

comment on table public.job_queue_invocations is
    'One row per worker invocation (/api/jobs/run, admin run-worker, fan-out follow-up): its trigger, counts and outcome.';
comment on column public.job_queue_invocations.idempotency_key is
    'The worker''s id for the invocation: a re-sent job_queue_begin_invocation with it answers the first one''s invocation and jobs.';
comment on column public.job_queue_invocations.claimed_job_ids is
    'The jobs job_queue_begin_invocation claimed for this invocation, in the order it returned them.';

alter table public.job_queue_invocations enable row level security;

create index if not exists job_queue_invocations_started_idx on public.job_queue_invocations (started_at desc);
-- The open invocations: what job_queue_begin_invocation probes for interrupted
-- ones and job_queue_live_invocations counts.
create index if not exists job_queue_invocations_open_idx
    on public.job_queue_invocations (started_at) where status = 'running';
create unique index if not exists job_queue_invocations_idempotency_key_idx
    on public.job_queue_invocations (idempotency_key) where idempotency_key is not null;

-- ---------------------------------------------------------------------------
-- Enqueue
-- ---------------------------------------------------------------------------

-- The canonical dedupe key of a payload. jsonb prints keys in a canonical order,
-- so equal payloads get equal keys wherever they are enqueued from (the admin
-- endpoints, the schedules, the CLI).
create or replace function public.job_queue_payload_key(p_payload jsonb)
returns text
language sql
immutable
parallel safe
set search_path = public, pg_temp
as $$
    select md5(coalesce(p_payload, '{}'::jsonb)::text)
$$;

-- Enqueue unless an equal live job exists; says which happened.
create or replace function public.job_queue_enqueue_unique(
    p_task_type text,
    p_payload jsonb,
    p_dedupe_key text,
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5
)
returns table (job_id uuid, deduplicated boolean)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_id uuid;
begin
    if p_dedupe_key is null then
        raise exception 'job_queue_enqueue_unique needs a dedupe key' using errcode = '22004';
    end if;
    -- The loop closes a race: the live job we collided with may finish between
    -- our insert and our lookup, in which case we insert again.
    for i in 1..5 loop
        insert into job_queue (task_type, payload, run_at, max_attempts, dedupe_key)
        values (p_task_type, coalesce(p_payload, '{}'::jsonb), coalesce(p_run_at, now()),
                coalesce(p_max_attempts, 5), p_dedupe_key)
        on conflict (task_type, dedupe_key)
            where dedupe_key is not null and status in ('pending', 'processing')
            do nothing
        returning id into v_id;
        if v_id is not null then
            return query select v_id, false;
            return;
        end if;
        select j.id into v_id
          from job_queue j
         where j.task_type = p_task_type
           and j.dedupe_key = p_dedupe_key
           and j.status in ('pending', 'processing');
        if v_id is not null then
            return query select v_id, true;
            return;
        end if;
    end loop;
    raise exception 'could not enqueue % with dedupe key %: contention', p_task_type, p_dedupe_key
        using errcode = '40001';
end
$$;

-- The seed's four-argument call always inserts a new job; a dedupe key opts in
-- to deduplication and returns the live equal job's id instead of a new one.
create or replace function public.job_queue_enqueue(
    p_task_type text,
    p_payload jsonb default '{}'::jsonb,
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5,
    p_dedupe_key text default null
)
returns uuid
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_id uuid;
begin
    if p_dedupe_key is not null then
        select e.job_id into v_id
          from job_queue_enqueue_unique(p_task_type, p_payload, p_dedupe_key, p_run_at, p_max_attempts) e;
        return v_id;
    end if;
    insert into job_queue (task_type, payload, run_at, max_attempts)
    values (p_task_type, coalesce(p_payload, '{}'::jsonb), coalesce(p_run_at, now()), coalesce(p_max_attempts, 5))
    returning id into v_id;
    return v_id;
end
$$;

-- Many jobs of one type in one statement (continuations, bulk triggers).
create or replace function public.job_queue_enqueue_batch(
    p_task_type text,
    p_payloads jsonb[],
    p_run_at timestamptz default now(),
    p_max_attempts integer default 5
)
returns setof uuid
language sql
set search_path = public, pg_temp
as $$
    insert into job_queue (task_type, payload, run_at, max_attempts)
    select p_task_type, coalesce(p.payload, '{}'::jsonb), coalesce(p_run_at, now()), coalesce(p_max_attempts, 5)
      from unnest(p_payloads) with ordinality as p(payload, n)
     order by p.n
    returning id
$$;

-- ---------------------------------------------------------------------------
-- Claim
-- ---------------------------------------------------------------------------

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

-- ---------------------------------------------------------------------------
-- Finish: succeeded, failed (with or without retry), released
-- ---------------------------------------------------------------------------
-- Each acts only on a job still in `processing` and, when a lease token is
-- given, still under that token. An empty result means "not yours any more":
-- the job was cancelled, finished, or taken over after its lease expired.

create or replace function public.job_queue_mark_succeeded(
    p_id uuid,
    p_output jsonb default null,
    p_lease_token uuid default null
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language sql
set search_path = public, pg_temp
as $$
    update job_queue j
       set status = 'succeeded',
           output = p_output,
           last_error = null,
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id
       and j.status = 'processing'
       and (p_lease_token is null or j.lease_token = p_lease_token)
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error
$$;

-- Successes recorded in one statement, with the same fencing as
-- job_queue_mark_succeeded: a job is marked only if it is still `processing`
-- under the lease token given for it, so a job cancelled or taken over
-- meanwhile is left alone and simply absent from the result. Most jobs finish
-- in milliseconds; the worker writes an invocation's successes together
-- (job_queue_complete_invocation) rather than one round trip each. PL/pgSQL, so
-- that a connection keeps its plan (a `language sql` function of a statement
-- that cannot be inlined, such as an UPDATE, is planned again on every call).
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

-- A NULL p_retry_in fails the job for good; otherwise it goes back to pending at
-- now() + p_retry_in while attempts remain, and fails for good once they are spent.
create or replace function public.job_queue_mark_failed(
    p_id uuid,
    p_error text,
    p_retry_in interval default null,
    p_lease_token uuid default null
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language sql
set search_path = public, pg_temp
as $$
    update job_queue j
       set status = case when p_retry_in is not null and j.attempts < j.max_attempts
                         then 'pending' else 'failed' end,
           run_at = case when p_retry_in is not null and j.attempts < j.max_attempts
                         then now() + greatest(p_retry_in, interval '0') else j.run_at end,
           completed_at = case when p_retry_in is not null and j.attempts < j.max_attempts
                               then null else now() end,
           last_error = left(coalesce(p_error, 'unknown error'), 20000),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id
       and j.status = 'processing'
       and (p_lease_token is null or j.lease_token = p_lease_token)
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error
$$;

-- Hands a claimed but never started job back: pending again, the attempt not
-- counted, due `p_delay` from now (null: as it was). The worker hands back a job
-- it lacks a setting for (JobNotConfigured) a minute later when it may fan out,
-- so that a follow-up does not claim it again at once (lib/worker.py).
create or replace function public.job_queue_release(
    p_id uuid,
    p_lease_token uuid default null,
    p_delay interval default null
)
returns boolean
language sql
set search_path = public, pg_temp
as $$
    with released as (
        update job_queue j
           set status = 'pending',
               attempts = greatest(j.attempts - 1, 0),
               run_at = case when p_delay is null then j.run_at else now() + p_delay end,
               updated_at = now(),
               locked_at = null,
               lease_token = null,
               lease_expires_at = null
         where j.id = p_id
           and j.status = 'processing'
           and (p_lease_token is null or j.lease_token = p_lease_token)
        returning 1
    )
    select exists (select from released)
$$;

-- ---------------------------------------------------------------------------
-- Operator actions: cancel, retry, delete, pause
-- ---------------------------------------------------------------------------

-- Cancels a pending or processing job. A processing job's lease token is cleared,
-- so its worker's later success or failure (which quotes the token) changes nothing.
-- `changed` is false, with the current status, when the job was already finished.
create or replace function public.job_queue_cancel(p_id uuid, p_reason text default null)
returns table (id uuid, status text, previous_status text, changed boolean)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_status text;
begin
    select j.status into v_status from job_queue j where j.id = p_id for update;
    if not found then
        return;
    end if;
    if v_status not in ('pending', 'processing') then
        return query select p_id, v_status, v_status, false;
        return;
    end if;
    update job_queue j
       set status = 'cancelled',
           last_error = coalesce(p_reason, format('cancelled while %s', v_status)),
           completed_at = now(),
           updated_at = now(),
           lease_token = null,
           lease_expires_at = null
     where j.id = p_id;
    return query select p_id, 'cancelled'::text, v_status, true;
end
$$;

-- Puts a failed, cancelled or pending job back to pending, due now, with at least
-- one attempt left. `changed` is false for a processing or succeeded job, and for
-- one whose equal twin is already live (`duplicate_of` names it).
--
-- The twin check alone is not enough: two equal jobs retried at once (or a retry
-- and an equal trigger) each find no live twin, and the second to write hits the
-- live-dedupe-key unique index. That unique_violation is caught here and answered
-- like the check: by then the twin has committed, so the next look finds it. The
-- twin may also have finished in between; then the retry is tried again.
create or replace function public.job_queue_retry(p_id uuid)
returns table (id uuid, status text, previous_status text, changed boolean, duplicate_of uuid)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_job job_queue;
    v_twin uuid;
begin
    select * into v_job from job_queue j where j.id = p_id for update;
    if not found then
        return;
    end if;
    if v_job.status not in ('failed', 'cancelled', 'pending') then
        return query select p_id, v_job.status, v_job.status, false, null::uuid;
        return;
    end if;
    for i in 1..5 loop
        if v_job.dedupe_key is not null and v_job.status <> 'pending' then
            select j.id into v_twin from job_queue j
             where j.task_type = v_job.task_type and j.dedupe_key = v_job.dedupe_key
               and j.status in ('pending', 'processing') and j.id <> p_id
             limit 1;
            if v_twin is not null then
                return query select p_id, v_job.status, v_job.status, false, v_twin;
                return;
            end if;
        end if;
        begin
            update job_queue j
               set status = 'pending',
                   run_at = now(),
                   max_attempts = greatest(j.max_attempts, j.attempts + 1),
                   completed_at = null,
                   updated_at = now(),
                   locked_at = null,
                   lease_token = null,
                   lease_expires_at = null
             where j.id = p_id;
            return query select p_id, 'pending'::text, v_job.status, true, null::uuid;
            return;
        exception when unique_violation then
            null;  -- an equal job went live after the check: look again
        end;
    end loop;
    raise exception 'could not retry job %: an equal job keeps starting and finishing', p_id
        using errcode = '40001';
end
$$;

-- Remove a job unless it is processing. One DELETE decides: a concurrent claim
-- that locked the row first makes this statement wait, then re-check the row's
-- new version (status 'processing') and delete nothing; a claim that comes
-- second skips the row this statement holds (SKIP LOCKED) and never sees it.
-- So a job is never deleted out from under the worker that holds it.
-- No row: no job has this id. Otherwise `deleted` says what happened and
-- `status` is the job's status (as deleted, or as it stands).
create or replace function public.job_queue_delete(p_id uuid)
returns table (id uuid, task_type text, status text, deleted boolean)
language plpgsql
set search_path = public, pg_temp
as $$
begin
    return query
        delete from job_queue j
         where j.id = p_id and j.status <> 'processing'
        returning j.id, j.task_type, j.status, true;
    if found then
        return;
    end if;
    return query
        select j.id, j.task_type, j.status, false from job_queue j where j.id = p_id;
end
$$;

comment on function public.job_queue_delete(uuid) is
    'Delete a job that is not processing; answers (id, task_type, status, deleted), or no row when no job has the id.';

create or replace function public.job_queue_set_processing(p_enabled boolean, p_reason text default null)
returns setof public.job_queue_settings
language sql
set search_path = public, pg_temp
as $$
    update job_queue_settings s
       set processing_enabled = p_enabled,
           paused_reason = case when p_enabled then null else nullif(btrim(p_reason), '') end,
           updated_at = now()
     where s.id
    returning s.*
$$;

-- ---------------------------------------------------------------------------
-- Worker invocations
-- ---------------------------------------------------------------------------
--
-- An invocation is two statements, each its own committed transaction: begin
-- (evaluate the due schedules, read the pause switch, claim, record the
-- invocation) and complete (record the held successes, close the invocation).
-- Both are PL/pgSQL with their statements inline, so the connection the worker
-- keeps between warm invocations keeps every plan; the invocation's row is
-- written once by each. (Measured per invocation of 10 jobs, bench/drain.py:
-- composing `language sql` helpers, planned again on every call, and writing
-- the row three times cost a quarter of the invocation.)
--
-- Both commit without waiting for the WAL flush: each sets
-- `synchronous_commit = off` for its own transaction only (set_config(...,
-- true), so it is safe behind a transaction-mode pooler). Each flush cost
-- ~0.6-0.8 ms, more than the server work of either statement. What that gives
-- up: only when the database server itself crashes (not the worker) may the
-- last few hundred milliseconds of invocation bookkeeping be lost
-- (wal_writer_delay, 200 ms, up to three times that). Nothing becomes
-- inconsistent and no job is lost: enqueues, cancels, retries, failures
-- (job_queue_mark_failed) and the admin switches keep synchronous commits, and
-- WAL is flushed in order, so any later synchronous commit (a job handler's own
-- writes included) makes the earlier bookkeeping durable too. A lost claim puts
-- the job back as it was (pending); a lost success leaves it `processing` until
-- its lease expires, and it runs again: the at-least-once promise every job
-- already lives with (docs/queue.md).
--
-- A worker killed at its time limit never records how its invocation ended, so
-- its row would say `running` forever. The next invocation closes such rows: one
-- still open after an hour (longer than any Vercel function may live) was
-- interrupted.

-- The invocation's first statement. Enqueues the due schedules' jobs (also
-- while paused, so a paused queue still holds its one pending copy of each, and
-- so a job enqueued here can be claimed by this very invocation), closes
-- interrupted invocations, and, unless processing is paused (and not forced),
-- claims up to p_limit jobs; then records the invocation. Returns one row per
-- claimed job, each carrying the invocation; when nothing is claimed, one row
-- with the invocation and NULL job columns. A paused invocation is recorded
-- already closed, as `paused`. Payloads come back as JSON text, decoded by the
-- worker only when the job's handler runs. `scheduled` (on every row) names the
-- schedules that enqueued or found a live job in this call.
--
-- It may be sent twice. The worker keeps its connection between warm
-- invocations; a kept connection can break unseen (the pooler or a NAT dropped
-- it), and a begin that failed after reaching the server may have recorded an
-- invocation and claimed jobs whose reply never came back. So each invocation
-- names itself with an id generated by the worker (`p_idempotency_key`), and
-- begin remembers which invocation and which jobs that id got: a begin re-sent
-- with the same id returns the same invocation and the same jobs still held
-- under the same leases (nothing is claimed twice, nothing is stranded), and
-- evaluates no schedule (`scheduled` is '{}'). Without an id (NULL, the default)
-- every call is a new invocation. A job is still "held by that invocation"
-- while it is `processing` and was locked at the invocation's start: the claim
-- and the invocation's row are written in the one transaction, so the
-- invocation's `started_at` and each claimed job's `locked_at` are the same
-- now(); a later takeover stamps a later one. No lease token is stored outside
-- job_queue (the invocation history is readable by admins).
create or replace function public.job_queue_begin_invocation(
    p_trigger_source text,
    p_limit integer,
    p_forced boolean default false,
    p_lease interval default interval '15 minutes',
    p_idempotency_key uuid default null
)
returns table (
    invocation_id bigint,
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
    v_invocation bigint;
    v_enabled boolean;
    v_reason text;
    v_status text;
    v_started timestamptz;
    v_ids uuid[];
    v_jobs job_queue[];
    v_scheduled text[] := '{}';
begin
    -- This transaction commits without waiting for the WAL flush: see "Worker invocations" above.
    perform set_config('synchronous_commit', 'off', true);
    if p_idempotency_key is not null then
        -- A repeat may arrive while the first call is still running (its client
        -- gave up on the connection, the server did not): wait for it to commit.
        perform pg_advisory_xact_lock(hashtextextended('job_queue_begin_invocation ' || p_idempotency_key::text, 0));
        select r.id, r.status, r.started_at, r.claimed_job_ids
          into v_invocation, v_status, v_started, v_ids
          from job_queue_invocations r
         where r.idempotency_key = p_idempotency_key;
        if found then
            -- The first call's answer: paused only if it found the queue paused and claimed nothing.
            v_enabled := v_status <> 'paused';
            select s.paused_reason into v_reason from job_queue_settings s;
            return query
            select v_invocation, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
                   j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
              from unnest(coalesce(v_ids, '{}')) with ordinality as c(id, n)
              join job_queue j on j.id = c.id
             where j.status = 'processing' and j.locked_at = v_started
             order by c.n;
            if found then
                return;
            end if;
            return query
            select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
                   null::integer, null::uuid, null::timestamptz, null::timestamptz;
            return;
        end if;
    end if;

    -- Nothing due, the common case, costs one probe of job_queue_schedules_due_idx.
    if exists (select from job_queue_schedules sc where sc.enabled and sc.next_run_at <= now()) then
        select coalesce(array_agg(d.schedule_name order by d.schedule_name) filter (where d.job_id is not null), '{}')
          into v_scheduled
          from job_queue_enqueue_due_schedules() d;
    end if;

    update job_queue_invocations r
       set status = 'failed',
           error = 'interrupted: the invocation ended without recording its outcome (killed at its time limit?)',
           finished_at = null
     where r.status = 'running' and r.started_at < now() - interval '1 hour';

    select s.processing_enabled, s.paused_reason into v_enabled, v_reason from job_queue_settings s;
    if not (v_enabled or coalesce(p_forced, false)) then
        insert into job_queue_invocations (trigger_source, requested_limit, forced, idempotency_key, status,
                                           finished_at, duration_ms)
        values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_idempotency_key,
                'paused', clock_timestamp(), (extract(epoch from clock_timestamp() - now()) * 1000)::integer)
        returning job_queue_invocations.id into v_invocation;
        return query
        select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
               null::integer, null::uuid, null::timestamptz, null::timestamptz;
        return;
    end if;

    select array_agg(x.job order by x.n)
      into v_jobs
      from (select c as job, row_number() over () as n from job_queue_claim(p_limit, p_lease) c) x;
    insert into job_queue_invocations (trigger_source, requested_limit, forced, idempotency_key, claimed_job_ids)
    values (coalesce(p_trigger_source, 'unknown'), p_limit, coalesce(p_forced, false), p_idempotency_key,
            case when p_idempotency_key is not null then (select array_agg(j.id) from unnest(v_jobs) j) end)
    returning job_queue_invocations.id into v_invocation;
    if cardinality(v_jobs) > 0 then
        return query
        select v_invocation, v_enabled, v_reason, v_scheduled, j.id, j.task_type, j.payload::text, j.attempts,
               j.max_attempts, j.lease_token, j.run_at, j.lease_expires_at
          from unnest(v_jobs) with ordinality as j
         order by j.ordinality;
        return;
    end if;
    return query
    select v_invocation, v_enabled, v_reason, v_scheduled, null::uuid, null::text, null::text, null::integer,
           null::integer, null::uuid, null::timestamptz, null::timestamptz;
end
$$;

-- Records the invocation's held successes (job_queue_mark_succeeded_batch,
-- fenced by lease token) and closes the invocation with its counts; the
-- successes actually recorded are added to p_succeeded. Returns the jobs it
-- marked; a held job missing from the result had lost its lease.
create or replace function public.job_queue_complete_invocation(
    p_invocation_id bigint,
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
    -- As job_queue_begin_invocation: no wait for the WAL flush, this transaction only.
    perform set_config('synchronous_commit', 'off', true);
    if cardinality(p_succeeded_ids) > 0 then
        return query
        select m.id, m.status, m.attempts, m.max_attempts, m.run_at, m.last_error
          from job_queue_mark_succeeded_batch(p_succeeded_ids, p_outputs, p_lease_tokens) m;
        get diagnostics v_marked = row_count;
    end if;
    update job_queue_invocations r
       set status = p_status,
           claimed = p_claimed,
           processed = p_processed,
           succeeded = p_succeeded + v_marked,
           failed = p_failed,
           released = p_released,
           error = left(p_error, 20000),
           finished_at = clock_timestamp(),
           duration_ms = (extract(epoch from clock_timestamp() - r.started_at) * 1000)::integer
     where r.id = p_invocation_id;
end
$$;

-- ---------------------------------------------------------------------------
-- Fan-out over a backlog, bounded
-- ---------------------------------------------------------------------------
--
-- An invocation claims at most 10 jobs. When due jobs remain after its claim
-- and the worker's URL is known, it starts follow-up invocations (lib/fanout.py)
-- so that one cron tick drains a backlog. The bound is kept here, race-safe:
-- a follow-up is admitted by job_queue_fanout_admit, in the same transaction as
-- its job_queue_begin_invocation, under one advisory lock, so admissions are
-- serialised and each one counts the invocations already recorded as `running`
-- by those before it (the lock is held until the admitted invocation's row is
-- committed). The invocations started by cron, pg_net or an operator count too;
-- those are never refused.
--
-- A chain carries its generation and the moment its first invocation started;
-- a follow-up past JOB_WORKER_FANOUT_MAX_GENERATIONS or
-- JOB_WORKER_FANOUT_MAX_SECONDS is refused, and so is any while processing is
-- paused: a paused queue stops the chain.

-- An invocation is live while it is `running` and younger than an hour (older
-- ones were interrupted: job_queue_begin_invocation closes them).
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

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- Deletes finished jobs and worker invocations older than p_older_than,
-- p_batch_size rows per statement and at most p_max_batches statements per
-- table, so one call never holds many locks or bloats WAL. Returns how many rows
-- it removed; call again while it returns a full count.
create or replace function public.job_queue_cleanup(
    p_older_than interval default interval '30 days',
    p_batch_size integer default 1000,
    p_max_batches integer default 50
)
returns integer
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_total integer := 0;
    v_batch integer;
begin
    if p_older_than is null or p_older_than < interval '0' then
        raise exception 'p_older_than must be a non-negative interval' using errcode = '22023';
    end if;
    if p_batch_size is null or p_batch_size < 1 or p_max_batches is null or p_max_batches < 1 then
        raise exception 'p_batch_size and p_max_batches must be at least 1' using errcode = '22023';
    end if;
    for i in 1..p_max_batches loop
        delete from job_queue j
         where j.id in (
            select s.id from job_queue s
             where s.status in ('succeeded', 'failed', 'cancelled')
               and s.completed_at < now() - p_older_than
             order by s.completed_at
             limit p_batch_size
             for update skip locked);
        get diagnostics v_batch = row_count;
        v_total := v_total + v_batch;
        exit when v_batch < p_batch_size;
    end loop;
    for i in 1..p_max_batches loop
        delete from job_queue_invocations r
         where r.id in (
            select s.id from job_queue_invocations s
             where s.started_at < now() - p_older_than
             order by s.started_at
             limit p_batch_size);
        get diagnostics v_batch = row_count;
        v_total := v_total + v_batch;
        exit when v_batch < p_batch_size;
    end loop;
    return v_total;
end
$$;
