"""Where an alignment runs: ``Client()`` semantics.

* an existing :class:`distributed.Client` is used as it is;
* a string is a scheduler address (``tcp://host:8786``, ``tls://...``) or the
  path of a scheduler file written by ``dask scheduler --scheduler-file``;
* otherwise, the scheduler of ``DASK_SCHEDULER_ADDRESS`` (or Dask's
  ``scheduler-address`` setting) when set; else a ``LocalCluster`` of worker
  processes, one thread each (shingling and parsing hold the GIL), listening
  on loopback only.

Small jobs need no cluster at all: :class:`NoCluster` computes the same graph
with Dask's threaded scheduler in this process, behind the few methods of a
client that bigalign calls.
"""

from __future__ import annotations

import _thread
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dask
import pandas as pd
import psutil
import pyarrow as pa
from dask.delayed import Delayed

from .errors import ClusterError

if TYPE_CHECKING:  # (distributed is imported when a cluster is used: a run without one never imports it)
    from distributed import Client, LocalCluster

__all__ = ["NO_CLUSTER_RECORDS", "ClusterError", "Computed", "NoCluster", "ProcessMemory", "connect",
           "connect_for_records", "names_a_scheduler", "no_cluster", "progress_bars", "shuffle_method", "under_cut",
           "worker_threads"]

logger = logging.getLogger("bigalign")


def _local_cluster(n_workers: int | None, threads_per_worker: int, memory_limit: str | None,
                   dashboard_address: str, processes: bool = True) -> LocalCluster:
    from distributed import LocalCluster

    n_workers = n_workers or max(1, os.cpu_count() or 1)
    if not processes:  # one worker in this process, as many threads: nothing to start but threads
        # (over TCP on loopback: Dask's in-process transport would open the worker's web server on every
        # interface)
        return LocalCluster(n_workers=1, threads_per_worker=n_workers * threads_per_worker, processes=False,
                            host="127.0.0.1", protocol="tcp://", dashboard_address=dashboard_address,
                            memory_limit=memory_limit or "auto")
    try:
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                            host="127.0.0.1", dashboard_address=dashboard_address,
                            memory_limit=memory_limit or "auto")
    except Exception as err:  # a worker process that could not start: say why it usually happens
        raise ClusterError(
            f"could not start a local cluster of {n_workers} worker processes ({type(err).__name__}: {err}). "
            "Worker processes import the main module again: a script that calls bigalign must do so under "
            "'if __name__ == \"__main__\":', and code read from standard input cannot start them; pass "
            "client=distributed.Client(processes=False) to run in this process instead") from None


def _probe(address: str, timeout: float) -> None:
    """Check that a tcp:// address is a Dask scheduler, within ``timeout``: a
    scheduler speaks first (its handshake: a little-endian length, then
    frames), where a web server (the dashboard's port) waits silently and
    Dask's own client would wait for ever."""
    from distributed.comm import get_address_host_port

    try:
        host, port = get_address_host_port(address)
    except ValueError as err:
        raise ClusterError(f"{address}: not a scheduler address ({err})") from None
    try:
        with socket.create_connection((host, port), timeout=timeout) as probe:
            probe.settimeout(timeout)
            first = probe.recv(8)
    except TimeoutError:
        raise ClusterError(f"{address} did not answer as a Dask scheduler within {timeout:g} s (is it the "
                           "dashboard's port, or another service?)") from None
    except OSError as err:
        raise ClusterError(f"cannot reach a Dask scheduler at {address} ({err})") from None
    if len(first) < 8 or struct.unpack("<Q", first)[0] > 1 << 32:
        raise ClusterError(f"{address} answered, but not as a Dask scheduler (it sent {first[:8]!r})")


def _client(where: str, security: Any, timeout: float, **kwargs: Any) -> Client:
    """A client of a running scheduler, or a :class:`ClusterError` within ``timeout`` seconds."""
    address = kwargs.get("address") or where
    if "scheduler_file" in kwargs:
        try:
            with open(kwargs["scheduler_file"]) as f:
                address = json.load(f)["address"]
        except (OSError, ValueError, KeyError) as err:
            raise ClusterError(f"{where}: not a readable scheduler file ({err})") from None
    if address.startswith("tls://") and security is None and not dask.config.get("distributed.comm.tls.ca-file",
                                                                                None):
        raise ClusterError(f"{address}: a tls:// scheduler needs TLS settings ([cluster] tls_ca_file, tls_cert "
                           "and tls_key, or Dask's distributed.comm.tls configuration)")
    if "://" not in address or address.startswith("tcp://"):
        _probe(address, timeout)
    from distributed import Client

    try:
        return Client(**kwargs, security=security, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise ClusterError(f"cannot reach a Dask scheduler at {where} within {timeout:g} s ({err})") from None
    except Exception as err:  # something else answered (a web server, another protocol)
        raise ClusterError(f"{where} did not answer as a Dask scheduler ({type(err).__name__}: {err})") from None


def _looks_like_a_file(name: str) -> bool:
    return "://" not in name and (name.endswith(".json") or os.sep in name or ":" not in name)


class Computed(Delayed):
    """A value :class:`NoCluster` computed, standing for a future: ``result()``
    gives it, and graphs read it as they read a future (it is a ``Delayed``:
    ``dd.from_delayed`` and ``dask.delayed(f)(it)`` take it)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        leaf = dask.delayed(value, pure=False, traverse=False)
        super().__init__(leaf.key, leaf.dask)
        self.value = value

    def result(self) -> Any:
        return self.value


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Computed) else x


class _Held:
    """A partition :class:`NoCluster` computed, tokenized by a name of its own, not by its contents."""

    __slots__ = ("token", "value")

    def __init__(self, value: Any):
        self.value = value
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self) -> str:
        return self.token


def _held_value(held: _Held) -> Any:
    return held.value


class NoCluster:
    """No cluster: Dask's threaded scheduler in this process, behind the
    methods of :class:`distributed.Client` that bigalign calls.

    For small jobs, where a scheduler and its workers (starting them, their
    messages, a round trip per step) cost more than the work
    (``benchmarks/STARTUP.md``). The graph is the same; what a client would
    compute in the background is computed at once (the threads share the
    GIL: overlapping stages gained nothing, measured at 100k), so a call
    returns :class:`Computed` values where a client returns futures. No
    dashboard.
    """

    dashboard_link = ""

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bigalign-task")
        # Arrow's memory from the C library's allocator while it runs: mimalloc, Arrow's default, keeps
        # what its threads freed (50 of the 300 MB of a 10k × 10k run), at the same speed (10k and 1M).
        self._arrow_pool = pa.default_memory_pool()
        pa.set_memory_pool(pa.system_memory_pool())

    def scheduler_info(self) -> dict[str, Any]:
        return {"workers": {"this process": {"nthreads": self.threads}}}

    def compute(self, collections: Any) -> Any:
        if isinstance(collections, (list, tuple)):
            return [Computed(v) for v in dask.compute(*collections, scheduler=self._pool)]
        return Computed(dask.compute(collections, scheduler=self._pool)[0])

    def persist(self, collections: Any) -> Any:
        import dask.dataframe as dd  # (what a run persists; not needed to say what the command does)

        many = isinstance(collections, (list, tuple))
        items = list(collections) if many else [collections]
        if not all(isinstance(c, dd.DataFrame | dd.Series) for c in items):
            persisted = list(dask.persist(*items, scheduler=self._pool))
            return persisted if many else persisted[0]
        # Dask's own persist names the computed partitions by hashing their contents (1.3 s
        # of this thread, the workers idle, for the 1M × 1M demo's joined pairs); held here,
        # they are named by a token of their own.
        computed = dask.compute(*[c.to_delayed() for c in items], scheduler=self._pool)
        persisted = [dd.from_map(_held_value, [_Held(p) for p in parts], meta=c._meta, divisions=c.divisions,
                                 enforce_metadata=False) for c, parts in zip(items, computed)]
        return persisted if many else persisted[0]

    def gather(self, futures: Any) -> Any:
        if isinstance(futures, (list, tuple)):
            return [self.gather(f) for f in futures]
        return _value(futures)

    def submit(self, func: Callable, *args: Any, pure: bool = True, key: Any = None, **kwargs: Any) -> Computed:
        return Computed(func(*map(_value, args), **{k: _value(v) for k, v in kwargs.items()}))

    def map(self, func: Callable, *iterables: Iterable, pure: bool = True, key: Any = None,
            **kwargs: Any) -> list[Computed]:
        kwargs = {k: _value(v) for k, v in kwargs.items()}
        arguments = [[_value(x) for x in args] for args in zip(*iterables)]
        values = self._pool.map(lambda args: func(*args, **kwargs), arguments)
        return [Computed(v) for v in values]

    def close(self, wait: bool = True) -> None:
        """Stop the threads: after the tasks they run when ``wait``, else at once (tasks not started are
        dropped; one running ends on its own, its result unused: an interrupted run does not wait for a
        slow read)."""
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        pa.set_memory_pool(self._arrow_pool)


def process_cpu_seconds() -> float:
    """The CPU time (user and system) this process used so far."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def cpu_clock(client: Any) -> Callable[[], float]:
    """The CPU seconds used so far by this process and the cluster's workers (their processes, each asked:
    a round trip, ~10 ms): what a stage's CPU time per wall second — the cores it kept busy — is read from."""
    if isinstance(client, NoCluster):
        return process_cpu_seconds

    def clock() -> float:  # (a worker gone meanwhile is left out: its time is lost with it)
        return process_cpu_seconds() + sum(client.run(process_cpu_seconds, on_error="ignore").values())

    return clock


# Records in memory (of every set together) that a Python call aligns without a cluster, on two cores:
# what the runner's cut (NO_CLUSTER_BYTES) holds of the demo's files (~120 bytes a record).
NO_CLUSTER_RECORDS = 2_000_000


def under_cut(size: float, cut: float) -> bool:
    """Whether work of ``size`` is small enough to run without a cluster, ``cut``
    being measured on two cores: the threads of one process share the GIL where
    worker processes use every core, so with more cores processes win sooner and
    the cut is divided by cores − 1 (a model: only two cores were measured)."""
    return size < cut / max(1, (os.cpu_count() or 2) - 1)


def _environment_scheduler() -> str | None:
    """The scheduler of ``DASK_SCHEDULER_ADDRESS``, else of Dask's ``scheduler-address`` setting."""
    return os.environ.get("DASK_SCHEDULER_ADDRESS") or dask.config.get("scheduler-address", None) or None


def names_a_scheduler(client: Any) -> bool:
    """Whether :func:`connect` would use a running scheduler (the one given, or the environment's)."""
    return client is not None or _environment_scheduler() is not None


@contextmanager
def no_cluster(threads: int) -> Iterator[NoCluster]:
    """A :class:`NoCluster` of ``threads`` threads, said in the log, closed when done."""
    active = NoCluster(threads)
    logger.info("no cluster: Dask's threads in this process, for inputs this small (for Dask's dashboard: "
                "--dashboard, --workers N or --scheduler ADDR, or a job's [cluster] processes = true)")
    try:
        yield active
    except BaseException:
        active.close(wait=False)
        raise
    active.close()


def connect_for_records(client: Any, records: int | None) -> Any:
    """:func:`connect`'s context, or no cluster at all when no scheduler is named
    and ``records`` in memory (``None``: dask collections) are few enough."""
    if records is not None and not names_a_scheduler(client) and under_cut(records, NO_CLUSTER_RECORDS):
        return no_cluster(os.cpu_count() or 1)
    return connect(client)


def shuffle_method(client: Any) -> str | None:
    """How the graph's shuffles run: Dask's default on a cluster (P2P), in memory without one."""
    return "tasks" if isinstance(client, NoCluster) else None


class ProcessMemory:
    """This process's peak resident memory per stage, for a run without a cluster
    (the two methods of ``distributed.diagnostics.MemorySampler`` that a run calls)."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}

    @contextmanager
    def sample(self, label: str, client: Any = None, interval: float = 0.2) -> Iterator[None]:
        done = threading.Event()
        process = psutil.Process()

        def watch() -> None:
            while True:
                self.peaks[label] = max(self.peaks.get(label, 0), process.memory_info().rss)
                if done.wait(interval):
                    return

        watcher = threading.Thread(target=watch, name="bigalign-memory", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame({label: [peak] for label, peak in self.peaks.items()})


def progress_bars(futures: list, show: bool) -> None:
    """Dask's progress bar of ``futures`` when ``show`` (the command line, on a terminal), ended by a new line."""
    if show and not any(isinstance(f, Computed) for f in futures):
        from distributed import progress

        progress(futures)
        print(file=sys.stderr)


def quiet_shuffle_logs() -> None:
    """The P2P shuffle's scheduler plugin logs every shuffle's start and end at WARNING level: hide them."""
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)


@contextmanager
def connect(client: Any = None, *, n_workers: int | None = None, threads_per_worker: int = 1,
            memory_limit: str | None = None, dashboard_address: str = "127.0.0.1:8787",
            security: Any = None, timeout: float = 10, processes: bool = True) -> Iterator[Client | NoCluster]:
    """Yield a client; close what this call started when done.

    Parameters
    ----------
    client : Client, str or None
        See the module docstring.
    n_workers, threads_per_worker, memory_limit, dashboard_address
        For a local cluster (``memory_limit`` per worker, e.g. ``"4GiB"``).
    processes : bool
        A local cluster of worker processes, or (``False``) one worker in
        this process with ``n_workers × threads_per_worker`` threads: no
        process to start, nothing to send between them, for small jobs.
    security : distributed.Security, optional
        TLS settings for a remote scheduler.
    timeout : float
        Seconds to reach a running scheduler; then :class:`ClusterError`.

    The dashboard's link is logged (logger ``bigalign``, level INFO).
    """
    quiet_shuffle_logs()
    owned: list[Any] = []
    if isinstance(client, NoCluster):
        yield client
        return
    from distributed import Client

    from .allocator import AllocatorTuning

    if isinstance(client, Client):
        active = client
    elif isinstance(client, (str, os.PathLike)) and os.path.isfile(client):
        active = _client(os.fspath(client), security, timeout, scheduler_file=os.fspath(client))
        owned.append(active)
    elif isinstance(client, str) and _looks_like_a_file(client):
        raise ClusterError(f"{client}: no such scheduler file (nor a scheduler address such as tcp://host:8786)")
    elif isinstance(client, str):
        active = _client(client, security, timeout, address=client)
        owned.append(active)
    elif client is not None:
        raise TypeError(f"client must be a Client, a scheduler address or a scheduler file, not {client!r}")
    elif (where := _environment_scheduler()) is not None:
        active = _client(where, security, timeout)
        owned.append(active)
    else:
        cluster = _local_cluster(n_workers, threads_per_worker, memory_limit, dashboard_address, processes)
        owned.append(cluster)
        active = Client(cluster)
        owned.insert(0, active)
    active.register_plugin(AllocatorTuning())
    logger.info("Dask dashboard at %s", active.dashboard_link)
    watch = PausedWorkers(active)
    try:
        yield active
    except BaseException:
        if watch.stalled:  # (the watch interrupted the wait, or cancelled it: its reason, not an interrupt)
            raise ClusterError(watch.stalled) from None
        raise
    finally:
        watch.stop()
        for thing in owned:
            close_within(thing)


# Seconds workers may stay paused (over their memory's pause threshold) with nothing running anywhere before
# a run gives up: Dask would wait for ever.
PAUSED_SECONDS = 60.0


class PausedWorkers:
    """Watch a client's workers from a thread; when some are paused and none executes anything for
    :data:`PAUSED_SECONDS` (Dask leaves the tasks it gave a paused worker with it: the others idle),
    interrupt the main thread with the reason in :attr:`stalled` (turned into a :class:`ClusterError`
    by :func:`connect`). Only where the main thread waits on the client."""

    def __init__(self, client: Any, every: float = 1.0):
        self.client, self.every = client, every
        self.stalled: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if threading.current_thread() is threading.main_thread():
            self._thread = threading.Thread(target=self._watch, daemon=True, name="bigalign-paused-workers")
            self._thread.start()

    def _watch(self) -> None:
        since: float | None = None
        while not self._stop.wait(self.every):
            try:
                workers = self.client.scheduler_info()["workers"]
            except Exception:
                if self.client.status in ("closing", "closed"):  # (the scheduler gone: said elsewhere)
                    return
                continue  # (a busy scheduler's answer late: asked again; a watch that stopped here let a run hang)
            paused = [w for w in workers.values() if w.get("status") == "paused"]
            executing = sum((w.get("metrics") or {}).get("task_counts", {}).get("executing", 0)
                            for w in workers.values())
            if not paused or executing:
                since = None
                continue
            since = since if since is not None else time.monotonic()
            if time.monotonic() - since >= PAUSED_SECONDS:
                limits = sorted({w.get("memory_limit") or 0 for w in paused})
                shown = ", ".join(f"{limit / 2**20:,.0f} MiB" for limit in limits)
                self.stalled = (f"{len(paused)} of {len(workers)} workers paused over their memory's pause threshold "
                                f"(memory limit {shown}) and nothing running for {PAUSED_SECONDS:.0f} s: the run "
                                "cannot go on. Give the workers more memory ([cluster] memory_limit, or fewer "
                                "workers on this machine); 'bigalign plan' estimates what a worker needs")
                _thread.interrupt_main()
                self._cancel_all()
                return

    def _cancel_all(self) -> None:
        """Cancel what the client waits on: the main thread's wait then ends even where the interrupt is not
        seen (it is only a flag, read when the main thread runs Python again)."""
        from distributed import Future

        try:
            self.client.cancel([Future(key, self.client) for key in list(self.client.futures)],
                               reason="workers paused", msg=self.stalled)
        except Exception:  # (the client closing: the interrupt alone then)
            pass

    def stop(self) -> None:
        self._stop.set()


# Seconds a client or a local cluster gets to close: its worker processes end with this one anyway.
CLOSE_SECONDS = 30


def close_within(thing: Any) -> None:
    """Close a client or a cluster this process started, or say that it did not close in time (a
    worker that does not answer must not keep the command from ending)."""
    try:
        thing.close(timeout=CLOSE_SECONDS)
    except TimeoutError:
        logger.warning("%s did not close within %.0f s; left to end with this process",
                       type(thing).__name__, CLOSE_SECONDS)


def worker_threads(client: Any) -> int:
    """Worker threads of the cluster (at least one): partitions come in multiples of them."""
    return sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or 1
