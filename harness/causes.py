"""Why the service failed: the exception lines of its JSON logs, counted (read after the run)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

DETAIL_CHARS = 110


def exception_summary(log: Path, limit: int = 8) -> list[str]:
    """The most frequent final lines of tracebacks in one log file, numbers and quotes collapsed."""
    counts: Counter[str] = Counter()
    if not log.exists():
        return []
    with log.open(errors="replace") as lines:
        for line in lines:
            if '"exc"' not in line:
                continue
            try:
                exc = json.loads(line).get("exc") or ""
            except ValueError:
                continue
            last = next(
                (x for x in reversed(exc.splitlines()) if re.match(r"^(\w+\.)*[A-Z][a-z]\w*: ", x)),
                exc.strip().splitlines()[-1] if exc.strip() else "",
            )
            counts[re.sub(r"\d+", "N", last)[:DETAIL_CHARS]] += 1
    return [f"{n:6d}  {text}" for text, n in counts.most_common(limit)]
