"""bigalign on generated person records, at growing sizes and worker counts.

    python -m benchmarks.scaling --sizes 10000,100000,1000000 --workers 1,2 [--output benchmarks/SCALING.md]
    python -m benchmarks.scaling --sizes 10000000 --workers 2 --append
    python -m benchmarks.scaling --sizes 1000000,10000000 --data DIR --job benchmarks/steady_keys.toml --append

For each size the sets are generated once, as Parquet files (row groups of
25,000 records), in a separate process, and read as ``bigalign run`` reads its
staged sets (``bigalign.staging.read_staged``: partitions of up to a million
records); then, for each worker count, the demo job's treatments and blocking
(``jobs/demo_keys.toml``, or ``--job``'s) run on a fresh ``LocalCluster`` (one
thread per worker) that reads them: wall time of the alignment (blocking,
shuffle, scoring, reduce), CPU time (the workers' processes and this one), candidate pairs, pair
completeness, precision/recall/F1 of the links, the peak resident memory
of each worker process (sampled every 0.2 s), and each stage's seconds with its CPU seconds per
wall second (the cores it kept busy).

Up to 1M records per side the data is ``person_records(n, seed=0)``, as in
``benchmarks.compare``. Above, it is ``n / 1M`` samples of 1M (seeds 0, 1, …;
``--sample`` sets their size) side by side, generated apart (one process
could not hold 10M records being generated) but from the pools of the whole
population (``population=``: more surnames as it grows, and regions with
streets and suburbs of their own, see :mod:`bigalign.datasets`), so that 10M
is as hard per record as one draw of 10M would be, not 10 towns of 1M on top
of each other; their ids and social security numbers are prefixed by the
sample's number to stay distinct.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import dask
import distributed
import pandas as pd
import psutil
from distributed import Client, LocalCluster

from benchmarks import markdown_table
from bigalign.cluster import connect, cpu_clock
from bigalign.datasets import person_records
from bigalign.evaluate import link_quality
from bigalign.jobs import load_job
from bigalign.pipeline import ROWS_PER_PARTITION, cpu_measured, pair_hashes, run_alignment
from bigalign.staging import read_staged

JOB = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo_keys.toml")


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


# Records per side of one generated sample.
SAMPLE = 1_000_000


def _write_sample(n: int, seed: int, directory: str, prefix: str, population: int) -> str:
    """One sample as ``alignset-*.parquet``, ``targetset-*.parquet`` and its truth; returns the truth's path."""
    data = person_records(n, seed=seed, population=population)
    if prefix:
        for frame in (data.alignset, data.targetset):
            frame["rec_id"] = prefix + frame["rec_id"]
            frame["soc_sec_id"] = frame["soc_sec_id"].where(frame["soc_sec_id"] == "", prefix + frame["soc_sec_id"])
        data.truth["align_id"] = prefix + data.truth["align_id"]
        data.truth["target_id"] = prefix + data.truth["target_id"]
    for name, frame in (("alignset", data.alignset), ("targetset", data.targetset)):
        frame.to_parquet(os.path.join(directory, f"{name}-{seed:05d}.parquet"), index=False,
                         row_group_size=ROWS_PER_PARTITION)
    path = os.path.join(directory, f"truth-{seed:05d}.parquet")
    data.truth.to_parquet(path, index=False)
    return path


def write_sets(n: int, directory: str, processes: int, sample: int = SAMPLE) -> pd.DataFrame:
    """The generated sets of ``n`` records per side as Parquet files in
    ``directory`` (samples of at most ``sample`` records); returns the truth.

    Generated in other processes, which give their memory back when done."""
    if n % sample and n > sample:
        raise ValueError(f"{n:,} records per side is not a whole number of samples of {sample:,}")
    samples = [(n, 0, "")] if n <= sample else [(sample, k, f"{k}") for k in range(n // sample)]
    population = n + (n - int(round(n * 0.8)))  # (the people of person_records(n): see its duplicates)
    with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        arguments = zip(*[(size, seed, directory, prefix, population) for size, seed, prefix in samples])
        truths = list(pool.map(_write_sample, *arguments))
    return pd.concat([pd.read_parquet(t) for t in truths], ignore_index=True)


@contextmanager
def _data_folder(keep: str | None, n: int, sample: int) -> Iterator[str]:
    """A temporary folder, or ``keep``'s folder for ``n`` records per side (kept)."""
    if keep is None:
        with tempfile.TemporaryDirectory() as directory:
            yield directory
    else:
        directory = os.path.join(keep, f"{n}-{sample}")
        os.makedirs(directory, exist_ok=True)
        yield directory


def measure(directory: str, truth: pd.DataFrame, workers: int, job_path: str = JOB) -> dict:
    job = load_job(job_path)
    truth_hashes = pair_hashes(truth["align_id"], truth["target_id"])
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                      memory_limit=f"{20 // workers}GiB") as cluster, Client(cluster) as plain, \
            connect(plain) as client:  # as users get it: with the allocator tuning
        a, b = (read_staged(sorted(glob.glob(os.path.join(directory, f"{name}-*.parquet"))), workers)
                for name in ("alignset", "targetset"))
        with PeakMemory(cluster) as memory:
            clock, cpu_seconds = cpu_clock(client), {}
            start, start_cpu = time.perf_counter(), clock()
            with cpu_measured(clock, cpu_seconds):
                run = run_alignment(client, a, b, job.alignment, truth_hashes=truth_hashes)
            wall = time.perf_counter() - start
            cpu = clock() - start_cpu
    quality = link_quality(run.links, truth)
    stages = [f"{k} {v:.0f}" + (f" ({cpu_seconds[k] / v:.1f})" if k in cpu_seconds and v >= 0.1 else "")
              for k, v in run.seconds.items()]
    return {"records per side": a.shape[0].compute(), "workers": workers, "wall s": wall, "CPU s": cpu,
            "candidate pairs": run.stats.candidate_pairs,
            "pair completeness": run.stats.true_pairs_kept / len(truth),
            "precision": quality.precision, "recall": quality.recall, "F1": quality.f1,
            "peak MiB per worker": max(memory.peaks.values()) / 2**20,
            "seconds per stage (cores busy)": ", ".join(stages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workers", default="2", help="comma-separated worker counts")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "SCALING.md"))
    parser.add_argument("--append", action="store_true", help="add this run's section to the output file")
    parser.add_argument("--sample", type=int, default=SAMPLE, help="records per side of one generated sample")
    parser.add_argument("--job", default=JOB, help="the job whose treatments, blocking and model run (by default "
                        "jobs/demo_keys.toml; benchmarks/steady_keys.toml: its keys for large populations)")
    parser.add_argument("--data", help="keep the generated sets in this folder (one folder a size), and read "
                        "them from there when a previous run wrote them")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    rows = []
    for n in map(int, args.sizes.split(",")):
        with _data_folder(args.data, n, args.sample) as directory:
            truth_path = os.path.join(directory, "truth.parquet")
            if os.path.exists(truth_path):
                truth = pd.read_parquet(truth_path)
            else:
                truth = write_sets(n, directory, processes=max(worker_counts), sample=args.sample)
                truth.to_parquet(truth_path)  # (last: its presence says the folder is whole)
            for workers in worker_counts:
                rows.append(measure(directory, truth, workers, args.job))
                print(rows[-1], file=sys.stderr, flush=True)
    job_name = os.path.relpath(args.job, os.path.join(os.path.dirname(__file__), ".."))
    command = f"python -m benchmarks.scaling --sizes {args.sizes} --workers {args.workers}" + (
        f" --sample {args.sample}" if args.sample != SAMPLE else "") + (
        f" --job {job_name}" if os.path.abspath(args.job) != os.path.abspath(JOB) else "")
    text = (f"# Scaling\n\nWritten by `{command}` on {dt.date.today().isoformat()}: {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}; dask {dask.__version__}, "
            f"distributed {distributed.__version__}, pandas {pd.__version__}. The alignment alone (the data "
            f"generated beforehand, read from Parquet), {job_name}'s treatments and blocking; above "
            f"{args.sample:,} records per side, samples of {args.sample:,} side by side, drawn from the pools of "
            f"the whole population (see the module's docstring).\n\n"
            f"{markdown_table(rows)}\n")
    with open(args.output, "a" if args.append else "w") as f:
        f.write(("\n" if args.append else "") + text)
    print(text)


if __name__ == "__main__":
    main()
