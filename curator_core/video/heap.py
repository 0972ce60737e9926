"""Heap memory whose unwritten bytes read the same in every process, for encoders that read them.

libx264 (the build in PyAV 18's wheel) reads memory it allocated but never wrote when a frame's height is
not a multiple of 16 and mbtree runs with B-frames: one process encoding the same 48 frames of 320x180
(x264 veryfast, crf 23, one thread) made 3 different files in 6 tries, depending on what the heap held
before. Clips of the same input and parameters must be the same bytes, so while encoding, glibc fills
every chunk it hands out with one byte (M_PERTURB). Chunks above the mmap threshold come zeroed from the
kernel instead, and glibc moves that threshold with the sizes freed so far, so it is fixed once per
process, at the largest value glibc itself would move it to: what a warm worker reaches anyway.
Where the C library is not glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_PERTURB = -6
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit glibc
PERTURB_BYTE = 0xA5  # glibc writes its complement, 0x5A, into each chunk it hands out

_lock = threading.Lock()
_depth = 0


@functools.cache
def _mallopt() -> Any:
    """glibc's `mallopt` with the mmap threshold fixed, or None where the C library has none."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return mallopt


@contextmanager
def deterministic_heap() -> Iterator[None]:
    """Inside, memory from malloc holds a fixed byte until written (nesting and threads share one setting)."""
    global _depth
    mallopt = _mallopt()
    if mallopt is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            mallopt(M_PERTURB, PERTURB_BYTE)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                mallopt(M_PERTURB, 0)
