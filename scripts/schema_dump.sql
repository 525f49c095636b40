-- name: tables --
select c.oid, c.relname, c.relrowsecurity, obj_description(c.oid, 'pg_class') as comment
  from pg_class c
 where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
 order by c.relname

-- name: columns --
select a.attname, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull, a.attidentity, a.attgenerated,
       pg_get_expr(d.adbin, d.adrelid) as default_expr, col_description(a.attrelid, a.attnum) as comment
  from pg_attribute a
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where a.attrelid = %(oid)s and a.attnum > 0 and not a.attisdropped
 order by a.attnum

-- name: constraints --
select conname, pg_get_constraintdef(oid) as definition
  from pg_constraint
 where conrelid = %(oid)s and contype <> 'n'  -- NOT NULL: printed with its column (catalogued from PostgreSQL 18)
 order by contype, conname

-- name: indexes --
select pg_get_indexdef(i.indexrelid) as definition
  from pg_index i join pg_class c on c.oid = i.indexrelid
 where i.indrelid = %(oid)s and not exists (select from pg_constraint k where k.conindid = i.indexrelid)
 order by c.relname

-- name: policies --
select polname, pg_get_expr(polqual, polrelid) as using_expr from pg_policy where polrelid = %(oid)s order by polname

-- name: functions --
select p.oid, p.oid::regprocedure::text as signature, pg_get_functiondef(p.oid) as definition,
       obj_description(p.oid, 'pg_proc') as comment
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
 order by p.proname, p.oid::regprocedure::text

-- name: privileges --
-- Who other than its owner holds what on a table (kind 'r') or a function
-- (kind 'f'); no ACL means the defaults. The owner's own privileges are left
-- out: they grow with the server's version (PostgreSQL 17 adds MAINTAIN).
select case when a.grantee = 0 then 'public' else r.rolname end as grantee,
       string_agg(a.privilege_type, ', ' order by a.privilege_type) as privileges
  from (select oid, 'r'::"char" as kind, relacl as acl, relowner as owner from pg_class
        union all
        select oid, 'f'::"char", proacl, proowner from pg_proc) o
 cross join lateral aclexplode(coalesce(o.acl, acldefault(o.kind, o.owner))) a
  left join pg_roles r on r.oid = a.grantee
 where o.oid = %(oid)s and o.kind = %(kind)s::"char" and a.grantee <> o.owner
 group by 1
 order by 1
