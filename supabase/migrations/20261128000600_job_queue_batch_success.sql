-- Successes recorded in one statement.
--
-- Most jobs finish in milliseconds; writing each success in its own round trip
-- made the worker spend most of its time waiting on the database. The worker now
-- writes the successes of an invocation together, with the same fencing as
-- job_queue_mark_succeeded: a job is marked only if it is still `processing`
-- under the lease token given for it, so a job cancelled or taken over
-- meanwhile is left alone and simply absent from the result.

create or replace function public.job_queue_mark_succeeded_batch(
    p_ids uuid[],
    p_outputs jsonb[],
    p_lease_tokens uuid[]
)
returns table (id uuid, status text, attempts integer, max_attempts integer, run_at timestamptz, last_error text)
language sql
set search_path = public, pg_temp
as $$
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
    returning j.id, j.status, j.attempts, j.max_attempts, j.run_at, j.last_error
$$;

revoke execute on function public.job_queue_mark_succeeded_batch(uuid[], jsonb[], uuid[])
    from public, anon, authenticated;
grant execute on function public.job_queue_mark_succeeded_batch(uuid[], jsonb[], uuid[]) to service_role;
