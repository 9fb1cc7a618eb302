"""Small jobs: worker processes against threads in the run's own process, side by side.

    python -m benchmarks.startup --sizes 2000,20000,50000,100000,200000 [--repeat 2]

For each size, the demo job (``jobs/demo.toml``: its learned model and
blocking) runs as ``bigalign run`` twice, once with ``[cluster] processes =
true`` (two worker processes) and once with ``processes = false`` (one worker
in the run's process, two threads), each measured from outside: wall time and
peak resident memory of the process tree. The links must be the same. The
input size where processes start to win is what
``bigalign.runner.IN_PROCESS_BYTES`` is set from.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
import psutil

from benchmarks import markdown_table

ROOT = os.path.join(os.path.dirname(__file__), "..")


def run(job: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of the process tree of ``bigalign run JOB``."""
    clock = time.perf_counter()
    process = psutil.Popen([sys.executable, "-m", "bigalign", "run", job, "--quiet"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [process] + process.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"bigalign run {job} failed ({process.returncode})")
    return time.perf_counter() - clock, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,50000,100000,200000")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    demo = open(os.path.join(ROOT, "jobs", "demo.toml")).read()
    rows = []
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            jobs = {}
            for processes in ("true", "false"):
                text = demo.replace("n = 50000", f"n = {n}").replace("../out/demo/", directory + "/")
                text = text.replace("links.parquet", f"links-{processes}.parquet")
                text = text.replace("[cluster]\nworkers = 2", f"[cluster]\nworkers = 2\nprocesses = {processes}")
                jobs[processes] = os.path.join(directory, f"job-{processes}.toml")
                with open(jobs[processes], "w") as f:
                    f.write(text)
            run(jobs["true"])  # generates the data (not timed)
            inputs = sum(os.path.getsize(os.path.join(directory, name)) for name in ("people_a.csv",
                                                                                     "people_b.parquet"))
            for _ in range(args.repeat):
                for processes in ("true", "false"):  # side by side, alternating
                    wall, peak = run(jobs[processes])
                    rows.append({"records per side": n, "input MiB": inputs / 2**20,
                                 "cluster": "2 worker processes" if processes == "true" else "2 threads in-process",
                                 "wall s": wall, "peak MiB": peak})
            same = pd.read_parquet(os.path.join(directory, "links-true.parquet")).equals(
                pd.read_parquet(os.path.join(directory, "links-false.parquet")))
            if not same:
                raise AssertionError(f"{n} records: the links differ between processes and threads")
        print(markdown_table(rows[-2 * args.repeat:]), flush=True)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
