"""Giving freed memory back to the operating system, so a long run stays as small as a short one.

Called by the manifest reader after decoding a batch, by the results after writing a part, and
by every executor after each committed shard (measured by ``benchmarks/memory.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any

import pyarrow as pa


def release_unused_memory() -> None:
    """Hand the memory pyarrow's pool keeps for reuse back to the operating system.

    pyarrow's default pool (mimalloc) keeps freed pages per thread. A run reads and writes a
    little Arrow data per shard, from many short-lived threads, and the kept pages added up:
    peak RSS grew ~2 MB per 1,000 rows and sat ~90 MB above the system allocator's. Releasing
    after each shard's read and write keeps it flat (measured by ``benchmarks/memory.py``).

    Example:
        >>> release_unused_memory()
    """
    release = getattr(pa.default_memory_pool(), "release_unused", None)
    if release is not None:
        release()


def trim_native_heap() -> None:
    """Give the C allocator's free pages back to the operating system (glibc; elsewhere a no-op).

    Every shard stage runs on an event loop of its own, with short-lived worker threads,
    HTTP clients and image decoders: their freed memory is scattered over the allocator's
    per-thread arenas, which glibc returns to the system only at the top of a heap. Every
    executor calls this after each committed shard, so a long run's footprint stays that of a short
    one (measured by ``benchmarks/memory.py``).

    Example:
        >>> trim_native_heap()
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
