"""Records of several values: a targetset whose people have 1–5 names each (the name they were born with,
and others: a married or former surname, a nickname for a given name) against the same job on a targetset
of one name each, side by side in one run.

    python -m benchmarks.value_sets --n 1000000 --data DIR --output benchmarks/VALUE_SETS.md

Records: ``person_records(n)`` (the copies' corruptions as always). Each target person gets 1–5 names
(uniformly); each copy is written under one of its person's names, drawn uniformly (then corrupted as the
generator corrupts it). ``several``: the targetset as a row per name (id, name, and the person's birth date,
street and suburb), ``multivalued = true``: one record per person, its name a set; ``one``: the same people
with their first name only (what a query filtered to one label gives). Job: the name (Levenshtein, normalized;
a set's best pair), the birth date (in years), the street (Levenshtein) and the suburb (Jaro-Winkler),
threshold 1.0, blocked on each name's Soundex codes with the year of birth, and on the birth date with the
name's first letter (every name of a set: a key each). Each run is a whole process (wall time, peak memory of
the process tree); quality against the generator's truth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import pandas as pd

from benchmarks import markdown_table, measured_process

JOB = """threshold = 1.0
uniq = true
truth = "truth.csv"
[alignset]
path = "a.csv"
id = "rec_id"
[targetset]
path = "b-{kind}.parquet"
id = "rec_id"
{multivalued}
[[treatments]]
column = "name"
normalizers = ["lunormalize"]
metric = "levenshtein"
normalized = true
[[treatments]]
column = "date_of_birth"
metric = "temporal"
normalized = true
scale = 365
[[treatments]]
column = "address"
normalizers = ["lunormalize", "simplify"]
metric = "levenshtein"
normalized = true
[[treatments]]
column = "suburb"
metric = "jaro_winkler"
[blocking]
kind = "union"
[[blocking.of]]
kind = "key"
columns = ["name", "date_of_birth"]
transform = ["soundex-set", "year"]
[[blocking.of]]
kind = "key"
columns = ["date_of_birth", "name"]
transform = ["date", "prefix:1"]
[output]
path = "out-{kind}/links.parquet"
"""


# What a person's records hold beside the name (one value each).
OTHER_FIELDS = ["date_of_birth", "address", "suburb"]


def generate(directory: str, n: int) -> None:
    """The two targetsets (several names a person, and the first only), the alignset and the truth (once)."""
    if os.path.exists(os.path.join(directory, "b-one.parquet")):
        return
    from bigalign.datasets import person_records

    people = person_records(n, seed=0)
    rng = np.random.default_rng(1)
    target = people.targetset[["rec_id", "given_name", "surname", "date_of_birth", "address", "suburb"]]
    count = rng.integers(1, 6, len(target))  # names a person has
    others = target["surname"].to_numpy(object)[rng.integers(0, len(target), (len(target), 4))]
    nicknames = target["given_name"].to_numpy(object)[rng.integers(0, len(target), (len(target), 4))]
    surname_changes = rng.random((len(target), 4)) < 0.6  # else the given name is another
    given, surname = target["given_name"].to_numpy(object), target["surname"].to_numpy(object)
    names = [[f"{g} {s}"] + [f"{g} {o}" if change else f"{nick} {s}"
                             for o, nick, change in zip(other[:k - 1], nick_row[:k - 1], changes[:k - 1])]
             for g, s, k, other, nick_row, changes in zip(given, surname, count, others, nicknames, surname_changes)]
    rows = pd.DataFrame({"rec_id": np.repeat(target["rec_id"].to_numpy(), count),
                         "name": [x for person in names for x in person],
                         **{c: np.repeat(target[c].to_numpy(), count) for c in OTHER_FIELDS}})
    rows.to_parquet(os.path.join(directory, "b-several.parquet"), index=False)
    target.assign(name=[person[0] for person in names])[["rec_id", "name", *OTHER_FIELDS]].to_parquet(
        os.path.join(directory, "b-one.parquet"), index=False)
    # each copy under one of its person's names: the other name's part replaces the copy's own (corrupted) part
    align = people.alignset[["rec_id", "given_name", "surname", *OTHER_FIELDS]].copy()
    align["name"] = align["given_name"].fillna("") + " " + align["surname"].fillna("")
    where = pd.Series(np.arange(len(target)), index=target["rec_id"].astype(str))
    truth = people.truth.astype(str)
    copies = pd.Series(np.arange(len(align)), index=align["rec_id"].astype(str))[truth["align_id"]].to_numpy()
    persons = where[truth["target_id"]].to_numpy()
    chosen = rng.integers(0, count[persons])
    renamed = chosen > 0
    copies, persons, other = copies[renamed], persons[renamed], chosen[renamed] - 1
    own_given = align["given_name"].fillna("").to_numpy(object)[copies]
    own_surname = align["surname"].fillna("").to_numpy(object)[copies]
    names_now = align["name"].to_numpy(object)
    names_now[copies] = np.where(surname_changes[persons, other],
                                 own_given + " " + others[persons, other],
                                 nicknames[persons, other] + " " + own_surname)
    align["name"] = names_now
    align[["rec_id", "name", *OTHER_FIELDS]].to_csv(os.path.join(directory, "a.csv"), index=False)
    people.truth.to_csv(os.path.join(directory, "truth.csv"), index=False)


def run(directory: str, kind: str, workers: int) -> dict:
    """One job (``several`` names a person, or ``one``) as a whole process: time, memory, quality."""
    job = os.path.join(directory, f"job-{kind}.toml")
    with open(job, "w") as f:
        f.write(JOB.format(kind=kind, multivalued="multivalued = true" if kind == "several" else ""))
    seconds, peak = measured_process([sys.executable, "-m", "bigalign", "run", os.path.basename(job), "--workers",
                                      str(workers), "--quiet"], directory)
    with open(os.path.join(directory, f"out-{kind}", "summary.json")) as f:
        summary = json.load(f)
    quality = summary["quality"]
    target = summary["records"]["targetset"]
    return {"targetset": kind, "rows": target["kept"], "records": target.get("records", target["kept"]),
            "candidate pairs": summary["blocking"]["candidate_pairs"], "seconds": seconds, "peak MiB": peak,
            "precision": quality["precision"], "recall": quality["recall"], "F1": quality["f1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="records per side")
    parser.add_argument("--data", required=True, help="a folder for the data, jobs and runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", help="write the table (Markdown) there")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    generate(args.data, args.n)
    rows = [run(args.data, kind, args.workers) for kind in ("one", "several")]
    rows[1]["time ratio"] = rows[1]["seconds"] / rows[0]["seconds"]
    rows[1]["memory ratio"] = rows[1]["peak MiB"] / rows[0]["peak MiB"]
    rows[0]["time ratio"] = rows[0]["memory ratio"] = 1.0
    table = markdown_table(rows)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(f"# Records of several values\n\n`python -m benchmarks.value_sets --n {args.n} --data DIR "
                    f"--workers {args.workers}`\n\n{(__doc__ or '').split(chr(10) + chr(10), 2)[2]}\n{table}\n")


if __name__ == "__main__":
    main()
