"""What every ``resjnd`` command shares."""

from __future__ import annotations

import sys


def fail(msg: str, code: int = 2) -> int:
    print(f"resjnd: error: {msg}", file=sys.stderr)
    return code
