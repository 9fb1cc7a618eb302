"""Small jobs: no cluster, a cluster in the run's process, or worker processes, side by side.

    python -m benchmarks.startup --sizes 2000,20000,50000,100000,200000 [--repeat 2]

For each size, the demo job with its keys (``jobs/demo_keys.toml``: its learned model and
blocking) runs as ``bigalign run`` three ways, the ways taking turns, each
measured from outside (wall time and peak resident memory of the process
tree): without a cluster (:class:`bigalign.cluster.NoCluster`, Dask's
threads in the run's process, forced at every size here), with ``[cluster]
processes = false`` (a cluster of one worker in the run's process, two
threads) and with ``processes = true`` (two worker processes). The links must
be the same. The input size where worker processes start to win is what
``bigalign.runner.NO_CLUSTER_BYTES`` is set from.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import pandas as pd

from benchmarks import markdown_table, measured_process

ROOT = os.path.join(os.path.dirname(__file__), "..")
WAYS = {"no cluster": "", "cluster of 2 threads in-process": "processes = false\n",
        "2 worker processes": "processes = true\n"}
# `bigalign run` with no cluster below any input size (the cut measured here), its process set as the command sets it.
RUN = ("import sys, bigalign.runner; bigalign.runner.NO_CLUSTER_BYTES = 1 << 62; "
       "from bigalign.cli import main; sys.exit(main(sys.argv[1:]))")


def run(job: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of the process tree of ``bigalign run JOB``."""
    return measured_process([sys.executable, "-c", RUN, "run", job, "--quiet"], ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,50000,100000,200000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    demo = open(os.path.join(ROOT, "jobs", "demo_keys.toml")).read()
    rows = []
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            jobs = {}
            for k, (way, setting) in enumerate(WAYS.items()):
                text = demo.replace("n = 50000", f"n = {n}").replace("../out/demo/", directory + "/")
                text = text.replace("links.parquet", f"links-{k}.parquet")
                text = text.replace("[cluster]\nworkers = 2\n", f"[cluster]\nworkers = 2\n{setting}")
                jobs[way] = os.path.join(directory, f"job-{k}.toml")
                with open(jobs[way], "w") as f:
                    f.write(text)
            run(jobs["no cluster"])  # generates the data (not timed)
            inputs = sum(os.path.getsize(os.path.join(directory, name)) for name in ("people_a.csv",
                                                                                     "people_b.parquet"))
            for _ in range(args.repeat):
                for way, job in jobs.items():  # side by side, taking turns
                    wall, peak = run(job)
                    rows.append({"records per side": n, "input MiB": inputs / 2**20, "how": way,
                                 "wall s": wall, "peak MiB": peak})
            links = [pd.read_parquet(os.path.join(directory, f"links-{k}.parquet")) for k in range(len(WAYS))]
            if not all(found.equals(links[0]) for found in links[1:]):
                raise AssertionError(f"{n} records: the links differ between the ways of running")
        print(markdown_table(rows[-len(WAYS) * args.repeat:]), flush=True)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
