-- Game Platform sync runs: the fenced changes of a sync run's state.
--
-- A sync run (`game_platform_sync_runs`) may span several jobs; `job_id` is
-- the job driving it now. Each function below changes a running sync run only
-- for the job that drives it, and says whether it did: a job that has handed
-- its sync run over, or lost it, changes nothing, and its caller rolls back
-- the writes of the same transaction (the sync's batch, a continuation job).

-- Which sync run a job resumes: the one a continuation names (`p_sync_run_id`),
-- else the one the job itself started (a retry of that job). `owned`: it is
-- running and driven by this job, which may carry on from `progress`; any
-- other row means this job has been superseded. No row: there is none.
create or replace function public.game_platform_sync_run_resume(p_job_id uuid, p_sync_run_id bigint default null)
returns table (id bigint, status text, job_id uuid, progress jsonb, owned boolean)
language sql
stable
set search_path = public, pg_temp
as $$
    select r.id, r.status, r.job_id, r.progress, (r.status = 'running' and r.job_id = p_job_id)
      from game_platform_sync_runs r
     where case when p_sync_run_id is null then r.started_by_job_id = p_job_id else r.id = p_sync_run_id end
$$;

-- Before a new sync run starts: the latest running sync run of the same scope
-- (one coach's, or the unscoped one), if its job is still pending or
-- processing, holds the scope and is returned (the new job stands down).
-- One whose job is gone, or has finished without finishing it, is failed
-- ("abandoned") and nothing is returned: the new sync run supersedes it.
create or replace function public.game_platform_sync_run_supersede(p_coach_id uuid)
returns table (sync_run_id bigint, job_id uuid, job_status text)
language plpgsql
set search_path = public, pg_temp
as $$
declare
    v_run game_platform_sync_runs%rowtype;
    v_job_status text;
begin
    select * into v_run
      from game_platform_sync_runs r
     where r.status = 'running' and r.coach_id is not distinct from p_coach_id
     order by r.started_at desc
     limit 1
       for update;
    if not found then
        return;
    end if;
    select j.status into v_job_status from job_queue j where j.id = v_run.job_id;
    if v_job_status in ('pending', 'processing') then
        return query select v_run.id, v_run.job_id, v_job_status;
        return;
    end if;
    update game_platform_sync_runs r
       set status = 'failed',
           error = format('abandoned: the job driving it (%s) is %s', v_run.job_id, coalesce(v_job_status, 'gone')),
           finished_at = now(),
           updated_at = now()
     where r.id = v_run.id;
end
$$;

-- A batch written: the sync run's progress and counts move with it.
create or replace function public.game_platform_sync_run_checkpoint(
    p_sync_run_id bigint, p_job_id uuid, p_progress jsonb, p_counts jsonb
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set progress = p_progress, counts = p_counts, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- Out of time: the continuation job, enqueued in the same transaction, drives
-- the sync run from here.
create or replace function public.game_platform_sync_run_hand_over(
    p_sync_run_id bigint, p_job_id uuid, p_next_job_id uuid, p_progress jsonb, p_counts jsonb
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set job_id = p_next_job_id, progress = p_progress, counts = p_counts,
           invocations = r.invocations + 1, error = null, updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- The end of a sync run: `completed`, or `failed` on its job's last attempt.
create or replace function public.game_platform_sync_run_finish(
    p_sync_run_id bigint, p_job_id uuid, p_status text, p_progress jsonb, p_counts jsonb, p_error text default null
)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set status = p_status, progress = p_progress, counts = p_counts, error = p_error,
           finished_at = now(), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- Why the driving job's attempt failed; its retry resumes the sync run.
create or replace function public.game_platform_sync_run_note_error(p_sync_run_id bigint, p_job_id uuid, p_error text)
returns boolean
language plpgsql
set search_path = public, pg_temp
as $$
begin
    update game_platform_sync_runs r
       set error = left(p_error, 20000), updated_at = now()
     where r.id = p_sync_run_id and r.job_id = p_job_id and r.status = 'running';
    return found;
end
$$;

-- Only the bundle's own connection (service_role) calls these.
do $$
declare
    f regprocedure;
begin
    for f in
        select p.oid::regprocedure
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.proname like 'game\_platform\_sync\_run\_%'
    loop
        execute format('revoke execute on function %s from public, anon, authenticated', f);
        execute format('grant execute on function %s to service_role', f);
    end loop;
end
$$;
