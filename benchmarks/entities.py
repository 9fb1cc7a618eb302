"""Deduplication into entities: bigalign against Splink, side by side on the same data.

    pip install -e '.[bench]'
    python -m benchmarks.entities --sizes 1000000 [--tools bigalign_entities,splink_entities]

One set of ``n`` generated person records (``bigalign.datasets.person_entities``,
seed 0: people with 1 to 8 records each, half with one, copies corrupted), written
once; each tool then deduplicates it and clusters its links into entities in its
own process, watched from outside as in ``benchmarks.compare`` (wall time, CPU
time and peak memory of the process tree). Clusters are scored against each
record's entity: pairwise precision, recall and F1 over the pairs of records put
in one cluster, and B-cubed F1. The table goes to ``benchmarks/ENTITIES.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import tempfile

import psutil

from benchmarks import markdown_table
from benchmarks.compare import installed, measure_interleaved, versions, with_helpers
from benchmarks.peers import ENTITY_TOOLS
from bigalign.datasets import person_entities


def write_data(n: int, directory: str) -> None:
    people = person_entities(n, seed=0, sets=("alignset",))
    with_helpers(people.sets["alignset"]).to_csv(os.path.join(directory, "people.csv"), index=False)
    people.entities.to_csv(os.path.join(directory, "entities.csv"), index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--tools", default=",".join(ENTITY_TOOLS))
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--time-limit", type=float, default=1800.0)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each tool, taking turns; the run of median wall time is reported")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "ENTITIES.md"))
    parser.add_argument("--append", action="store_true", help="add this run's section to the output file")
    args = parser.parse_args()
    rows = []
    for n in map(int, args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as directory:
            write_data(n, directory)
            tools = args.tools.split(",")
            present = [tool for tool in tools if installed(tool.split("_")[0])]
            results = measure_interleaved(present, directory, args.workers, args.time_limit, args.repeat)
            for tool in tools:
                rows.append({"tool": tool, "records": n,
                             **results.get(tool, {"status": "not installed (pip install -e '.[bench]')"})})
    columns = ["tool", "records", "status", "wall s", "wall s (runs)", "CPU s", "peak MiB (process tree)", "fit s",
               "links", "clusters", "pair_precision", "pair_recall", "pair_f1", "bcubed_f1", "configuration"]
    table = [{c: ("—" if r.get(c) is None else r[c]) for c in columns} for r in rows]
    command = (f"python -m benchmarks.entities --sizes {args.sizes} --tools {args.tools} "
               f"--time-limit {args.time_limit:.0f} --workers {args.workers} --repeat {args.repeat}")
    text = (f"# Deduplication into entities: bigalign and Splink\n\nWritten by `{command}` on "
            f"{dt.date.today().isoformat()}: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"{platform.machine()}, Python {platform.python_version()}; every tool on {args.workers} core(s), run "
            f"{args.repeat} time(s), the tools taking turns: the run of median wall time is shown.\n\n"
            f"Versions: {versions()}.\n\n{markdown_table(table)}\n\nData: `bigalign.datasets.person_entities(n, "
            "seed=0)`: people with 1 to 8 records each (half with one), every copy corrupted. Splink reads dates "
            "already in ISO form and the Soundex codes of bigalign's keys ready-made; bigalign parses the raw "
            "mixed formats. Scores are over every record: pairwise over the pairs of records put in one cluster, "
            "B-cubed per record.\n")
    with open(args.output, "a" if args.append else "w") as f:
        f.write(("\n" if args.append else "") + text)
    print(text)


if __name__ == "__main__":
    main()
