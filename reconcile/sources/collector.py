"""The cyclic garbage collector while sources read: its full passes wait until the reads are over.

A 100,000-user read keeps ~a million long-lived objects; each full pass walks them all (eight passes were
an eighth of an Okta read's CPU). Young collections still run, so the short cycles of each request go at once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

PAUSED = 1_000_000  # young-generation collections between full passes: none during any read


class _Pause:
    """How many reads are under way, and the threshold to restore when the last one ends."""

    depth = 0
    saved = (700, 10, 10)


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """Within: no full (generation 2) collection starts; reentrant, so sources read at once share it."""
    if _Pause.depth == 0:
        _Pause.saved = gc.get_threshold()
        young, middle, _ = _Pause.saved
        gc.set_threshold(young, middle, PAUSED)
    _Pause.depth += 1
    try:
        yield
    finally:
        _Pause.depth -= 1
        if _Pause.depth == 0:
            gc.set_threshold(*_Pause.saved)
