"""The pairs each key of a job's blocking gives per align record, and their union's, on kept sets.

    python -m benchmarks.scaling --sizes 1000000,10000000 --workers 2 --data DIR
    python -m benchmarks.key_density --data DIR --sizes 1000000,10000000 [--job jobs/demo_keys.toml]

For each size, every record's keys (the job's union of keys, member by
member), the blocks' sizes on both sides, and their products summed: the
pairs each key alone would give, per align record; then the union's
distinct pairs per align record (the candidates) and the share of the true
pairs that share a key (pair completeness). Which keys grow denser with the
population, and what another choice of keys would give, before a run
(SCALING.md: "Which keys grow denser"). Keys are compared whole (64 bits),
as the run's first-shared-slot rule compares them.
"""

from __future__ import annotations

import argparse
import glob
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks import markdown_table
from benchmarks.scaling import JOB, SAMPLE
from bigalign.blocking import KeyBlocking
from bigalign.jobs import load_job

# Records keyed at once (bounds a process's memory).
CHUNK = 50_000


def _members(job: str) -> list[KeyBlocking]:
    members = load_job(job).alignment.blocking.blockings()
    if not all(isinstance(m, KeyBlocking) for m in members):
        raise SystemExit(f"{job}: its blocking is not made of keys (kind = \"key\")")
    return members


def file_keys(job: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    """The ids and keys of every record of one file (a column per key of the job's union; 0: no key)."""
    blocking = load_job(job).alignment.blocking
    records = pq.read_table(path).to_pandas()
    keys = [blocking.keys(records.iloc[s:s + CHUNK], "align") for s in range(0, len(records), CHUNK)]
    return records.iloc[:, 0].astype(str).to_numpy(object), np.vstack(keys)


def key_figures(directory: str, job: str = JOB, processes: int = 2) -> tuple[list[float], float, float]:
    """Per key of the job's union: the pairs its blocks hold, per align record; the union's distinct pairs
    per align record; the share of the true pairs (``truth.parquet``) that share a key."""
    ids, keys = {}, {}
    for side in ("alignset", "targetset"):
        with ProcessPoolExecutor(processes) as pool:
            parts = list(pool.map(partial(file_keys, job),
                                  sorted(glob.glob(os.path.join(directory, f"{side}-*.parquet")))))
        ids[side] = pd.Index(np.concatenate([p[0] for p in parts]))
        keys[side] = np.vstack([p[1] for p in parts])
    n_a, n_b = len(ids["alignset"]), len(ids["targetset"])
    per_key, pairs = [], []
    for j in range(keys["alignset"].shape[1]):
        a, b = (pd.DataFrame({"key": keys[side][:, j], "row": np.arange(len(keys[side]))})
                for side in ("alignset", "targetset"))
        met = a[a["key"] != 0].merge(b[b["key"] != 0], on="key")
        per_key.append(len(met) / n_a)
        pairs.append(met["row_x"].to_numpy(np.int64) * n_b + met["row_y"].to_numpy(np.int64))
        del met
    candidates = len(np.unique(np.concatenate(pairs))) / n_a
    truth = pd.read_parquet(os.path.join(directory, "truth.parquet"))
    true_a = keys["alignset"][ids["alignset"].get_indexer(truth["align_id"].astype(str))]
    true_b = keys["targetset"][ids["targetset"].get_indexer(truth["target_id"].astype(str))]
    completeness = float(((true_a == true_b) & (true_a != 0)).any(axis=1).mean())
    return per_key, candidates, completeness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the folder given to benchmarks.scaling --data")
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--sample", type=int, default=SAMPLE, help="as given to benchmarks.scaling")
    parser.add_argument("--job", default=JOB, help="a job whose blocking is a key or a union of keys (by default "
                        "the demo's, which benchmarks.scaling runs)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    rows = [{"key": " + ".join(f"{' '.join(p) if isinstance(p, list) else p} ({t or 'exact'})"
                               for p, t in zip(m.parts, m.transform))} for m in _members(args.job)]
    rows += [{"key": "union: candidate pairs per align record"}, {"key": "union: pair completeness"}]
    for n in sizes:
        directory = os.path.join(args.data, f"{n}-{args.sample}")
        if not os.path.exists(os.path.join(directory, "truth.parquet")):
            parser.error(f"no sets of {n:,} records per side in {args.data}: run benchmarks.scaling --data first")
        per_key, candidates, completeness = key_figures(directory, args.job)
        for row, value in zip(rows, per_key + [candidates]):
            row[f"{n:,} × {n:,}"] = round(value, 3)
        rows[-1][f"{n:,} × {n:,}"] = f"{completeness:.5f}"  # (tables show 3 places: too few here)
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
