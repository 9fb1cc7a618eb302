"""People who moved between the two sets: the learned model with its treatments apart, with the groups it
finds (``[model] groups = "auto"``), and with the address as a group, side by side in one run.

    python -m benchmarks.movers --n 200000 --movers 0,0.15,0.3 --data DIR

Records: ``person_records(n, movers=share)`` — a share of the copies whose street number, street,
suburb and postcode are all those of a new address — without the social security id (nothing that
survives a move). Job: each field its own treatment, as a newcomer writes it (given name and surname
apart: the generator swaps them, so they disagree together too), blocked on names and birth, and on
the address; the learned model with ``threshold = "auto"``. Each run is a whole ``bigalign run`` process
(wall time, peak memory of the process tree); quality against the generator's truth; "calibration":
at the threshold, the precision and recall the model expected of its candidates against the truth's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks import markdown_table, measured_process

TREATMENTS = """
[[treatments]]
column = "given_name"
normalizers = ["lunormalize"]
metric = "jaro_winkler"
[[treatments]]
column = "surname"
normalizers = ["lunormalize"]
metric = "jaro_winkler"
[[treatments]]
column = "date_of_birth"
metric = "temporal"
[[treatments]]
column = "street_number"
metric = "exact"
[[treatments]]
column = "address"
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true
[[treatments]]
column = "suburb"
metric = "jaro_winkler"
[[treatments]]
column = "postcode"
metric = "exact"

[blocking]
kind = "union"
[[blocking.of]]
kind = "key"
columns = ["surname", "date_of_birth"]
transform = ["soundex", "year"]
[[blocking.of]]
kind = "key"
columns = ["given_name", "date_of_birth"]
transform = ["soundex", "date"]
[[blocking.of]]
kind = "key"
columns = ["address", "street_number"]
"""


ADDRESS = ("street_number", "address", "suburb", "postcode")


def job_text(share: str, groups: str) -> str:
    """The job: treatments apart (``none``), grouped as found (``auto``), or the address a group (``home``)."""
    treatments = TREATMENTS
    if groups == "home":
        for column in ADDRESS:
            treatments = treatments.replace(f'column = "{column}"\n', f'column = "{column}"\ngroup = "home"\n')
    found = "" if groups == "home" else f'groups = "{groups}"\n'
    return (f'threshold = "auto"\nuniq = true\ntruth = "truth-{share}.csv"\n[alignset]\npath = "a-{share}.csv"\n'
            f'id = "rec_id"\n[targetset]\npath = "b-{share}.parquet"\nid = "rec_id"\n{treatments}\n'
            f'[model]\nkind = "fellegi-sunter"\n{found}[output]\npath = "out-{share}-{groups}/links.parquet"\n')


def calibration(run_dir: str) -> tuple[float, float, float, float]:
    """At the threshold: the precision and recall the model expected of its candidates, and the truth's."""
    with open(os.path.join(run_dir, "report-data.json")) as f:
        histograms = json.load(f)["distance_histograms"]
    pairs, true, expected = histograms["calibration: linked"]
    return (expected / pairs, expected / sum(histograms["calibration: expected"]), true / pairs,
            true / sum(histograms["calibration: true"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--movers", default="0,0.15,0.3")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "out", "movers-bench"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    rows = []
    for share in args.movers.split(","):
        if not os.path.exists(os.path.join(args.data, f"b-{share}.parquet")):
            from bigalign.datasets import person_records

            data = person_records(args.n, seed=0, movers=float(share))
            data.alignset.drop(columns="soc_sec_id").to_csv(os.path.join(args.data, f"a-{share}.csv"), index=False)
            data.targetset.drop(columns="soc_sec_id").to_parquet(os.path.join(args.data, f"b-{share}.parquet"),
                                                                 index=False)
            data.truth.to_csv(os.path.join(args.data, f"truth-{share}.csv"), index=False)
        for groups in ("none", "auto", "home"):
            job = os.path.join(args.data, f"job-{share}-{groups}.toml")
            with open(job, "w") as f:
                f.write(job_text(share, groups))
            seconds, peak = measured_process([sys.executable, "-m", "bigalign", "run", os.path.basename(job),
                                              "--workers", str(args.workers), "--quiet"], args.data)
            run_dir = os.path.join(args.data, f"out-{share}-{groups}")
            with open(os.path.join(run_dir, "summary.json")) as f:
                summary = json.load(f)
            quality, model = summary["quality"], summary["model"]
            expected_p, expected_r, true_p, true_r = calibration(run_dir)
            rows.append({"movers": share, "groups": groups,
                         "comparisons": "; ".join(t["attribute"] for t in model["treatments"]
                                                  if len(t["members"]) > 1) or "(none)",
                         "F1": quality["f1"], "precision": quality["precision"], "recall": quality["recall"],
                         "expected P / true P": f"{expected_p:.4f} / {true_p:.4f}",
                         "expected R / true R": f"{expected_r:.4f} / {true_r:.4f}",
                         "candidates": summary["blocking"]["candidate_pairs"], "model s": summary["seconds"]["model"],
                         "run s": seconds, "peak MiB": peak})
            print(markdown_table(rows[-1:]), flush=True)
    print(f"\n{args.n:,} × {args.n:,} records, {args.workers} workers\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
