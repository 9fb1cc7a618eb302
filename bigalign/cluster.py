"""Where an alignment runs: ``Client()`` semantics.

* an existing :class:`distributed.Client` is used as it is;
* a string is a scheduler address (``tcp://host:8786``, ``tls://...``) or the
  path of a scheduler file written by ``dask scheduler --scheduler-file``;
* otherwise, the scheduler of ``DASK_SCHEDULER_ADDRESS`` (or Dask's
  ``scheduler-address`` setting) when set; else a ``LocalCluster`` of worker
  processes, one thread each (shingling and parsing hold the GIL), listening
  on loopback only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
from distributed import Client, LocalCluster

__all__ = ["connect"]


def _local_cluster(n_workers: int | None, threads_per_worker: int, memory_limit: str | None,
                   dashboard_address: str) -> LocalCluster:
    n_workers = n_workers or max(1, os.cpu_count() or 1)
    return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                        host="127.0.0.1", dashboard_address=dashboard_address,
                        memory_limit=memory_limit or "auto")


@contextmanager
def connect(client: Any = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
            memory_limit: str | None = None, dashboard_address: str = "127.0.0.1:8787",
            security: Any = None, quiet: bool = False) -> Iterator[Client]:
    """Yield a client; close what this call started when done.

    Parameters
    ----------
    client : Client, str or None
        See the module docstring.
    n_workers, threads_per_worker, memory_limit, dashboard_address
        For a local cluster (``memory_limit`` per worker, e.g. ``"4GiB"``).
    security : distributed.Security, optional
        TLS settings for a remote scheduler.
    quiet : bool
        Do not print the dashboard link.
    """
    # The P2P shuffle logs every shuffle's start and end at WARNING level.
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    owned: list[Any] = []
    if isinstance(client, Client):
        active = client
    elif isinstance(client, (str, os.PathLike)) and os.path.exists(client):
        active = Client(scheduler_file=os.fspath(client), security=security)
        owned.append(active)
    elif isinstance(client, str):
        active = Client(client, security=security)
        owned.append(active)
    elif client is not None:
        raise TypeError(f"client must be a Client, a scheduler address or a scheduler file, not {client!r}")
    elif os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None):
        active = Client(security=security)
        owned.append(active)
    else:
        cluster = _local_cluster(n_workers, threads_per_worker, memory_limit, dashboard_address)
        owned.append(cluster)
        active = Client(cluster)
        owned.insert(0, active)
    if not quiet:
        print(f"bigalign: Dask dashboard at {active.dashboard_link}", file=sys.stderr, flush=True)
    try:
        yield active
    finally:
        for thing in owned:
            thing.close()
