"""Named queries: the one way Python code places a SQL statement.

Where several statements must be atomic, or where the queue's semantics live,
the SQL is a function in `supabase/migrations/`; every other statement is a
named query in a `.sql` file beside the module that sends it, one file per
area, read once when the module is first imported:

    -- name: job_status --
    -- One job's status, or no row.
    select status from job_queue where id = %(id)s

A block runs from its `-- name: … --` line to the next one. Comment lines at
its start document it and are kept (PostgreSQL ignores them); a trailing `;`
is dropped. Parameters use psycopg's `%(name)s` placeholders.

    QUERIES = load_queries(__file__, "queue.sql")
    db.fetchone(QUERIES["job_status"], {"id": job_id})

Asking for a name the file does not define raises `KeyError` naming the file,
so a misspelt name fails the first test that reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import LiteralString

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*--\s*$", re.MULTILINE)


class Queries(Mapping[str, LiteralString]):
    """The named queries of one `.sql` file, by name."""

    def __init__(self, source: str, statements: dict[str, LiteralString]) -> None:
        self.source = source
        self._statements = statements

    def __getitem__(self, name: str) -> LiteralString:
        try:
            return self._statements[name]
        except KeyError:
            raise KeyError(f"{self.source} defines no query named {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._statements)

    def __len__(self) -> int:
        return len(self._statements)


def parse_queries(text: str, source: str = "<string>") -> Queries:
    """Split a named-query file into its statements. Duplicate or empty names are errors."""
    matches = list(_NAME_LINE.finditer(text))
    if not matches:
        raise ValueError(f"{source}: no `-- name: … --` line")
    if text[: matches[0].start()].strip():
        raise ValueError(f"{source}: text before the first `-- name: … --` line")
    statements: dict[str, LiteralString] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        name = match.group(1)
        end = following.start() if following is not None else len(text)
        body = text[match.end() : end].strip().removesuffix(";").rstrip()
        if name in statements:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        if not _has_statement(body):
            raise ValueError(f"{source}: query {name!r} is empty")
        # The file ships with the code it belongs to: its text is as trusted as a literal
        # (mypy treats LiteralString as str; pyright would want a cast here).
        statements[name] = body
    return Queries(source, statements)


def load_queries(module_file: str, filename: str) -> Queries:
    """The named queries of `filename`, a file in the folder of `module_file` (pass `__file__`)."""
    path = Path(module_file).resolve().parent / filename
    return parse_queries(path.read_text(encoding="utf-8"), source=str(path.name))


def _has_statement(body: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in body.splitlines())
