"""Block pairs per align record of each key of the demo's blocking, on the sets benchmarks.scaling keeps.

    python -m benchmarks.scaling --sizes 1000000,10000000 --workers 2 --data DIR
    python -m benchmarks.key_density --data DIR --sizes 1000000,10000000

For each size, every record's keys (``jobs/demo.toml``'s union, member by
member), the blocks' sizes on both sides, and their products summed: the
pairs each key alone would give, per align record. Which keys grow denser
with the population (SCALING.md: "Which keys grow denser").
"""

from __future__ import annotations

import argparse
import glob
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks import markdown_table
from benchmarks.scaling import JOB, SAMPLE
from bigalign.jobs import load_job

# Records keyed at once (bounds a process's memory).
CHUNK = 50_000


def file_keys(path: str) -> np.ndarray:
    """The keys of every record of one file (a column per member of the union; 0: no key)."""
    blocking = load_job(JOB).blocking
    records = pq.read_table(path).to_pandas()
    return np.vstack([blocking.keys(records.iloc[s:s + CHUNK], "align") for s in range(0, len(records), CHUNK)])


def block_pairs_per_record(directory: str, processes: int = 2) -> list[float]:
    """Per member of the demo's union: the pairs its blocks hold, per align record."""
    counts, records = {}, 0
    for side in ("alignset", "targetset"):
        with ProcessPoolExecutor(processes) as pool:
            keys = np.vstack(list(pool.map(file_keys, sorted(glob.glob(os.path.join(directory, f"{side}-*.parquet"))))))
        counts[side] = [pd.Series(keys[:, j][keys[:, j] != 0]).value_counts() for j in range(keys.shape[1])]
        records = records or len(keys)
    out = []
    for a, b in zip(counts["alignset"], counts["targetset"]):
        shared = a.index.intersection(b.index)
        out.append(int((a[shared].to_numpy(np.int64) * b[shared].to_numpy(np.int64)).sum()) / records)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the folder given to benchmarks.scaling --data")
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--sample", type=int, default=SAMPLE, help="as given to benchmarks.scaling")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    members = load_job(JOB).blocking.blockings()
    rows = [{"key": " + ".join(f"{' '.join(p) if isinstance(p, list) else p} ({t or 'exact'})"
                               for p, t in zip(m.parts, m.transform))} for m in members]
    for n in sizes:
        directory = os.path.join(args.data, f"{n}-{args.sample}")
        if not os.path.exists(os.path.join(directory, "truth.parquet")):
            parser.error(f"no sets of {n:,} records per side in {args.data}: run benchmarks.scaling --data first")
        for row, value in zip(rows, block_pairs_per_record(directory)):
            row[f"{n:,} × {n:,}"] = round(value, 3)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
