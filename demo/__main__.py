"""`python -m demo`: ingest the example guides and answer guests end to end, with no keys."""

from __future__ import annotations

import sys

from config.settings import ConfigError, load_settings
from demo.run import run_demo


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    run_demo(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
