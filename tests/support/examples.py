"""How many examples a property test tries: every one in `make test`, a third in `make check`'s edit loop.

`make check` exports RECONCILE_EXAMPLES=0.33; a property a change breaks usually fails within the first
examples, and `make test` (CI) still tries them all.
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("RECONCILE_EXAMPLES", "1"))


def examples(count: int) -> int:
    """`count` scaled for this run, never below 10."""
    return max(10, round(count * SCALE))
