"""Write docs/openapi.json from the code (lib/endpoints/catalog.py), or check that it is current.

python -m scripts.openapi           # rewrite docs/openapi.json
python -m scripts.openapi --check   # exit 1 when docs/openapi.json differs from the code
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as `python scripts/openapi.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.openapi import render

TARGET = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.openapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when out of date")
    parser.add_argument("--output", type=Path, default=TARGET, help=f"default {TARGET.relative_to(TARGET.parents[1])}")
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run python -m scripts.openapi", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    if current == text:
        print(f"{args.output} unchanged")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
