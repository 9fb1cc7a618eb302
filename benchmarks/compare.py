"""bigalign against Splink, recordlinkage and Nazca, side by side on the same data.

    pip install -e '.[bench]'
    python -m benchmarks.compare --sizes 10000,100000 [--tools bigalign,splink] [--time-limit 900]

For each size, person records are generated once with ``bigalign.datasets``
(seed 0, the same for every tool); each tool then runs in its own process,
watched from outside: wall time, CPU time (the kernel's account of the whole
process tree, Dask workers included) and peak resident memory of the tree
(sampled every 0.2 s). A tool that
is not installed, fails, or exceeds the time limit is reported as such, and a
tool that timed out is skipped at larger sizes. The table goes to
``benchmarks/RESULTS.md`` (``--output`` to change), with the machine and versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import pandas as pd
import psutil

from benchmarks import markdown_table
from benchmarks.peers import TOOLS
from bigalign.__main__ import PROCESS_ENVIRONMENT
from bigalign.blocking import KeyBlocking
from bigalign.datasets import person_records

MODULES = {"bigalign": "bigalign", "bigalign_distance": "bigalign", "splink": "splink", "splink_keys": "splink",
           "recordlinkage": "recordlinkage", "nazca": "nazca"}


def with_helpers(frame: pd.DataFrame) -> pd.DataFrame:
    """Generated records with what peers are given ready-made: ISO dates,
    birth years and the Soundex codes of bigalign's blocking keys."""
    helpers = pd.DataFrame({"rec_id": frame["rec_id"]})
    for column, key in (("date_iso", KeyBlocking("date_of_birth", "date")),
                        ("birth_year", KeyBlocking("date_of_birth", "year")),
                        ("surname_soundex", KeyBlocking("surname", "soundex")),
                        ("names_soundex_set", KeyBlocking([["given_name", "surname"]], "soundex-set"))):
        helpers[column] = key.values(frame)
    return frame.merge(helpers, on="rec_id")


def write_data(n: int, directory: str) -> None:
    """The generated sets as CSV (see :func:`with_helpers`), and their truth."""
    data = person_records(n, seed=0)
    for frame, name in ((data.alignset, "people_a.csv"), (data.targetset, "people_b.csv")):
        with_helpers(frame).to_csv(os.path.join(directory, name), index=False)
    data.truth.to_csv(os.path.join(directory, "truth.csv"), index=False)


def installed(tool: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {MODULES[tool]}"], capture_output=True)
    return probe.returncode == 0


def measure(tool: str, directory: str, workers: int, time_limit: float) -> dict:
    result_path = os.path.join(directory, f"{tool}.json")
    command = [sys.executable, "-m", "benchmarks.peers", tool, directory, result_path, "--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": str(workers), "PYTHONWARNINGS": "ignore"}
    if tool.startswith("bigalign"):  # (its process's environment as the `bigalign` command sets it)
        env = {**PROCESS_ENVIRONMENT, **env}
    # CPU time of the whole tree: what the tool's processes used, counted by the kernel
    # once each is reaped (sampling them would count a reaped worker twice, in its parent's total too).
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    clock = time.perf_counter()
    log = open(os.path.join(directory, f"{tool}.log"), "w+b")  # a file, not a pipe: a full pipe would block the tool
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env,
                           cwd=os.path.join(os.path.dirname(__file__), ".."))
    peak = 0
    timed_out = False
    while process.poll() is None:
        if time.perf_counter() - clock > time_limit:
            for child in process.children(recursive=True):
                child.kill()
            process.kill()
            timed_out = True
            break
        try:
            tree = [process] + process.children(recursive=True)
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - clock
    process.wait()
    with log:
        log.seek(0)
        stderr = log.read().decode(errors="replace")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    row = {"wall s": wall, "CPU s": cpu, "peak MiB (process tree)": peak / 2**20}
    if timed_out:
        return {**row, "status": f"timed out after {time_limit:.0f} s"}
    if process.returncode is not None and process.returncode < 0:
        return {**row, "status": f"killed by signal {-process.returncode}"}
    if process.returncode != 0:
        return {**row, "status": "failed: " + (stderr.strip().splitlines() or ["?"])[-1][:120]}
    with open(result_path) as f:
        return {**row, "status": "ok", **json.load(f)}


def measure_interleaved(tools: list[str], directory: str, workers: int, time_limit: float,
                        repeat: int) -> dict[str, dict]:
    """Each tool measured ``repeat`` times, the tools taking turns (a shared machine's
    slow minutes then fall on all of them alike): per tool, the run of median wall time,
    with every run's wall time (``wall s (runs)``)."""
    runs: dict[str, list[dict]] = {tool: [] for tool in tools}
    for _ in range(repeat):
        for tool in tools:
            runs[tool].append(measure(tool, directory, workers, time_limit))
            print(json.dumps({"tool": tool, **runs[tool][-1]}, default=str), file=sys.stderr, flush=True)
    chosen = {}
    for tool, results in runs.items():
        ok = sorted((r for r in results if r["status"] == "ok"), key=lambda r: r["wall s"])
        row = ok[(len(ok) - 1) // 2] if ok else results[-1]
        chosen[tool] = {**row, "wall s (runs)": ", ".join(f"{r['wall s']:.1f}" for r in results)}
    return chosen


def versions() -> str:
    names = ["bigalign", "dask", "distributed", "rapidfuzz", "datasketch", "splink", "duckdb", "recordlinkage",
             "nazca", "pandas", "numpy"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each tool, taking turns; the run of median wall time is reported")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    parser.add_argument("--append", action="store_true", help="add this run's section to the output file")
    args = parser.parse_args()
    tools = args.tools.split(",")
    rows, given_up = [], {}
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            write_data(n, directory)
            present = [tool for tool in tools if installed(tool) and tool not in given_up]
            results = measure_interleaved(present, directory, args.workers, args.time_limit, args.repeat)
            for tool in tools:
                base = {"tool": tool, "records per side": n}
                if tool in results:
                    if results[tool]["status"].startswith("timed out"):
                        given_up[tool] = f"skipped: {results[tool]['status']} at {n:,} records"
                    rows.append({**base, **results[tool]})
                else:
                    rows.append({**base, "status": given_up.get(tool, "not installed (pip install -e '.[bench]')")})
    columns = ["tool", "records per side", "status", "wall s", "wall s (runs)", "CPU s", "peak MiB (process tree)",
               "fit s",
               "candidate_pairs",
               "pair_completeness", "precision", "recall", "f1", "configuration"]
    table = [{c: ("—" if r.get(c) is None else r[c]) for c in columns} for r in rows]
    command = (f"python -m benchmarks.compare --sizes {args.sizes} --tools {args.tools} "
               f"--time-limit {args.time_limit:.0f} --workers {args.workers} --repeat {args.repeat}")
    text = (f"# bigalign and its peers\n\nWritten by `{command}` on {dt.date.today().isoformat()}: "
            f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.machine()}, Python "
            f"{platform.python_version()}; every tool on {args.workers} core(s), run {args.repeat} time(s), the "
            f"tools taking turns (the run of median wall time shown).\n\nVersions: {versions()}.\n\n"
            f"{markdown_table(table)}\n\nData: `bigalign.datasets.person_records(n, seed=0)` (each align record has "
            "a corrupted copy in the targetset with probability 0.8). Peers read dates already in ISO form; "
            "bigalign parses the raw mixed formats. '—': the tool does not expose that figure.\n")
    with open(args.output, "a" if args.append else "w") as f:
        f.write(("\n" if args.append else "") + text)
    print(text)


if __name__ == "__main__":
    main()
