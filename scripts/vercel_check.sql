-- name: insert_admin --
insert into profiles (id, role, email) values (%(id)s, 'admin', 'admin@example.com')
