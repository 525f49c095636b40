-- name: schedule_definitions --
-- The pg_cron migration's schedule definitions.
select job_name, schedule, command, needs_pg_net, description from job_queue_schedule_definitions()

-- name: queue_schedules --
select name, cron, enabled from job_queue_schedules order by name
