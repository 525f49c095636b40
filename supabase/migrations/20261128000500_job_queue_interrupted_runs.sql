-- A worker killed at its time limit never records how its run ended, so its
-- row in job_queue_invocations would say `running` forever. The next invocation closes
-- such rows: a run still open after an hour (longer than any Vercel function may
-- live) was interrupted. The partial index keeps this check to a probe of the
-- few open runs.

create index if not exists job_queue_invocations_open_idx
    on public.job_queue_invocations (started_at) where status = 'running';

create or replace function public.job_queue_record_invocation_start(
    p_trigger_source text,
    p_limit integer default null,
    p_forced boolean default false
)
returns table (invocation_id bigint, processing_enabled boolean, paused_reason text)
language sql
set search_path = public, pg_temp
as $$
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

revoke execute on function public.job_queue_record_invocation_start(text, integer, boolean) from public, anon, authenticated;
grant execute on function public.job_queue_record_invocation_start(text, integer, boolean) to service_role;
