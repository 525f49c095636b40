-- What the admin endpoints and the operator CLI read about the queue.
--
-- The health report must be cheap enough for an uptime monitor to call every
-- minute, however many finished jobs the table holds: one call, one round trip,
-- and every count answered from an index (the partial indexes of the core
-- migration for pending/processing, the status and finished indexes otherwise),
-- never by reading rows into the application.

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

revoke execute on function public.job_queue_health_snapshot(integer) from public, anon, authenticated;
grant execute on function public.job_queue_health_snapshot(integer) to service_role;
