-- name: enqueue --
-- Insert a new job, always (the seed's four-argument call).
select job_queue_enqueue(%(task_type)s, %(payload)s, coalesce(%(run_at)s, now()), %(max_attempts)s) as id

-- name: enqueue_unique --
-- Insert a job unless an equal one (same type and payload) is pending or processing.
select job_id, deduplicated
  from job_queue_enqueue_unique(
      %(task_type)s, %(payload)s, job_queue_payload_key(%(payload)s), coalesce(%(run_at)s, now()), %(max_attempts)s)

-- name: enqueue_batch --
select id
  from job_queue_enqueue_batch(%(task_type)s, %(payloads)s::jsonb[], coalesce(%(run_at)s, now()), %(max_attempts)s) as id

-- name: begin_invocation --
-- One row per claimed job, each carrying the invocation; one row with a null id when nothing was claimed.
select invocation_id, processing_enabled, paused_reason, scheduled,
       id, task_type, payload_json, attempts, max_attempts, lease_token, run_at, lease_expires_at
  from job_queue_begin_invocation(%(trigger_source)s, %(limit)s, %(forced)s, %(lease)s, %(idempotency_key)s)

-- name: complete_invocation --
select id, status, attempts, max_attempts, run_at, last_error
  from job_queue_complete_invocation(
      %(invocation_id)s, %(status)s, %(claimed)s, %(processed)s, %(succeeded)s, %(failed)s, %(released)s, %(error)s,
      %(ids)s::uuid[], %(outputs)s::jsonb[], %(lease_tokens)s::uuid[])

-- name: claim --
select id, task_type, payload::text as payload_json, attempts, max_attempts, lease_token, run_at, lease_expires_at
  from job_queue_claim(%(limit)s, %(lease)s)

-- name: mark_succeeded --
select id, status, attempts, max_attempts, run_at, last_error
  from job_queue_mark_succeeded(%(id)s, %(output)s, %(lease_token)s)

-- name: mark_succeeded_batch --
select id, status, attempts, max_attempts, run_at, last_error
  from job_queue_mark_succeeded_batch(%(ids)s::uuid[], %(outputs)s::jsonb[], %(lease_tokens)s::uuid[])

-- name: mark_failed --
select id, status, attempts, max_attempts, run_at, last_error
  from job_queue_mark_failed(%(id)s, %(error)s, %(retry_in)s, %(lease_token)s)

-- name: release --
-- How many of the jobs went back to pending (a job whose lease was lost stays as it is).
select count(*) filter (where job_queue_release(t.id, t.token, %(delay)s)) as released
  from unnest(%(ids)s::uuid[], %(lease_tokens)s::uuid[]) as t(id, token)

-- name: fanout_admit --
select admitted, reason, live_invocations
  from job_queue_fanout_admit(%(max_parallel)s, %(generation)s, %(max_generations)s, %(chain_started_at)s, %(max_chain)s)

-- name: fanout_slots --
select job_queue_fanout_slots(%(max_parallel)s) as slots

-- name: job_status --
-- One job's status, or no row.
select status from job_queue where id = %(id)s

-- name: cancel --
select id, status, previous_status, changed from job_queue_cancel(%(id)s, %(reason)s)

-- name: retry --
select id, status, previous_status, changed, duplicate_of from job_queue_retry(%(id)s)

-- name: delete --
select id, task_type, status, deleted from job_queue_delete(%(id)s)

-- name: settings --
select processing_enabled, paused_reason, updated_at from job_queue_settings

-- name: set_processing --
select processing_enabled, paused_reason, updated_at from job_queue_set_processing(%(enabled)s, %(reason)s)

-- name: cleanup --
select job_queue_cleanup(%(older_than)s, %(batch_size)s, %(max_batches)s) as removed

-- name: schedules --
-- Every schedule by name, or the one named (a null name: all).
select name, task_type, payload, cron, enabled, next_run_at, last_enqueued_at, last_job_id, created_at, updated_at
  from job_queue_schedules
 where %(name)s::text is null or name = %(name)s::text
 order by name

-- name: save_schedule --
select name, task_type, payload, cron, enabled, next_run_at, last_enqueued_at, last_job_id, created_at, updated_at
  from job_queue_schedule_save(%(name)s, %(task_type)s, %(payload)s, %(cron)s, %(enabled)s)

-- name: run_schedule_now --
select job_id, deduplicated from job_queue_schedule_run_now(%(name)s)

-- name: cron_problem --
select job_queue_cron_problem(%(cron)s) as problem

-- name: cron_next --
select job_queue_cron_next(%(cron)s, %(after)s) as next

-- name: list_jobs --
-- Jobs newest first, optionally of one status and/or task type, after a keyset cursor.
-- Served by the index on (created_at desc, id desc), filtered as it is walked;
-- failed and cancelled jobs by a partial index of their own (see the throughput
-- migration). The unnamed statement is planned with its actual parameters, so
-- the `is null or` arms fold away before planning.
select id, task_type, status, payload, attempts, max_attempts, left(last_error, 500) as last_error,
       run_at, created_at, updated_at, completed_at
  from job_queue
 where (%(status)s::text is null or status = %(status)s::text)
   and (%(task_type)s::text is null or task_type = %(task_type)s::text)
   and (%(after_created_at)s::timestamptz is null
        or (created_at, id) < (%(after_created_at)s::timestamptz, %(after_id)s::uuid))
 order by created_at desc, id desc
 limit %(limit)s

-- name: get_job --
-- One job in full, but its lease token (the worker's, not the operator's).
select id, task_type, status, payload, output, attempts, max_attempts, last_error, dedupe_key,
       run_at, created_at, updated_at, completed_at, locked_at, lease_expires_at
  from job_queue
 where id = %(id)s

-- name: health --
-- The health snapshot and the dashboard's bounded lists, in one round trip.
select h.*, d.stuck as details_stuck, d.overdue as details_overdue, d.schedules as details_schedules,
       d.last_sync_run as details_last_sync_run
  from job_queue_health_snapshot(%(recent)s) h
 cross join job_queue_health_details(%(overdue_after_seconds)s, %(list_limit)s) d
