"""People who moved between the two sets, and relatives at one address: the learned model with its
treatments apart, with the groups it finds (``[model] groups = "auto"``) and with the address as a group,
against the best weighted distance on the same treatments and Splink on the same fields and blocking,
side by side in one run.

    python -m benchmarks.movers --n 200000 --movers 0,0.15,0.3 --relatives 0,0.5 --data DIR

Records: ``person_records(n, movers=share, relatives=share)`` — a share of the copies whose street
number, street, suburb and postcode are all those of a new address; a share of the targetset's other
people who are relatives of a copied person at their address (twins among them) — without the social
security id (nothing that survives a move). Job: each field its own treatment, as a newcomer writes it
(given name and surname apart: the generator swaps them, so they disagree together too), blocked on
names and birth, and on the address; the learned model with ``threshold = "auto"``. ``distance``: the
same treatments as Nazca's weighted distance (weight 1 each, the date in years), its threshold the best
F1 of a sweep on the truth (a bar no run without a truth can reach). ``splink``: Splink 5 (DuckDB) on the
same fields (its users' comparisons for each) and the same three blocking keys, u from random pairs,
m by EM on the birth date then on the names, the best link per record at p ≥ 0.9 as its users link,
and at the best threshold of a sweep on the truth (``splink swept``); skipped unless installed
(``pip install -e '.[bench]'``). Each run is a whole process (wall time, peak memory of the process
tree); quality against the generator's truth; "calibration": at the threshold, the precision and recall
the model expected of its candidates against the truth's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import pandas as pd

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
# Splink's blocking rules: the job's three keys, their transforms computed as columns (the birth date ISO).
SPLINK_RULES = [("surname_soundex", "birth_year"), ("given_soundex", "date_of_birth"), ("address", "street_number")]


def job_text(data: str, groups: str) -> str:
    """The job on the sets named ``data``: the learned model with treatments apart (``none``), grouped as
    found (``auto``) or the address a group (``home``); or the weighted distance (``distance``), keeping
    each record's best candidate whatever its distance (the threshold is swept afterwards)."""
    treatments = TREATMENTS
    if groups == "home":
        for column in ADDRESS:
            treatments = treatments.replace(f'column = "{column}"\n', f'column = "{column}"\ngroup = "home"\n')
    if groups == "distance":
        treatments = treatments.replace('metric = "temporal"\n',
                                        'metric = "temporal"\nnormalized = true\nscale = 365\n')
        scoring = "threshold = 7.0\n"  # (the weights' sum: every candidate)
        model = ""
    else:
        scoring = 'threshold = "auto"\n'
        model = '[model]\nkind = "fellegi-sunter"\n' + ("" if groups == "home" else f'groups = "{groups}"\n')
    return (f'{scoring}uniq = true\ntruth = "truth-{data}.csv"\n[alignset]\npath = "a-{data}.csv"\n'
            f'id = "rec_id"\n[targetset]\npath = "b-{data}.parquet"\nid = "rec_id"\n{treatments}\n'
            f'{model}[output]\npath = "out-{data}-{groups}/links.parquet"\n')


def calibration(run_dir: str) -> tuple[float, float, float, float]:
    """At the threshold: the precision and recall the model expected of its candidates, and the truth's."""
    with open(os.path.join(run_dir, "report-data.json")) as f:
        histograms = json.load(f)["distance_histograms"]
    pairs, true, expected = histograms["calibration: linked"]
    return (expected / pairs, expected / sum(histograms["calibration: expected"]), true / pairs,
            true / sum(histograms["calibration: true"]))


def swept(links: pd.DataFrame, truth: pd.DataFrame, score: str, higher_is_better: bool) -> dict:
    """The best F1 of ``links`` (one per record) cut at each of their scores, against the ``truth``."""
    true = set(zip(truth["align_id"].astype(str), truth["target_id"].astype(str)))
    ordered = links.sort_values(score, ascending=not higher_is_better, kind="mergesort")
    hits = pd.Series([(a, t) in true for a, t in zip(ordered["align_id"].astype(str),
                                                      ordered["target_id"].astype(str))]).cumsum().to_numpy()
    linked = range(1, len(ordered) + 1)
    best = max(((2 * tp / (n + len(true)), n, tp) for n, tp in zip(linked, hits)), default=(0.0, 0, 0))
    f1, n, tp = best
    return {"F1": f1, "precision": tp / n if n else 0.0, "recall": tp / len(true),
            "threshold": float(ordered[score].iloc[n - 1]) if n else None}


def splink_sets(data_dir: str, data: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two sets as Splink is given them: ISO birth dates, and the job's key transforms as columns (those
    ``benchmarks.compare`` gives its peers, and the given name's Soundex)."""
    from benchmarks.compare import with_helpers
    from bigalign.blocking import KeyBlocking

    frames = [with_helpers(frame) for frame in (
        pd.read_csv(os.path.join(data_dir, f"a-{data}.csv"), dtype=str, keep_default_na=False),
        pd.read_parquet(os.path.join(data_dir, f"b-{data}.parquet")))]
    for frame in frames:
        frame["given_soundex"] = KeyBlocking("given_name", "soundex").values(frame)
    return tuple(f.replace("", None) for f in frames)  # type: ignore[return-value]


def run_splink(data_dir: str, data: str, workers: int) -> pd.DataFrame:
    """Splink 5 on the job's fields and keys: each record's best link with its match probability."""
    import duckdb
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    connection = duckdb.connect()
    connection.execute(f"SET threads TO {workers}")
    db_api = DuckDBAPI(connection=connection)
    a, b = (f.drop(columns="date_of_birth").rename(columns={"date_iso": "date_of_birth"})
            for f in splink_sets(data_dir, data))
    settings = SettingsCreator(
        link_type="link_only", unique_id_column_name="rec_id",
        comparisons=[cl.NameComparison("given_name"), cl.NameComparison("surname"),
                     cl.DateOfBirthComparison("date_of_birth", input_is_string=True), cl.ExactMatch("street_number"),
                     cl.LevenshteinAtThresholds("address", [1, 3]), cl.JaroWinklerAtThresholds("suburb"),
                     cl.ExactMatch("postcode")],
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in SPLINK_RULES])
    linker = Linker([db_api.register(a, table_name="people_a"), db_api.register(b, table_name="people_b")],
                    settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in (("date_of_birth",), ("given_name", "surname")):
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    predictions = linker.inference.predict(threshold_match_probability=0.01).as_pandas_dataframe()
    left_is_a = predictions["source_dataset_l"] == "people_a"
    pairs = pd.DataFrame({"align_id": predictions["rec_id_l"].where(left_is_a, predictions["rec_id_r"]),
                          "target_id": predictions["rec_id_r"].where(left_is_a, predictions["rec_id_l"]),
                          "p": predictions["match_probability"]})
    return (pairs.sort_values(["align_id", "p", "target_id"], ascending=[True, False, True])
            .drop_duplicates("align_id").reset_index(drop=True))


def generate(directory: str, n: int, movers: str, relatives: str) -> str:
    """The sets of ``n`` records with these shares of movers and relatives (once); their name."""
    data = f"{movers}-{relatives}"
    if not os.path.exists(os.path.join(directory, f"b-{data}.parquet")):
        from bigalign.datasets import person_records

        people = person_records(n, seed=0, movers=float(movers), relatives=float(relatives))
        people.alignset.drop(columns="soc_sec_id").to_csv(os.path.join(directory, f"a-{data}.csv"), index=False)
        people.targetset.drop(columns="soc_sec_id").to_parquet(os.path.join(directory, f"b-{data}.parquet"),
                                                               index=False)
        people.truth.to_csv(os.path.join(directory, f"truth-{data}.csv"), index=False)
    return data


def bigalign_rows(directory: str, data: str, workers: int) -> list[dict]:
    """The learned model apart, as found, the address grouped; the weighted distance swept."""
    rows = []
    truth = pd.read_csv(os.path.join(directory, f"truth-{data}.csv"), dtype=str)
    for groups in ("none", "auto", "home", "distance"):
        job = os.path.join(directory, f"job-{data}-{groups}.toml")
        with open(job, "w") as f:
            f.write(job_text(data, groups))
        seconds, peak = measured_process([sys.executable, "-m", "bigalign", "run", os.path.basename(job),
                                          "--workers", str(workers), "--quiet"], directory)
        run_dir = os.path.join(directory, f"out-{data}-{groups}")
        with open(os.path.join(run_dir, "summary.json")) as f:
            summary = json.load(f)
        row = {"scoring": groups, "comparisons": "", "F1": 0.0, "precision": 0.0, "recall": 0.0,
               "expected P / true P": "", "expected R / true R": "",
               "candidates": summary["blocking"]["candidate_pairs"], "run s": seconds, "peak MiB": peak}
        if groups == "distance":
            quality = swept(pd.read_parquet(os.path.join(run_dir, "links.parquet")), truth, "distance", False)
            row.update({k: quality[k] for k in ("F1", "precision", "recall")},
                       comparisons=f"(swept: best at {quality['threshold']:.3f})")
        else:
            model, quality = summary["model"], summary["quality"]
            expected_p, expected_r, true_p, true_r = calibration(run_dir)
            row.update({k.replace("f1", "F1"): quality[k] for k in ("f1", "precision", "recall")},
                       comparisons="; ".join(t["attribute"] for t in model["treatments"]
                                             if len(t["members"]) > 1) or "(none)",
                       **{"expected P / true P": f"{expected_p:.4f} / {true_p:.4f}",
                          "expected R / true R": f"{expected_r:.4f} / {true_r:.4f}"})
        rows.append(row)
    return rows


def splink_rows(directory: str, data: str, workers: int) -> list[dict]:
    """Splink's best link per record at p ≥ 0.9, and at the best threshold of a sweep on the truth."""
    found = os.path.join(directory, f"splink-{data}.parquet")
    seconds, peak = measured_process([sys.executable, "-m", "benchmarks.movers", "--splink", data, "--data",
                                      os.path.abspath(directory), "--workers", str(workers)],
                                     os.path.join(os.path.dirname(__file__), ".."))
    links, truth = pd.read_parquet(found), pd.read_csv(os.path.join(directory, f"truth-{data}.csv"), dtype=str)
    from bigalign.evaluate import link_quality

    at = link_quality(links[links["p"] >= 0.9].astype({"align_id": str, "target_id": str}), truth)
    best = swept(links, truth, "p", True)
    common = {"expected P / true P": "", "expected R / true R": "", "candidates": "", "run s": seconds,
              "peak MiB": peak}
    return [{"scoring": "splink", "comparisons": "(p ≥ 0.9)", "F1": at.f1, "precision": at.precision,
             "recall": at.recall, **common},
            {"scoring": "splink swept", "comparisons": f"(best at p ≥ {best['threshold']:.3f})", "F1": best["F1"],
             "precision": best["precision"], "recall": best["recall"], **common}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--movers", default="0,0.15,0.3")
    parser.add_argument("--relatives", default="0,0.5")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "out", "movers-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--splink", metavar="DATA", help=argparse.SUPPRESS)  # (one Splink run, in its own process)
    args = parser.parse_args()
    if args.splink:
        run_splink(args.data, args.splink, args.workers).to_parquet(
            os.path.join(args.data, f"splink-{args.splink}.parquet"), index=False)
        return
    os.makedirs(args.data, exist_ok=True)
    try:
        import splink  # noqa: F401
        peers = True
    except ImportError:
        peers = False
        print("splink is not installed: its rows are left out (pip install -e '.[bench]')", file=sys.stderr)
    rows = []
    for relatives in args.relatives.split(","):
        for movers in args.movers.split(","):
            data = generate(args.data, args.n, movers, relatives)
            found = bigalign_rows(args.data, data, args.workers) + (
                splink_rows(args.data, data, args.workers) if peers else [])
            found = [{"movers": movers, "relatives": relatives, **row} for row in found]
            print(markdown_table(found), flush=True)
            rows += found
    print(f"\n{args.n:,} × {args.n:,} records, {args.workers} workers\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
