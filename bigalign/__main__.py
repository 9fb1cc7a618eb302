"""The ``bigalign`` command's process (``python -m bigalign``, and the script pip installs).

What must be set before anything imports Arrow is set here, and the process's allocators, then
:func:`bigalign.cli.main` runs.
"""

from __future__ import annotations

import os
from typing import NoReturn

__all__ = ["PROCESS_ENVIRONMENT", "console"]

# Arrow reads its allocator's name once, when it is first imported; the worker processes a
# run starts inherit it. The C library's allocator, not Arrow's default mimalloc, which keeps
# what each thread freed: a 10k × 10k run's peak 278 → 233 MB in the same time (`/usr/bin/time
# bigalign run`, the demo at 10k, side by side, twice each). A value the user set is kept.
PROCESS_ENVIRONMENT = {"ARROW_DEFAULT_MEMORY_POOL": "system"}


def console() -> NoReturn:
    """The ``bigalign`` command: its process's environment and allocators, :func:`~bigalign.cli.main`,
    then :func:`~bigalign.cli.exit_now`."""
    for name, value in PROCESS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from .cli import exit_now, main
    from .malloc import one_malloc_arena

    one_malloc_arena()
    exit_now(main())


if __name__ == "__main__":
    console()
