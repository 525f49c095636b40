-- Input hardening: a retry that races an equal job answers "duplicate", and the
-- identity sequences are closed to client roles as their tables are.

-- ---------------------------------------------------------------------------
-- job_queue_retry, race-free (redefined whole; was in 20261128000100_job_queue.sql)
-- ---------------------------------------------------------------------------

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

revoke execute on function public.job_queue_retry(uuid) from public, anon, authenticated;
grant execute on function public.job_queue_retry(uuid) to service_role;

-- ---------------------------------------------------------------------------
-- Sequences follow their tables
-- ---------------------------------------------------------------------------

-- Supabase's default privileges grant every new sequence in `public` to anon and
-- authenticated. The queue's and Game Platform's tables were closed to those
-- roles (RLS on, privileges revoked), but their identity sequences kept the
-- grants: a client could read or advance `job_queue_invocations`' ids through the REST
-- API. A sequence owned by a table that anon and authenticated cannot use at
-- all is closed the same way; the app's own tables and their sequences are left
-- as they are.
do $sequences$
declare
    s record;
begin
    for s in
        select seq.oid::regclass as sequence_name
          from pg_class seq
          join pg_depend d
            on d.classid = 'pg_class'::regclass and d.objid = seq.oid
           and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
          join pg_class tbl on tbl.oid = d.refobjid
         where seq.relkind = 'S'
           and seq.relnamespace = 'public'::regnamespace
           and not has_table_privilege('anon', tbl.oid, 'select, insert, update, delete, truncate, references, trigger')
           and not has_table_privilege(
               'authenticated', tbl.oid, 'select, insert, update, delete, truncate, references, trigger')
    loop
        execute format('revoke all on sequence %s from public, anon, authenticated', s.sequence_name);
        execute format('grant usage, select, update on sequence %s to service_role', s.sequence_name);
    end loop;
end
$sequences$;
