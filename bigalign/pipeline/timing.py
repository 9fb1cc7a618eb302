"""Stages timed: their wall time, and while a run measures it, their CPU time (the cores they kept busy)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["cpu_measured", "timed"]

logger = logging.getLogger("bigalign")

# While a run measures its CPU time (see :func:`cpu_measured`): the clock it reads, and the CPU seconds per stage.
_CPU: ContextVar[tuple[Callable[[], float], dict[str, float]] | None] = ContextVar("bigalign_cpu", default=None)


@contextmanager
def cpu_measured(clock: Callable[[], float], cpu_seconds: dict[str, float]) -> Iterator[None]:
    """Within the block, each :func:`timed` stage of this thread also adds its CPU time, as ``clock`` counts
    it (the cluster's: :func:`~bigalign.cluster.cpu_clock`), to ``cpu_seconds[stage]``."""
    token = _CPU.set((clock, cpu_seconds))
    try:
        yield
    finally:
        _CPU.reset(token)


@contextmanager
def timed(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[stage]`` (and its CPU time, see :func:`cpu_measured`);
    log the stage's start (the command line shows it; the web application follows a run by it)."""
    logger.info("stage: %s", stage)
    cpu = _CPU.get()
    start, start_cpu = time.perf_counter(), cpu[0]() if cpu else 0.0
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
    if cpu:  # (not after a failed stage: the cluster may be what failed)
        cpu[1][stage] = cpu[1].get(stage, 0.0) + cpu[0]() - start_cpu
