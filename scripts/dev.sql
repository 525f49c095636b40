-- name: job_outputs --
select id, output from job_queue where id = any(%(ids)s::uuid[])
