"""lib.sql: the named-query files every module's SQL lives in."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.sql import load_queries, parse_queries

ROOT = Path(__file__).resolve().parent.parent


def test_blocks_split_on_name_lines_keeping_their_comments() -> None:
    queries = parse_queries(
        "-- name: first --\n-- What it does.\nselect 1;\n\n-- name: second_one --\nselect %(x)s\n  from t\n"
    )
    assert list(queries) == ["first", "second_one"]
    assert queries["first"] == "-- What it does.\nselect 1"
    assert queries["second_one"] == "select %(x)s\n  from t"


def test_unknown_name_says_which_file() -> None:
    queries = parse_queries("-- name: one --\nselect 1", source="area.sql")
    with pytest.raises(KeyError, match=r"area\.sql defines no query named 'two'"):
        queries["two"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("select 1", "no `-- name"),
        ("select 0\n-- name: one --\nselect 1", "text before"),
        ("-- name: one --\nselect 1\n-- name: one --\nselect 2", "defined twice"),
        ("-- name: one --\n-- only a comment\n-- name: two --\nselect 2", "'one' is empty"),
    ],
)
def test_malformed_files_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_queries(text)


def test_every_query_file_in_the_tree_parses() -> None:
    files = [p for p in ROOT.glob("**/*.sql") if ".venv" not in p.parts and "supabase" not in p.parts]
    for path in files:
        if path.read_text(encoding="utf-8").lstrip().startswith("-- name:"):
            assert len(load_queries(str(path), path.name)) > 0
