"""Large short-lived buffers (response bodies) in their own mappings, so that freeing them returns the memory.

glibc serves a buffer under its mmap threshold from the heap, which only shrinks from the top: the bodies of
thousands of pages, interleaved there with the long-lived state being built, left ~90 MB of freed but
unreturnable heap in a 100,000-user fetch (measured with malloc_trim). Other C libraries: nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt(3) parameter number in glibc's malloc.h
BODY_THRESHOLD = 32 * 1024  # below a page of results (~30-80 KB), above almost every long-lived object


@functools.cache  # once a process: the setting is process-wide
def map_large_buffers() -> bool:
    """Fix glibc's mmap threshold (which also stops it rising on its own); False where not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, BODY_THRESHOLD))
    log.debug("glibc mmap threshold %s", "set" if done else "refused")
    return done
