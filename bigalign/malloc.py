"""The allocators of a run's processes: glibc's malloc, tuned through ``mallopt``
(nothing happens elsewhere than glibc), and which one Arrow uses."""

from __future__ import annotations

import ctypes
import os

__all__ = ["M_ARENA_MAX", "M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD", "arrow_on_system_allocator", "mallopt",
           "one_malloc_arena"]

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``; False when it refused or the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(parameter, value))


def one_malloc_arena() -> None:
    """Let glibc's malloc make no more arenas in this process: it makes one
    per thread that allocates, and a run without a cluster frees in one thread
    what another allocated, each arena keeping its own free memory. Set when
    the ``bigalign`` command starts (the arenas of its imports' threads stay):
    the peak of a 10k × 10k run 281–306 → 277–283 MB, of 1M × 1M
    1.98–2.03 → 1.90–1.96 GB, in the same time (side by side, 4 and 2 runs
    each). Worker processes start afresh, with glibc's default."""
    mallopt(M_ARENA_MAX, 1)


def arrow_on_system_allocator() -> None:
    """Arrow's memory from the C library's allocator, in this process and in
    the worker processes it starts (they inherit ``ARROW_DEFAULT_MEMORY_POOL``),
    unless that variable chooses another. mimalloc, Arrow's default, keeps
    what each thread freed: the peak of a 10k × 10k run 282 → 231 MB, of
    1M × 1M 1.65–1.75 → 1.63–1.64 GB, in the same time (side by side, 2 runs
    each)."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    import pyarrow as pa  # (already imported: the variable is read once, when Arrow starts)

    pa.set_memory_pool(pa.system_memory_pool())
