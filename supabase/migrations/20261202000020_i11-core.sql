-- A job handed back may be due again later than before (p_delay): the worker
-- hands back a job it lacks a setting for (JobNotConfigured) due a minute later
-- when it may fan out, so a follow-up does not claim it again at once
-- (lib/worker.py, NOT_CONFIGURED_DELAY). Without p_delay, as before.
--
-- Until the migrations are folded (issue 11): then this definition moves into
-- the queue's file and this file goes.

drop function if exists public.job_queue_release(uuid, uuid);

-- Hands a claimed but never started job back: pending again, the attempt not
-- counted, due `p_delay` from now (null: as it was).
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

revoke execute on function public.job_queue_release(uuid, uuid, interval) from public, anon, authenticated;
grant execute on function public.job_queue_release(uuid, uuid, interval) to service_role;
