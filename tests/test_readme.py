"""The README stays true: every variable documented, every link and listed path present."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lib.settings import variable_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == [["make", "dev"], ["make", "test"]]


def test_every_environment_variable_is_in_the_configuration_table() -> None:
    table = _section("Configuration")
    missing = [name for name in variable_names() if f"`{name}`" not in table]
    assert missing == []


def test_every_relative_link_points_at_a_file() -> None:
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (document.parent / target).exists(), f"{document.name} links to missing {target}"


def test_the_layout_lists_existing_paths_and_every_top_level_folder() -> None:
    block = _section("Layout").split("```", 2)[1]
    listed = [line.split()[0] for line in block.strip().splitlines()]
    for path in listed:
        assert (ROOT / path).exists(), f"the layout lists {path}, which does not exist"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {line.split("/", 1)[0] + "/" for line in tracked if "/" in line}
    unlisted = sorted(f for f in folders if not any(p == f or p.startswith(f) for p in listed))
    assert unlisted == [], f"top-level folders missing from the README layout: {unlisted}"
