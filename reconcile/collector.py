"""CPython's cyclic garbage collector around the bulk work that builds objects by the hundred thousand.

`full_collections_paused`, while sources read: a 100,000-user read keeps ~a million long-lived objects and each
full pass walks them all (eight passes were an eighth of an Okta read's CPU); young collections still run, so the
short cycles of each request go at once. `collector_paused`, around work that makes no cycles at all (planning,
filing memberships): no collection, restored as it was.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PAUSED = 1_000_000  # young-generation collections between full passes: none during any read


class _Pause:
    """How many reads are under way, and the threshold to restore when the last one ends."""

    depth = 0
    saved = (700, 10, 10)
    lock = threading.Lock()  # entries and exits of two threads must not interleave (the saved threshold)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Within: no collection at all; as it was afterwards (the caller may have disabled it already)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """Within: no full (generation 2) collection starts; reentrant, so sources read at once share it.
    Thread-safe: a plan fetches its target while another thread reads the desired state."""
    with _Pause.lock:
        if _Pause.depth == 0:
            _Pause.saved = gc.get_threshold()
            young, middle, _ = _Pause.saved
            gc.set_threshold(young, middle, PAUSED)
        _Pause.depth += 1
    try:
        yield
    finally:
        with _Pause.lock:
            _Pause.depth -= 1
            if _Pause.depth == 0:
                gc.set_threshold(*_Pause.saved)
