"""glibc's malloc, tuned through ``mallopt`` (nothing happens elsewhere than glibc)."""

from __future__ import annotations

import ctypes

__all__ = ["M_ARENA_MAX", "M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD", "mallopt", "one_malloc_arena"]

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
