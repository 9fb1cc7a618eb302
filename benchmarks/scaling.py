"""bigalign on generated person records, at growing sizes and worker counts.

    python -m benchmarks.scaling --sizes 10000,100000 --workers 1,2 [--output benchmarks/SCALING.md]

For each size: the demo job's treatments and blocking (``jobs/demo.toml``), on
a fresh ``LocalCluster`` (one thread per worker); wall time of the alignment
(blocking, shuffle, scoring, reduce; data generation excluded), candidate
pairs, pair completeness, precision/recall/F1 of the links, and the peak
resident memory of each worker process (sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import threading
import time

import dask
import distributed
import psutil
from distributed import Client, LocalCluster

from benchmarks import markdown_table
from bigalign.cluster import connect
from bigalign.datasets import person_records
from bigalign.evaluate import link_quality
from bigalign.jobs import load_job
from bigalign.pipeline import pair_hashes, run_alignment, to_dask

JOB = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo.toml")


class PeakMemory:
    """Peak RSS of each worker process, sampled in a thread."""

    def __init__(self, cluster: LocalCluster, every: float = 0.2):
        self.pids = [w.process.pid for w in cluster.workers.values()]
        self.peaks = {pid: 0 for pid in self.pids}
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                try:
                    self.peaks[pid] = max(self.peaks[pid], psutil.Process(pid).memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _process_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def _worker_cpu(client: Client) -> float:
    """CPU seconds used so far by all worker processes."""
    return sum(client.run(_process_cpu).values())


def measure(n: int, workers: int) -> dict:
    job = load_job(JOB)
    data = person_records(n, seed=0)
    truth = pair_hashes(data.truth["align_id"], data.truth["target_id"])
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                      memory_limit=f"{20 // workers}GiB") as cluster, Client(cluster) as plain, \
            connect(plain, quiet=True) as client:  # as users get it: with the allocator tuning
        a, b = to_dask(data.alignset, "rec_id", "alignset"), to_dask(data.targetset, "rec_id", "targetset")
        with PeakMemory(cluster) as memory:
            clock = time.perf_counter()
            cpu = _worker_cpu(client)
            run = run_alignment(client, a, b, job.treatments, job.threshold, job.blocking, uniq=True,
                                truth_hashes=truth)
            wall = time.perf_counter() - clock
            cpu = _worker_cpu(client) - cpu
    quality = link_quality(run.links, data.truth)
    return {"records per side": n, "workers": workers, "wall s": wall, "worker CPU s": cpu,
            "candidate pairs": run.stats.candidate_pairs,
            "pair completeness": run.stats.true_pairs_kept / len(data.truth),
            "precision": quality.precision, "recall": quality.recall, "F1": quality.f1,
            "peak MiB per worker": max(memory.peaks.values()) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workers", default="2", help="comma-separated worker counts")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "SCALING.md"))
    args = parser.parse_args()
    rows = [measure(int(n), int(w)) for n in args.sizes.split(",") for w in args.workers.split(",")]
    text = (f"# Scaling\n\nWritten by `python -m benchmarks.scaling --sizes {args.sizes} --workers {args.workers}` "
            f"on {dt.date.today().isoformat()}: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}; dask {dask.__version__}, "
            f"distributed {distributed.__version__}. The alignment alone (data generated beforehand, in memory), "
            f"jobs/demo.toml's treatments and blocking.\n\n{markdown_table(rows)}\n")
    with open(args.output, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
