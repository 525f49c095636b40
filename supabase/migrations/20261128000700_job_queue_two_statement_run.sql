-- A worker invocation in two statements: begin (record the run, read the pause
-- switch, claim) and complete (record the held successes, close the run).
--
-- Each statement the worker sends is its own committed transaction, and the
-- commits, not the work, were most of an invocation's time. These two functions
-- compose the existing ones (job_queue_record_invocation_start, job_queue_claim,
-- job_queue_mark_succeeded_batch, job_queue_record_invocation_end), so the semantics stay
-- where they were defined.

-- Records the run and, unless processing is paused (and not forced), claims up to
-- p_limit jobs. Returns one row per claimed job, each carrying the run; when
-- nothing is claimed, one row with the run and NULL job columns. A paused run is
-- closed here as `paused`. Payloads come back as JSON text, decoded by the
-- worker only when the job's handler runs.
create or replace function public.job_queue_begin_invocation(
    p_trigger_source text,
    p_limit integer,
    p_forced boolean default false,
    p_lease interval default interval '15 minutes'
)
returns table (
    invocation_id bigint,
    processing_enabled boolean,
    paused_reason text,
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
begin
    select s.invocation_id, s.processing_enabled, s.paused_reason
      into v_run, v_enabled, v_reason
      from job_queue_record_invocation_start(p_trigger_source, p_limit, coalesce(p_forced, false)) s;
    if v_enabled or coalesce(p_forced, false) then
        return query
        select v_run, v_enabled, v_reason, c.id, c.task_type, c.payload::text, c.attempts, c.max_attempts,
               c.lease_token, c.run_at, c.lease_expires_at
          from job_queue_claim(p_limit, p_lease) c;
        if found then
            return;
        end if;
    else
        perform job_queue_record_invocation_end(v_run, 'paused');
    end if;
    return query
    select v_run, v_enabled, v_reason, null::uuid, null::text, null::text, null::integer, null::integer,
           null::uuid, null::timestamptz, null::timestamptz;
end
$$;

-- Records the invocation's held successes (fenced by lease token, as
-- job_queue_mark_succeeded_batch) and closes the run with its counts; the
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
    if cardinality(p_succeeded_ids) > 0 then
        return query
        select m.id, m.status, m.attempts, m.max_attempts, m.run_at, m.last_error
          from job_queue_mark_succeeded_batch(p_succeeded_ids, p_outputs, p_lease_tokens) m;
        get diagnostics v_marked = row_count;
    end if;
    perform job_queue_record_invocation_end(
        p_invocation_id, p_status, p_claimed, p_processed, p_succeeded + v_marked, p_failed, p_released, p_error);
end
$$;

revoke execute on function public.job_queue_begin_invocation(text, integer, boolean, interval)
    from public, anon, authenticated;
revoke execute on function public.job_queue_complete_invocation(
    bigint, text, integer, integer, integer, integer, integer, text, uuid[], jsonb[], uuid[])
    from public, anon, authenticated;
grant execute on function public.job_queue_begin_invocation(text, integer, boolean, interval) to service_role;
grant execute on function public.job_queue_complete_invocation(
    bigint, text, integer, integer, integer, integer, integer, text, uuid[], jsonb[], uuid[]) to service_role;
