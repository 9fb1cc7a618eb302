"""The run's shape as Dask reports it, against the cost model's (benchmarks/SCALING.md).

    python -m benchmarks.shape --n 1000000 --workers 4

The demo job's treatments, blocking and model on ``person_records(n)`` read
from Parquet, on ``workers`` single-threaded worker processes. Dask's account:
tasks per stage (the task stream, by task prefix) and the bytes its P2P
shuffles sent between workers (the workers' ``p2p`` metrics). The model's
account, from what one record weighs (measured on a sample, in the frames
the stages exchange) and the counts of the run: the bytes of the block
shuffle (a narrow row per block key of each record) and of the two joins
(the pairs, then the pairs with one record's values; each set's encoded
records once), of which a share ``1 − 1/workers`` crosses the network.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import sys
import tempfile

import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster, get_task_stream

from benchmarks import markdown_table
from benchmarks.scaling import JOB, write_sets
from bigalign.jobs import load_job
from bigalign.pipeline import block_rows, encode_records, pair_hashes, run_alignment

# Stages as the dashboard names their tasks.
STAGES = {"encode_records": "encode", "block_rows": "block rows", "shuffle": "block shuffle (P2P)",
          "p2pshuffle": "join shuffles (P2P)", "candidate_pairs": "candidates", "merge": "joins",
          "blockwisemerge": "joins", "pair_distances": "model: distances", "candidate_patterns": "model: patterns",
          "score_pairs": "score"}


def _prefix(key: object) -> str:
    name = key[0] if isinstance(key, tuple) else key
    return str(name).split("-")[0]


def record_weights(directory: str, job) -> dict[str, float]:
    """Bytes of one record's narrow rows (all its keys) and of its encoded values, on a sample."""
    sample = pd.read_parquet(sorted(glob.glob(os.path.join(directory, "targetset-*.parquet")))[0]).head(20_000)
    encoded = encode_records(sample, job.treatments, job.blocking, "target", "targetset")
    narrow = block_rows(encoded, job.blocking, "target")
    values = [c for c in encoded.columns if not c.startswith(("k:", "x:"))]
    return {"narrow": narrow.memory_usage(deep=True, index=False).sum() / len(sample),
            "encoded": encoded[values].memory_usage(deep=True, index=False).sum() / len(sample)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    job = load_job(JOB)
    with tempfile.TemporaryDirectory() as directory:
        truth = write_sets(args.n, directory, processes=2)
        weights = record_weights(directory, job)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0",
                          memory_limit=f"{20 // args.workers}GiB") as cluster, Client(cluster) as client:
            a, b = (dd.read_parquet(sorted(glob.glob(os.path.join(directory, f"{name}-*.parquet"))),
                                    split_row_groups=True) for name in ("alignset", "targetset"))
            with get_task_stream(client) as stream:
                run = run_alignment(client, a, b, job.treatments, job.threshold, job.blocking, uniq=True,
                                    truth_hashes=pair_hashes(truth["align_id"], truth["target_id"]), model=job.model)
            sent = client.run(lambda dask_worker: sum(v for k, v in dask_worker.digests_total.items()
                                                      if k[0] == "p2p" and k[2:] == ("background-comms", "process",
                                                                                    "bytes")))
    tasks = collections.Counter(STAGES.get(_prefix(t["key"]), "other") for t in stream.data)
    records, pairs = 2 * args.n, run.stats.candidate_pairs
    remote = 1 - 1 / args.workers
    # The block shuffle moves every narrow row. The first join moves the pairs (two id hashes, their rules:
    # 20 bytes) and the target records' values, the second the pairs with those values and the align records'.
    block = records * weights["narrow"]
    joins = pairs * (2 * 20 + weights["encoded"]) + records * weights["encoded"]
    rows = [{"what": f"tasks: {stage}", "model": "—", "Dask": count} for stage, count in sorted(tasks.items())]
    rows += [{"what": "bytes per record: narrow rows (sample)", "model": round(weights["narrow"]), "Dask": "—"},
             {"what": "bytes per record: encoded values (sample)", "model": round(weights["encoded"]), "Dask": "—"},
             {"what": "candidate pairs", "model": "—", "Dask": pairs},
             {"what": "P2P bytes sent between workers", "model": int(remote * (block + joins)),
              "Dask": int(sum(sent.values()))},
             {"what": "P2P bytes sent per record", "model": round(remote * (block + joins) / records),
              "Dask": round(sum(sent.values()) / records)}]
    text = (f"`python -m benchmarks.shape --n {args.n} --workers {args.workers}`: {args.n:,} records per side, "
            f"{args.workers} single-threaded workers, seconds per stage "
            + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()) + "\n\n" + markdown_table(rows) + "\n")
    print(text)
    print(text, file=sys.stderr)


if __name__ == "__main__":
    main()
