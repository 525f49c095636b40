-- What the admin endpoints, the admin dashboard (/dashboard/admin-tools/jobs)
-- and the operator CLI read about the queue.
--
-- The health report must be cheap enough for an uptime monitor to call every
-- minute, however many finished jobs the table holds: one call, one round trip,
-- and every count answered from an index (the partial indexes of
-- 20261128000100_job_queue.sql for pending/processing, the status and finished
-- indexes otherwise), never by reading rows into the application.
--
-- Invocation trigger sources: the admin page's "Run worker now" records its
-- invocations as 'admin_manual'. job_queue_invocations.trigger_source has no
-- check constraint: any label is stored.

create or replace function public.job_queue_health_snapshot(p_recent integer default 10)
returns table (
    checked_at timestamptz,
    processing_enabled boolean,
    paused_reason text,
    settings_updated_at timestamptz,
    pending bigint,
    processing bigint,
    succeeded bigint,
    failed bigint,
    cancelled bigint,
    due_pending bigint,
    oldest_due_pending_age_seconds double precision,
    stuck_jobs bigint,
    failed_last_24h bigint,
    last_run_at timestamptz,
    last_run_age_seconds double precision,
    recent_runs jsonb,
    recent_jobs jsonb
)
language sql
stable
set search_path = public, pg_temp
as $$
    select
        now(),
        s.processing_enabled,
        s.paused_reason,
        s.updated_at,
        -- One count per status rather than a GROUP BY: each is an index-only scan
        -- of its own (partial) index, where a GROUP BY would read the whole table.
        (select count(*) from job_queue j where j.status = 'pending'),
        (select count(*) from job_queue j where j.status = 'processing'),
        (select count(*) from job_queue j where j.status = 'succeeded'),
        (select count(*) from job_queue j where j.status = 'failed'),
        (select count(*) from job_queue j where j.status = 'cancelled'),
        due.n,
        extract(epoch from now() - due.oldest_run_at)::double precision,
        -- Processing past the lease: the worker holding it died (the next claim
        -- will take it over, but until a worker runs nobody does).
        (select count(*) from job_queue j where j.status = 'processing' and j.lease_expires_at <= now()),
        (select count(*) from job_queue j
          where j.status = 'failed' and j.completed_at >= now() - interval '24 hours'),
        runs.last_run_at,
        extract(epoch from now() - runs.last_run_at)::double precision,
        coalesce((
            select jsonb_agg(to_jsonb(r) order by r.started_at desc, r.id desc)
              from (select r.id, r.trigger_source, r.status, r.requested_limit, r.forced, r.claimed,
                           r.processed, r.succeeded, r.failed, r.released, left(r.error, 1000) as error,
                           r.started_at, r.finished_at, r.duration_ms
                      from job_queue_invocations r
                     order by r.started_at desc, r.id desc
                     limit greatest(coalesce(p_recent, 10), 0)) r
        ), '[]'::jsonb),
        coalesce((
            select jsonb_agg(to_jsonb(j) order by j.created_at desc, j.id desc)
              from (select j.id, j.task_type, j.status, j.attempts, j.max_attempts,
                           left(j.last_error, 1000) as last_error, j.run_at, j.created_at,
                           j.updated_at, j.completed_at
                      from job_queue j
                     order by j.created_at desc, j.id desc
                     limit greatest(coalesce(p_recent, 10), 0)) j
        ), '[]'::jsonb)
      from job_queue_settings s
     cross join lateral (
        select count(*) as n, min(j.run_at) as oldest_run_at
          from job_queue j
         where j.status = 'pending' and j.run_at <= now()
     ) due
     cross join lateral (
        select max(r.started_at) as last_run_at from job_queue_invocations r
     ) runs
$$;

comment on function public.job_queue_health_snapshot(integer) is
    'Counts, ages and recent history for /api/admin/job-queue/health and the operator CLI, in one call.';

-- The health panel's bounded lists (at most p_limit, capped at 25), each read
-- through an index: stuck jobs through the partial processing-lease index,
-- overdue ones through the partial pending run_at index, the schedules through
-- their primary key, the last Game Platform sync run through its primary key.
create or replace function public.job_queue_health_details(
    p_overdue_after_seconds double precision,
    p_limit integer default 25
)
returns table (
    stuck jsonb,
    overdue jsonb,
    schedules jsonb,
    last_sync_run jsonb
)
language plpgsql
stable
set search_path = public, pg_temp
as $$
declare
    v_limit integer := least(greatest(coalesce(p_limit, 25), 0), 25);
    v_overdue_after interval := make_interval(secs => greatest(coalesce(p_overdue_after_seconds, 0), 0));
begin
    select coalesce(jsonb_agg(jsonb_build_object(
               'id', j.id,
               'taskType', j.task_type,
               'attempts', j.attempts,
               'maxAttempts', j.max_attempts,
               'lockedAt', j.locked_at,
               'leaseExpiresAt', j.lease_expires_at,
               'lastError', left(j.last_error, 1000)
           ) order by j.lease_expires_at, j.id), '[]'::jsonb)
      into stuck
      from (select * from job_queue q
             where q.status = 'processing' and q.lease_expires_at <= now()
             order by q.lease_expires_at, q.id
             limit v_limit) j;

    select coalesce(jsonb_agg(jsonb_build_object(
               'id', j.id,
               'taskType', j.task_type,
               'attempts', j.attempts,
               'runAt', j.run_at,
               'waitSeconds', round(extract(epoch from now() - j.run_at)::numeric, 3)
           ) order by j.run_at, j.id), '[]'::jsonb)
      into overdue
      from (select * from job_queue q
             where q.status = 'pending' and q.run_at <= now() - v_overdue_after
             order by q.run_at, q.id
             limit v_limit) j;

    select coalesce(jsonb_agg(jsonb_build_object(
               'name', s.name,
               'taskType', s.task_type,
               'cron', s.cron,
               'enabled', s.enabled,
               'nextRunAt', s.next_run_at,
               'lastEnqueuedAt', s.last_enqueued_at
           ) order by s.name), '[]'::jsonb)
      into schedules
      from (select * from job_queue_schedules q order by q.name limit v_limit) s;

    select jsonb_build_object(
               'id', r.id,
               'status', r.status,
               'coachId', r.coach_id,
               'jobId', r.job_id,
               'fullSync', r.full_sync,
               'invocations', r.invocations,
               'counts', r.counts,
               'error', left(r.error, 1000),
               'startedAt', r.started_at,
               'updatedAt', r.updated_at,
               'finishedAt', r.finished_at
           )
      into last_sync_run
      from game_platform_sync_runs r
     order by r.id desc
     limit 1;

    return next;
end
$$;

comment on function public.job_queue_health_details(double precision, integer) is
    'The health panel''s bounded lists: stuck and overdue jobs, schedules, the last Game Platform sync run.';
