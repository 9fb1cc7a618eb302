"""Large blocks scored as dense matrices against pair by pair, side by side in one run.

    python -m benchmarks.dense_blocks [--n 20000] [--dense-block-pairs 10000] [--repeat 2]

Person records blocked on the year of birth only (blocks of thousands of
pairs: n²/90 candidates), the demo job's treatments, on a local cluster of two
workers: wall time of the alignment with every block scored pair by pair and
with blocks of ``--dense-block-pairs`` or more scored as one matrix; the links
must be identical.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
from distributed import Client, LocalCluster

from benchmarks import markdown_table
from bigalign.blocking import KeyBlocking
from bigalign.cluster import connect
from bigalign.datasets import person_records
from bigalign.jobs import load_job
from bigalign.pipeline import DENSE_BLOCK_PAIRS, run_alignment, to_dask
from bigalign.spec import make_alignment

JOB = os.path.join(os.path.dirname(__file__), "..", "jobs", "demo_keys.toml")
# Dense blocks serve the weighted distance (a model scores pair by pair): the demo's treatments
# with the threshold the demo had by hand before it learned its model.
DISTANCE_THRESHOLD = 3.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dense-block-pairs", type=int, default=DENSE_BLOCK_PAIRS)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    job = load_job(JOB)
    data = person_records(args.n, seed=1)
    rows, links = [], {}
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as plain, connect(plain) as client:
        for _ in range(args.repeat):
            for name, dense in (("pair by pair", None), ("dense blocks", args.dense_block_pairs)):
                clock = time.perf_counter()
                alignment = make_alignment(job.alignment.treatments, blocking=KeyBlocking("date_of_birth", "year"),
                                           threshold=DISTANCE_THRESHOLD)
                run = run_alignment(client, to_dask(data.alignset, "rec_id", "a"),
                                    to_dask(data.targetset, "rec_id", "t"), alignment, dense_block_pairs=dense)
                rows.append({"scoring": name, "records per side": args.n, "wall s": time.perf_counter() - clock,
                             "candidate pairs": run.stats.candidate_pairs, "dense blocks": run.stats.dense_blocks,
                             "links": len(run.links)})
                links[name] = run.links
    pd.testing.assert_frame_equal(links["pair by pair"], links["dense blocks"])
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
