"""A deduplication's index: batches of new records joining lasting entities, side by side with full runs.

    python -m benchmarks.index_entities --n 1000000 --batches 1000,10000 --data DIR

The records are ``n`` + the batches' generated person records (``person_entities``: 1 to 8 records a
person); the first ``n`` are indexed, then each batch is linked and added (``bigalign link --add``), in
turn. The job is the entities job's treatments and blocking with Nazca's weighted distance at 3.5 and
clusters cut at 20 records (so that a full run on the same records must give the same clusters: a learned
model would be fitted again by each run). After each batch, ``bigalign run`` of the job on all the
records indexed so far: its time and memory side by side, and whether its clusters are the index's.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from benchmarks import markdown_table, measured_process

ROOT = os.path.join(os.path.dirname(__file__), "..")


def measured(args: list[str], cwd: str) -> tuple[float, float]:
    return measured_process([sys.executable, "-m", "bigalign", *args, "--quiet"], cwd)


def job_text(records: str, output: str) -> str:
    text = open(os.path.join(ROOT, "jobs", "entities.toml")).read()
    treatments = text[text.index("# Names: word order free"):text.index("# What agreeing at each level")]
    return (f'threshold = 3.5\ndedupe = true\n\n[alignset]\npath = "{records}"\nid = "rec_id"\n\n{treatments}\n'
            f'[output]\npath = "{output}"\n\n[clusters]\nmax_size = 20\n')


def partition(frame: pd.DataFrame) -> set[frozenset]:
    return {frozenset(ids) for ids in frame.astype({"id": str}).groupby("cluster_id")["id"].agg(list)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--batches", default="1000,10000")
    parser.add_argument("--data", default=os.path.join(ROOT, "out", "index-entities-bench"))
    args = parser.parse_args()
    sizes = [int(k) for k in args.batches.split(",")]
    os.makedirs(args.data, exist_ok=True)
    from bigalign.datasets import person_entities
    from bigalign.index import Index

    records = person_entities(args.n + sum(sizes), seed=0).sets["records"]
    records.iloc[:args.n].to_csv(os.path.join(args.data, "indexed.csv"), index=False)
    with open(os.path.join(args.data, "job.toml"), "w") as f:
        f.write(job_text("indexed.csv", "full/links.parquet"))
    seconds, peak = measured(["index", "job.toml", "--to", "index"], args.data)
    entities = os.path.join(args.data, "index", Index.open(os.path.join(args.data, "index")).manifest["entities"],
                            "entities.parquet")
    print(f"bigalign index, {args.n:,} records deduplicated: {seconds:.1f} s, peak {peak:,.0f} MiB; entity table "
          f"{os.path.getsize(entities) / 2**20:.1f} MiB")
    rows, start = [], args.n
    for k in sizes:
        records.iloc[start:start + k].to_csv(os.path.join(args.data, f"batch-{k}.csv"), index=False)
        start += k
        records.iloc[:start].to_csv(os.path.join(args.data, f"all-{k}.csv"), index=False)
        with open(os.path.join(args.data, f"job-{k}.toml"), "w") as f:
            f.write(job_text(f"all-{k}.csv", f"run-{k}/links.parquet"))
        link = measured(["link", "job.toml", "--index", "index", "--records", f"batch-{k}.csv", "--output",
                         f"link-{k}/links.parquet", "--add"], args.data)
        run = measured(["run", f"job-{k}.toml"], args.data)
        index = Index.open(os.path.join(args.data, "index"))
        full = pd.read_parquet(os.path.join(args.data, f"run-{k}", "clusters.parquet"))
        summary = pd.read_json(os.path.join(args.data, f"link-{k}", "summary.json"), typ="series")
        changed = sum(summary["entities"]["changes"].values())
        rows.append({"new records": k, "link --add s": link[0], "link peak MiB": link[1], "full run s": run[0],
                     "run peak MiB": run[1], "link / run": link[0] / run[0],
                     "joined entities": summary["entities"]["joined"], "ids changed": changed,
                     "same clusters": "yes" if partition(index.entities()) == partition(full) else "no"})
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
