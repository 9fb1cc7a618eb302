"""Batches linked against an index of the register, side by side with full runs of the same batches.

    python -m benchmarks.index_batches --n 1000000 --batches 10,1000,10000,100000 --data DIR

The register is ``n`` generated person records (the demo's ``people_b.parquet``), the new records
the first ``k`` of the demo's ``people_a.csv``; the job is the demo's treatments and blocking with
Nazca's weighted distance at 3.5 (so that a full run gives the very links a batch gives: a learned
model would be fitted again on each full run's own records). Measured from outside, wall time and
peak resident memory of the process tree: ``bigalign index`` once, then for each batch, taking turns,
``bigalign link`` against the index, ``bigalign run`` of the job with the batch as its alignset (the
same links, byte for byte: checked) and the full re-alignment the index spares, ``bigalign run`` of the
whole job (the n records of ``people_a.csv``, the batch's among them, against the n of the register).
Then one record at a time: ``Index.match`` in this process, its latency over records not in any batch,
after one pass that reads the row groups of their keys.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from benchmarks import markdown_table, measured_process

ROOT = os.path.join(os.path.dirname(__file__), "..")


def measured(args: list[str], cwd: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of the process tree of ``bigalign ARGS``."""
    return measured_process([sys.executable, "-m", "bigalign", *args, "--quiet"], cwd)


def job_text(alignset: str, output: str) -> str:
    demo = open(os.path.join(ROOT, "jobs", "demo_keys.toml")).read()
    treatments = demo[demo.index("# Names: word order free"):demo.index("# What agreeing at each level")]
    return (f'threshold = 3.5\n\n[alignset]\npath = "{alignset}"\nid = "rec_id"\n\n[targetset]\n'
            f'path = "people_b.parquet"\nid = "rec_id"\n\n{treatments}\n[output]\npath = "{output}"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batches", default="10,1000,10000,100000")
    parser.add_argument("--data", default=os.path.join(ROOT, "out", "index-bench"))
    parser.add_argument("--lookups", type=int, default=1000)
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    if not os.path.exists(os.path.join(args.data, "people_b.parquet")):
        from bigalign.datasets import person_records

        data = person_records(args.n, seed=0)
        data.alignset.to_csv(os.path.join(args.data, "people_a.csv"), index=False)
        data.targetset.to_parquet(os.path.join(args.data, "people_b.parquet"), index=False)
    people = pd.read_csv(os.path.join(args.data, "people_a.csv"), dtype=str, keep_default_na=False)
    with open(os.path.join(args.data, "job.toml"), "w") as f:
        f.write(job_text("people_a.csv", "full/links.parquet"))
    seconds, peak = measured(["index", "job.toml", "--to", "index"], args.data)
    print(f"bigalign index, {args.n:,} register records: {seconds:.1f} s, peak {peak:,.0f} MiB")
    rows = []
    sizes = [int(k) for k in args.batches.split(",")]
    for k in sizes:
        people.iloc[:k].to_csv(os.path.join(args.data, f"batch-{k}.csv"), index=False)
        with open(os.path.join(args.data, f"job-{k}.toml"), "w") as f:
            f.write(job_text(f"batch-{k}.csv", f"run-{k}/links.parquet"))
        link = measured(["link", "job.toml", "--index", "index", "--records", f"batch-{k}.csv", "--output",
                         f"link-{k}/links.parquet"], args.data)
        run = measured(["run", f"job-{k}.toml"], args.data)
        full = measured(["run", "job.toml"], args.data)
        same = (open(os.path.join(args.data, f"link-{k}", "links.parquet"), "rb").read()
                == open(os.path.join(args.data, f"run-{k}", "links.parquet"), "rb").read())
        summary = pd.read_json(os.path.join(args.data, f"link-{k}", "summary.json"), typ="series")
        rows.append({"new records": k, "link s": link[0], "link peak MiB": link[1], "run s": run[0],
                     "run peak MiB": run[1], "full run s": full[0], "full peak MiB": full[1],
                     "link / run": link[0] / run[0], "link / full run": link[0] / full[0],
                     "index block rows read": summary["blocking"]["index"]["block_rows_read"],
                     "index MiB read": summary["blocking"]["index"]["bytes_read"] / 2**20,
                     "of index MiB": summary["blocking"]["index"]["bytes"] / 2**20,
                     "same links": "yes" if same else "no"})
    print(markdown_table(rows))
    from bigalign.index import Index

    index = Index.open(os.path.join(args.data, "index"))
    records = people.iloc[max(sizes):max(sizes) + args.lookups]
    clock = time.perf_counter()
    for _, record in records.iterrows():  # (the first pass reads the row groups a record names, once)
        index.match(record.to_dict())
    first_pass = time.perf_counter() - clock
    latencies = []
    for _, record in records.iterrows():
        clock = time.perf_counter()
        index.match(record.to_dict())
        latencies.append(time.perf_counter() - clock)
    latencies_ms = 1000 * np.array(latencies)
    print(f"Index.match, one record at a time ({args.lookups} records not in any batch): p50 "
          f"{np.percentile(latencies_ms, 50):.1f} ms, p99 {np.percentile(latencies_ms, 99):.1f} ms (first pass, "
          f"reading the row groups: {first_pass:.1f} s)")


if __name__ == "__main__":
    main()
