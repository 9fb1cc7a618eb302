"""Fixtures shared by the tests, and the tiers they run in.

Three tiers (``pytest -m fast`` is what a developer runs on every change; ``pytest`` and ``.ci/run`` run
them all, in this order):

- ``fast``: functions and objects in this process — no process started (no worker, no command), no
  server, no browser;
- ``integration``: real Dask clusters of worker processes on loopback, the ``bigalign`` command in
  subprocesses;
- ``system``: real servers and programs beside bigalign — Chromium, PostgreSQL, Oxigraph, CubicWeb — and the
  benchmark runners.

A test is ``integration`` when it uses a cluster fixture or is marked so; ``system`` when its module
or itself is marked so; ``fast`` otherwise — and a fast test that starts a process fails, saying to
mark it (so the fast tier stays what it says).
"""

import multiprocessing.process
import signal
import subprocess
import warnings

import pytest
from distributed import Client, LocalCluster

TIERS = ("fast", "integration", "system")
# Fixtures that start worker processes or servers: a test using one is not fast.
CLUSTER_FIXTURES = {"client", "scheduler"}


def pytest_configure(config):
    """A command started in the background by a shell without job control (``cmd &`` in a script, as CI
    may start the suite) begins with SIGINT ignored, and every process it starts inherits that: the tests
    that stop a server or a run with Ctrl-C would wait for ever. The suite starts from Python's own."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def pytest_collection_modifyitems(config, items):
    tiers = {}
    for item in items:
        marked = {m.name for m in item.iter_markers()} & set(TIERS)
        if not marked:
            marked = {"integration"} if CLUSTER_FIXTURES & set(item.fixturenames) else {"fast"}
            for tier in marked:
                item.add_marker(tier)
        if len(marked) > 1:
            raise pytest.UsageError(f"{item.nodeid}: in one tier only, not {sorted(marked)}")
        tiers[item.nodeid] = TIERS.index(marked.pop())
    items.sort(key=lambda item: tiers[item.nodeid])  # (stable: the fast tier first, then the others)


class _ProcessStarted(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request, monkeypatch):
    """In the fast tier, starting a process (a command, a worker) fails the test."""
    if request.node.get_closest_marker("fast") is None:
        yield
        return

    def refuse(*args, **kwargs):
        raise _ProcessStarted(f"{request.node.nodeid} starts a process: mark it integration or system")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    yield


@pytest.fixture(autouse=True)
def _ctrl_c_as_python_sets_it(request):
    """Each test starts with Python's own Ctrl-C (SIGINT handled, not blocked). A test or library that leaves
    it ignored or blocked makes every command a later test starts ignore Ctrl-C (children inherit it: a
    `bigalign serve` that never stops), and `_thread.interrupt_main` do nothing (a run on paused workers
    that never ends): restored here, and the test that left it named in the warnings."""
    yield
    handler = signal.getsignal(signal.SIGINT)
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if handler is not signal.default_int_handler or blocked:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        warnings.warn(f"{request.node.nodeid} left SIGINT {'blocked' if blocked else repr(handler)}: restored")


@pytest.fixture(scope="session")
def client():
    """A real cluster: two worker processes on loopback."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c
