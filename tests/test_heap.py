"""reconcile.heap: large buffers keep getting their own mappings (freed back to the system), on glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys

class Info(ctypes.Structure):  # glibc's struct mallinfo2: hblks counts the live mmapped chunks
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = Info
if sys.argv[1] == "mapped":
    from reconcile.heap import map_large_buffers
    assert map_large_buffers()
big = b"x" * 4_000_000  # mapped, then freed: glibc's default raises its threshold past this size
del big
before = libc.mallinfo2().hblks
body = b"y" * 1_000_000  # a large buffer freed later
print(libc.mallinfo2().hblks - before)
"""


def _glibc_with_mallinfo2() -> bool:
    if platform.libc_ver()[0] != "glibc":
        return False
    return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2")


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="glibc >= 2.33 only (mallinfo2)")
def test_a_large_buffer_is_still_mapped_on_its_own_after_a_larger_one_was_freed() -> None:
    def mapped_chunks(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
        return int(done.stdout)

    # glibc's default: once a large mapping was freed, buffers up to its size come from the heap, which
    # freeing does not shrink below what was allocated after them
    assert mapped_chunks("default") == 0
    assert mapped_chunks("mapped") == 1  # the threshold stays put: its own mapping, munmap'd when freed
