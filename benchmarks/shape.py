"""The run's shape as Dask reports it, against the cost model's (benchmarks/SCALING.md).

    python -m benchmarks.shape --n 1000000 --workers 4

The demo job's treatments, blocking and model on ``person_records(n)`` read from
Parquet as ``bigalign run`` reads its staged sets, on ``workers``
single-threaded worker processes. Dask's account: tasks per stage (the task
stream, by task name; fused tasks carry the name of one of their parts, so
``encode`` counts the tasks that read the encoded records too, and ``other`` the
rest) and the bytes its P2P shuffles sent between workers (the workers' ``p2p``
metrics). The model's account, from what one record weighs (measured on a
sample, in the frames the stages exchange) and the counts of the run: the bytes
of the block shuffle (a narrow row per block key of each record) and of the two
joins (the pairs, then the pairs with one record's values; each set's encoded
records once), of which P2P sends every shard through its comms (to its own
worker too), of which a share ``1 − 1/workers`` crosses the network.
"""

from __future__ import annotations

import argparse
import collections
import glob
import math
import os
import sys
import tempfile

import pandas as pd
import pyarrow as pa
from distributed import Client, LocalCluster, get_task_stream

from benchmarks import markdown_table
from benchmarks.scaling import JOB, write_sets
from bigalign.jobs import load_job
from bigalign.pipeline import block_rows, encode_records, pair_hashes, run_alignment
from bigalign.pipeline.graph import BLOCK_ROWS_PER_PARTITION, SCORE_PAIRS_PER_PARTITION
from bigalign.staging import read_staged

# Stages as the dashboard names their tasks.
STAGES = {"encode_records": "encode", "block_rows": "block rows", "shuffle": "block shuffle (P2P)",
          "p2pshuffle": "join shuffles (P2P)", "candidate_pairs": "candidates", "merge": "joins",
          "blockwisemerge": "joins", "pair_distances": "model: distances", "candidate_patterns": "model: patterns",
          "score_pairs": "score"}


def _prefix(key: object) -> str:
    name = key[0] if isinstance(key, tuple) else key
    return str(name).split("-")[0]


def _arrow_bytes(frame: pd.DataFrame) -> int:
    return pa.Table.from_pandas(frame, preserve_index=False).nbytes  # (what a P2P shard holds)


def record_weights(directory: str, job) -> dict[str, float]:
    """Bytes of one record's narrow rows (all its keys) and of its encoded values, as Arrow, on a sample."""
    sample = pd.read_parquet(sorted(glob.glob(os.path.join(directory, "targetset-*.parquet")))[0]).head(20_000)
    encoded = encode_records(sample, job.alignment.treatments, job.alignment.blocking, "target", "targetset")
    narrow = block_rows(encoded, job.alignment.blocking, "target")
    values = [c for c in encoded.columns if not c.startswith(("k:", "x:"))]
    return {"narrow": _arrow_bytes(narrow) / len(sample), "narrow rows": len(narrow) / len(sample),
            "encoded": _arrow_bytes(encoded[values]) / len(sample)}


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
            a, b = (read_staged(sorted(glob.glob(os.path.join(directory, f"{name}-*.parquet"))), args.workers)
                    for name in ("alignset", "targetset"))
            with get_task_stream(client) as stream:
                run = run_alignment(client, a, b, job.alignment,
                                    truth_hashes=pair_hashes(truth["align_id"], truth["target_id"]))
            sent = client.run(lambda dask_worker: sum(v for k, v in dask_worker.digests_total.items()
                                                      if k[0] == "p2p" and k[2:] == ("background-comms", "process",
                                                                                    "bytes")))
    tasks = collections.Counter(STAGES.get(_prefix(t["key"]), "other") for t in stream.data)
    records, pairs = 2 * args.n, run.stats.candidate_pairs
    # The block shuffle moves every narrow row. The first join moves the pairs (two id hashes, their rules:
    # 20 bytes) and the target records' values, the second the pairs with those values and the align records'.
    # P2P sends every shard through the comms, to its own worker too; a share 1 − 1/workers crosses the network.
    # Each shuffled row also carries its output partition (8 bytes).
    block = records * (weights["narrow"] + 8 * weights["narrow rows"])
    joins = pairs * (2 * (20 + 8) + weights["encoded"]) + records * (weights["encoded"] + 8)
    reported = int(sum(sent.values()))
    # Partitions the graph chooses (graph.py): shuffled blocks by block rows, scored pairs by pairs.
    predicted = {"candidates": max(2 * args.workers, math.ceil(records * job.alignment.blocking.n_slots
                                                                 / BLOCK_ROWS_PER_PARTITION)),
                 "score": max(2 * args.workers, math.ceil(pairs / SCORE_PAIRS_PER_PARTITION))}
    predicted["model: patterns"] = predicted["score"]
    rows = [{"what": f"tasks: {stage}", "model": predicted.get(stage, "—"), "Dask": count}
            for stage, count in sorted(tasks.items())]
    rows += [{"what": "bytes per record: narrow rows, as Arrow (sample)", "model": round(weights["narrow"]),
              "Dask": "—"},
             {"what": "bytes per record: encoded values, as Arrow (sample)", "model": round(weights["encoded"]),
              "Dask": "—"},
             {"what": "narrow rows per record (sample)", "model": round(weights["narrow rows"], 2), "Dask": "—"},
             {"what": "candidate pairs", "model": "—", "Dask": pairs},
             {"what": "P2P bytes: block shuffle", "model": int(block), "Dask": "—"},
             {"what": "P2P bytes: joins", "model": int(joins), "Dask": "—"},
             {"what": "P2P bytes: all shuffles", "model": int(block + joins), "Dask": reported},
             {"what": "P2P bytes per record", "model": round((block + joins) / records),
              "Dask": round(reported / records)},
             {"what": f"of which over the network (1 − 1/{args.workers})",
              "model": int((block + joins) * (1 - 1 / args.workers)),
              "Dask": int(reported * (1 - 1 / args.workers))}]
    text = (f"`python -m benchmarks.shape --n {args.n} --workers {args.workers}`: {args.n:,} records per side, "
            f"{args.workers} single-threaded workers, seconds per stage "
            + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()) + "\n\n" + markdown_table(rows) + "\n")
    print(text)
    print(text, file=sys.stderr)


if __name__ == "__main__":
    main()
