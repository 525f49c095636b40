-- What the admin dashboard (/dashboard/admin-tools/jobs) needs from the queue
-- beyond the core health snapshot: the lists behind its health panel, and the
-- operator's delete.
--
-- Run-history trigger sources: the admin page's "Run worker now" records its
-- invocations as 'admin_manual'. job_queue_invocations.trigger_source has no check
-- constraint (any label is stored), so nothing needs widening here.

-- ---------------------------------------------------------------------------
-- Health details: stuck, overdue, schedules, last sync run
-- ---------------------------------------------------------------------------

-- Bounded lists (at most p_limit, capped at 25), each read through an index:
-- stuck jobs through the partial processing-lease index, overdue ones through
-- the partial pending run_at index, the last sync run through its primary key.
--
-- Schedules live in job_queue_schedules, which a later migration adds. Until it
-- exists the list is empty; the table is read with a dynamic statement so this
-- function can be created (and keeps working) either way, and each column is
-- taken from the row's JSON so a missing column reads as null rather than failing.
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

    schedules := '[]'::jsonb;
    if to_regclass('public.job_queue_schedules') is not null then
        execute $sql$
            select coalesce(jsonb_agg(jsonb_build_object(
                       'name', r.s -> 'name',
                       'taskType', r.s -> 'task_type',
                       'cron', coalesce(r.s -> 'cron', r.s -> 'schedule'),
                       'enabled', r.s -> 'enabled',
                       'nextRunAt', r.s -> 'next_run_at',
                       'lastEnqueuedAt', r.s -> 'last_enqueued_at'
                   ) order by r.s ->> 'name'), '[]'::jsonb)
              from (select to_jsonb(t) as s from public.job_queue_schedules t
                     order by to_jsonb(t) ->> 'name' limit $1) r
        $sql$
        into schedules
        using v_limit;
    end if;

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

revoke execute on function public.job_queue_health_details(double precision, integer) from public, anon, authenticated;
grant execute on function public.job_queue_health_details(double precision, integer) to service_role;

-- ---------------------------------------------------------------------------
-- Delete
-- ---------------------------------------------------------------------------

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

revoke execute on function public.job_queue_delete(uuid) from public, anon, authenticated;
grant execute on function public.job_queue_delete(uuid) to service_role;
