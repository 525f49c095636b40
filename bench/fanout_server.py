"""scripts/dev.py's server with the bench's no-op task type registered (bench/fanout.py starts it)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import NOOP_SPEC  # noqa: E402
from lib.jobs.registry import default_registry  # noqa: E402

if __name__ == "__main__":
    default_registry.register(NOOP_SPEC)
    from scripts import dev

    raise SystemExit(dev.main(sys.argv[1:]))
