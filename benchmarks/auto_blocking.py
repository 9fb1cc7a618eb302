"""``kind = "auto"`` side by side with hand-written keys, in one run, on two differently generated data sets.

    python -m benchmarks.auto_blocking --n 1000000 --data DIR [--sets people,companies]

``people``: the demo job (its six hand-written composite keys) on ``n`` generated person records a side;
``companies``: ``n`` generated companies a side (:func:`bigalign.datasets.company_records`: other fields,
other noise), a job written for them (names, cities, streets, phones, years, sectors) with four hand-written
keys. Both with the learned model and ``threshold = "auto"``, once with the hand-written keys and once with
``[blocking] kind = "auto"`` (nothing tuned to either set): wall time and peak memory of each
``bigalign run`` (the process tree, from outside), the links' F1 against the truth, the candidate pairs, the
true pair completeness, and what the choice estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from benchmarks import markdown_table, measured_process
from bigalign.jobs import load_job
from bigalign.runner import generate_inputs

ROOT = os.path.join(os.path.dirname(__file__), "..")

COMPANIES = """threshold = "auto"
truth = "{data}/truth.csv"

[alignset]
path = "{data}/companies_a.csv"
id = "rec_id"

[targetset]
path = "{data}/companies_b.parquet"
id = "rec_id"

[[treatments]]
column = "name"
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true
weight = 2

[[treatments]]
column = "city"
metric = "jaro_winkler"

[[treatments]]
column = "street"
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true

[[treatments]]
column = "phone"
metric = "char_levenshtein"
normalized = true

[[treatments]]
column = "founded"
metric = "exact"

[[treatments]]
column = "sector"
metric = "exact"

{blocking}
[model]
kind = "fellegi-sunter"

[output]
path = "{output}"
"""

COMPANY_KEYS = """[blocking]
kind = "union"
[[blocking.of]]
kind = "key"
columns = "phone"
[[blocking.of]]
kind = "key"
columns = ["name", "founded"]
transform = ["soundex-set", "exact"]
[[blocking.of]]
kind = "key"
columns = ["street", "city"]
[[blocking.of]]
kind = "key"
columns = ["name", "city"]
"""


def people_job(n: int, data: str, blocking: str | None, output: str) -> str:
    text = open(os.path.join(ROOT, "jobs", "demo_keys.toml")).read().replace("n = 50000", f"n = {n}")
    text = text.replace("../out/demo/", data + "/").replace(f"{data}/links.parquet", output)
    if blocking is not None:
        text = text[:text.index("[blocking]")] + blocking + "\n" + text[text.index("# What agreeing at each level"):]
    return text


def companies_job(n: int, data: str, blocking: str | None, output: str) -> str:
    if not os.path.exists(os.path.join(data, "companies_b.parquet")):
        from bigalign.datasets import company_records

        sets = company_records(n, seed=0)
        sets.alignset.to_csv(os.path.join(data, "companies_a.csv"), index=False)
        sets.targetset.to_parquet(os.path.join(data, "companies_b.parquet"), index=False)
        sets.truth.to_csv(os.path.join(data, "truth.csv"), index=False)
    return COMPANIES.format(data=data, output=output, blocking=blocking or COMPANY_KEYS)


def compare(name: str, make_job: object, n: int, data: str) -> list[dict]:
    rows = []
    for label, blocking in (("hand-written", None), ('kind = "auto"', '[blocking]\nkind = "auto"\n')):
        tag = "auto" if blocking else "hand"
        output = os.path.join(data, tag, "links.parquet")
        job = os.path.join(data, f"{tag}.toml")
        with open(job, "w") as f:
            f.write(make_job(n, data, blocking, output))  # type: ignore[operator]
        generate_inputs(load_job(job))  # (the demo's people: generated once, before any run is timed)
        seconds, peak = measured_process([sys.executable, "-m", "bigalign", "run", job, "--quiet"], data)
        with open(os.path.join(os.path.dirname(output), "summary.json")) as f:
            summary = json.load(f)
        chosen = summary["blocking"].get("chosen")
        rows.append({"data": name, "blocking": label, "run s": seconds, "peak MiB": peak,
                     "choice s": summary["seconds"].get("choose blocking", 0.0),
                     "candidate pairs": summary["blocking"]["candidate_pairs"],
                     "F1": f"{summary['quality']['f1']:.4f}",
                     "pair completeness": f"{summary['blocking']['pair_completeness']:.4f}",
                     "estimated": f"{chosen['pair_completeness']:.4f}" if chosen else "",
                     "keys": len(chosen["chosen"]) if chosen else ""})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--data", default=os.path.join(ROOT, "out", "auto-bench"))
    parser.add_argument("--sets", default="people,companies")
    args = parser.parse_args()
    rows = []
    for name in args.sets.split(","):
        data = os.path.join(os.path.abspath(args.data), name)
        os.makedirs(data, exist_ok=True)
        rows += compare(name, {"people": people_job, "companies": companies_job}[name], args.n, data)
    print(markdown_table(rows))
    for hand, auto in zip(rows[::2], rows[1::2]):
        print(f"{hand['data']}: auto / hand: time {auto['run s'] / hand['run s']:.2f}×, candidate pairs "
              f"{auto['candidate pairs'] / hand['candidate pairs']:.2f}×, F1 "
              f"{float(auto['F1']) - float(hand['F1']):+.4f}")


if __name__ == "__main__":
    main()
