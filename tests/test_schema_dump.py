"""supabase/schema.sql is exactly what the migrations produce, and each SQL function has one definition.

The procrastinate (`sql/schema.sql` + a migration test) and graphile-worker
(`dump_db` diff in CI) practice: a reader has one file to read, and a changed
function cannot hide in a patch migration.
"""

from __future__ import annotations

import re
from collections import defaultdict

from scripts.migrate import discover
from scripts.schema_dump import REGENERATE, SCHEMA_FILE, difference, migrated_schema

# `create [or replace] function schema.name(` in a migration file.
_DEFINITION = re.compile(r"\bcreate\s+(?:or\s+replace\s+)?function\s+([\w.]+)\s*\(", re.IGNORECASE)

# Migrations are append-only (docs/migrations.md). Should a function applied
# somewhere that is kept ever need a new definition, the new migration file
# redefines it and is named here (function -> file), so there is still one place
# that says which definition is current. Empty: every function is defined once.
LATER_DEFINITIONS: dict[str, str] = {}


def test_the_committed_schema_is_what_the_migrations_produce(admin_conninfo):
    committed = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
    produced = migrated_schema(admin_conninfo)
    assert committed == produced, (
        f"supabase/schema.sql is not what supabase/migrations/ produce: run `{REGENERATE}` and commit the result.\n"
        + difference(committed, produced)
    )


def test_each_sql_function_is_defined_in_exactly_one_migration_file():
    files: dict[str, list[str]] = defaultdict(list)
    for migration in discover():
        for name in _DEFINITION.findall(migration.sql):
            name = name.lower().removeprefix("public.")
            files[name].append(migration.path.name)
    assert len(files) >= 30
    defined_twice = {
        name: where for name, where in files.items() if len(where) > 1 and where[1:] != [LATER_DEFINITIONS.get(name)]
    }
    assert defined_twice == {}, (
        f"each SQL function is defined once, in the migration file of its concern (docs/migrations.md): {defined_twice}"
    )
