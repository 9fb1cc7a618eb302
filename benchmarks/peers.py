"""One tool on one generated data set, run in its own process by ``benchmarks.compare``.

    python -m benchmarks.peers TOOL DATA_DIR RESULT_JSON [--workers N]

TOOL is ``bigalign`` (the demo job: its learned model and automatic threshold),
``bigalign_distance`` (the demo job with Nazca's weighted distance and a
threshold set by hand), ``splink`` (blocking rules as its users write them),
``splink_keys`` (Splink on bigalign's blocking keys), ``recordlinkage`` or
``nazca``. DATA_DIR holds ``people_a.csv``, ``people_b.csv`` and ``truth.csv``
(``benchmarks.compare`` writes them). Each tool writes its best link per align
record; the result holds the links' quality and, where the tool exposes them,
its candidate pairs and the time its model took to fit. Peers get dates already in ISO form and the Soundex codes
of bigalign's keys ready-made; bigalign reads the raw mixed formats itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import pandas as pd

TOOLS = ("bigalign", "bigalign_distance", "splink", "splink_keys", "recordlinkage", "nazca")
# Deduplication into entities (benchmarks.entities): DATA_DIR holds people.csv and entities.csv.
ENTITY_TOOLS = ("bigalign_entities", "splink_entities")
# The keys of jobs/demo_keys.toml's blocking, on the columns benchmarks.compare writes for peers
# (dates in ISO form, Soundex codes computed as bigalign computes them).
SHARED_KEYS = [("soc_sec_id",), ("date_of_birth", "address"), ("date_of_birth", "suburb"), ("address", "street_number"),
               ("names_soundex_set", "street_number"), ("surname_soundex", "birth_year", "street_number")]


def _quality(links: pd.DataFrame, truth: pd.DataFrame) -> dict:
    from bigalign.evaluate import link_quality

    q = link_quality(links.astype({"align_id": str, "target_id": str}), truth)
    return {"links": q.links, "precision": q.precision, "recall": q.recall, "f1": q.f1}


def _best(pairs: pd.DataFrame, score: str, higher_is_better: bool) -> pd.DataFrame:
    ordered = pairs.sort_values(["align_id", score, "target_id"], ascending=[True, not higher_is_better, True],
                                kind="mergesort")
    return ordered.drop_duplicates("align_id")[["align_id", "target_id"]]


def run_bigalign(data: str, workers: int, learned: bool = True) -> dict:
    """As a user runs it: ``jobs/demo_keys.toml`` on the CSV files (staged on the
    workers, dates read raw), on a local cluster of ``workers`` processes:
    its Fellegi–Sunter model and automatic threshold, or (``learned=False``)
    Nazca's weighted distance at the threshold the demo had by hand, 3.5."""
    import dataclasses

    from bigalign.jobs import OutputSpec, load_job
    from bigalign.runner import run_job
    from bigalign.spec import make_alignment

    job = load_job(os.path.join(os.path.dirname(__file__), "..", "jobs", "demo_keys.toml"))
    job = dataclasses.replace(
        job, generate=None, truth=os.path.join(data, "truth.csv"),
        alignset=dataclasses.replace(job.alignset, path=os.path.join(data, "people_a.csv"), format="csv"),
        targetset=dataclasses.replace(job.targetset, path=os.path.join(data, "people_b.csv"), format="csv"),
        output=OutputSpec(path=os.path.join(data, "bigalign", "links.parquet")),
        cluster=dataclasses.replace(job.cluster, workers=workers, dashboard_address="127.0.0.1:0"))
    if not learned:
        job = dataclasses.replace(job, alignment=make_alignment(job.alignment.treatments,
                                                                blocking=job.alignment.blocking, threshold=3.5))
    summary = run_job(job, show_progress=False)
    print("\n".join(summary.lines()), file=sys.stderr)
    scoring = ("Fellegi–Sunter learned by EM, threshold 'auto'" if learned
               else "weighted distance, threshold 3.5 set by hand")
    # The run scores its links against the truth itself, with the same function as _quality.
    return {"configuration": f"jobs/demo_keys.toml: union of 6 composite keys; 6 treatments; {scoring}; "
                             "`bigalign run` on the CSVs",
            "fit s": summary.seconds.get("model"),
            "candidate_pairs": summary.blocking["candidate_pairs"],
            "pair_completeness": summary.blocking["pair_completeness"],
            **{k: summary.quality[k] for k in ("links", "precision", "recall", "f1")}}


def run_bigalign_entities(data: str, workers: int) -> dict:
    """``jobs/entities.toml`` as a user runs it: the deduplication, then its
    clusters (max_size 20), scored against each record's entity."""
    import dataclasses

    from bigalign.jobs import ClustersSpec, OutputSpec, load_job
    from bigalign.runner import run_job

    job = load_job(os.path.join(os.path.dirname(__file__), "..", "jobs", "entities.toml"))
    job = dataclasses.replace(
        job, generate=None, truth=os.path.join(data, "entities.csv"),
        alignset=dataclasses.replace(job.alignset, path=os.path.join(data, "people.csv"), format="csv"),
        output=OutputSpec(path=os.path.join(data, "bigalign", "links.parquet")),
        clusters=dataclasses.replace(job.clusters, path=os.path.join(data, "bigalign", "clusters.parquet")),
        cluster=dataclasses.replace(job.cluster, workers=workers, dashboard_address="127.0.0.1:0"))
    assert isinstance(job.clusters, ClustersSpec)
    summary = run_job(job, show_progress=False)
    print("\n".join(summary.lines()), file=sys.stderr)
    quality = summary.clusters["quality"]
    return {"configuration": "jobs/entities.toml: the demo's 6 keys and 6 treatments, Fellegi–Sunter by EM, "
                             "threshold 'auto'; connected components, max_size 20",
            "fit s": summary.seconds.get("model"), "links": summary.links, "clusters": quality["clusters"],
            **{k: quality[k] for k in ("pair_precision", "pair_recall", "pair_f1", "bcubed_f1")}}


def run_splink_entities(people: pd.DataFrame, entities: pd.DataFrame, workers: int) -> dict:
    """Splink's ``dedupe_only`` on bigalign's keys, then its
    ``cluster_pairwise_predictions_at_threshold`` at the links' threshold."""
    from bigalign.evaluate import cluster_quality

    linker, predictions, fit_seconds = _splink_linker([people], "dedupe_only", workers, SHARED_KEYS,
                                                      [("soc_sec_id",), ("date_of_birth", "suburb")])
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.9).as_pandas_dataframe()
    found = pd.DataFrame({"id": clusters["rec_id"].astype(str), "cluster_id": clusters["cluster_id"].astype(str)})
    quality = cluster_quality(found, entities).as_dict()
    return {"configuration": "DuckDB dedupe_only; bigalign's 6 keys as rules; EM on id, on dob+suburb; p ≥ 0.9; "
                             "cluster_pairwise_predictions_at_threshold 0.9",
            "fit s": fit_seconds, "links": len(predictions.as_pandas_dataframe()), "clusters": quality["clusters"],
            **{k: quality[k] for k in ("pair_precision", "pair_recall", "pair_f1", "bcubed_f1")}}


def _splink_linker(frames: list[pd.DataFrame], link_type: str, workers: int, rules: list,
                   training: list) -> tuple:
    """A Splink linker trained on ``frames`` (its comparisons as its users write them), its
    predictions at p ≥ 0.9, and the seconds its training took."""
    import duckdb
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    connection = duckdb.connect()
    connection.execute(f"SET threads TO {workers}")
    db_api = DuckDBAPI(connection=connection)
    frames = [f.drop(columns="date_of_birth").rename(columns={"date_iso": "date_of_birth"}) for f in frames]
    names = ("people_a", "people_b")[:len(frames)]
    tables = [db_api.register(f, table_name=name) for f, name in zip(frames, names)]
    settings = SettingsCreator(
        link_type=link_type, unique_id_column_name="rec_id",
        comparisons=[cl.NameComparison("given_name"), cl.NameComparison("surname"),
                     cl.DateOfBirthComparison("date_of_birth", input_is_string=True),
                     cl.LevenshteinAtThresholds("address", [1, 3]), cl.JaroWinklerAtThresholds("suburb"),
                     cl.ExactMatch("postcode"), cl.LevenshteinAtThresholds("soc_sec_id", [1, 2])],
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in rules],
    )
    linker = Linker(tables if len(tables) > 1 else tables[0], settings)
    clock = time.perf_counter()
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    for rule in training:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
    fit_seconds = time.perf_counter() - clock
    return linker, linker.inference.predict(threshold_match_probability=0.9), fit_seconds


def _splink(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, workers: int, rules: list, training: list,
            configuration: str) -> dict:
    _, predicted, fit_seconds = _splink_linker([a, b], "link_only", workers, rules, training)
    predictions = predicted.as_pandas_dataframe()
    left_is_a = predictions["source_dataset_l"] == "people_a"
    pairs = pd.DataFrame({"align_id": predictions["rec_id_l"].where(left_is_a, predictions["rec_id_r"]),
                          "target_id": predictions["rec_id_r"].where(left_is_a, predictions["rec_id_l"]),
                          "p": predictions["match_probability"]})
    return {"configuration": configuration, "fit s": fit_seconds, "candidate_pairs": None, "pair_completeness": None,
            **_quality(_best(pairs, "p", True), truth)}


def run_splink(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, workers: int) -> dict:
    """Splink as its users configure it: blocking rules on names, dob, postcode and id."""
    return _splink(a, b, truth, workers,
                   [("given_name", "surname"), ("surname", "postcode"), ("date_of_birth",), ("soc_sec_id",)],
                   [("date_of_birth",), ("given_name", "surname")],
                   "DuckDB; rules given+surname, surname+postcode, dob, id; EM on dob, on names; p ≥ 0.9; "
                   "best per record")


def run_splink_keys(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, workers: int) -> dict:
    """Splink on bigalign's blocking keys: the engines compared, not the blockings."""
    return _splink(a, b, truth, workers, SHARED_KEYS, [("soc_sec_id",), ("date_of_birth", "suburb")],
                   "DuckDB; bigalign's 6 keys as rules; EM on id, on dob+suburb; p ≥ 0.9; best per record")


def run_recordlinkage(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, workers: int) -> dict:
    import recordlinkage

    a = a.set_index("rec_id")
    b = b.set_index("rec_id")
    indexer = recordlinkage.Index()
    for key in SHARED_KEYS:
        indexer.block([{"date_of_birth": "date_iso"}.get(c, c) for c in key])
    candidates = indexer.index(a, b)
    compare = recordlinkage.Compare(n_jobs=workers)
    compare.string("given_name", "given_name", method="jarowinkler", label="given_name")
    compare.string("surname", "surname", method="jarowinkler", label="surname")
    compare.exact("date_iso", "date_iso", label="date_of_birth")
    compare.string("address", "address", method="levenshtein", label="address")
    compare.string("suburb", "suburb", method="jarowinkler", label="suburb")
    compare.exact("postcode", "postcode", label="postcode")
    compare.string("soc_sec_id", "soc_sec_id", method="levenshtein", label="soc_sec_id")
    features = compare.compute(candidates, a, b)
    score = features.sum(axis=1)
    pairs = pd.DataFrame({"align_id": candidates.get_level_values(0), "target_id": candidates.get_level_values(1),
                          "score": score.to_numpy()})
    kept = set(zip(truth["align_id"], truth["target_id"])) & set(zip(pairs["align_id"], pairs["target_id"]))
    return {"configuration": "bigalign's 6 keys as blocks; 7 comparisons; sum ≥ 5",
            "candidate_pairs": len(candidates), "pair_completeness": len(kept) / len(truth),
            **_quality(_best(pairs[pairs["score"] >= 5], "score", True), truth)}


def run_nazca(a: pd.DataFrame, b: pd.DataFrame, truth: pd.DataFrame, workers: int) -> dict:
    from nazca.rl.aligner import BaseAligner
    from nazca.rl.blocking import MinHashingBlocking
    from nazca.utils.distances import LevenshteinProcessing

    def records(frame: pd.DataFrame) -> list[list]:
        names = (frame["given_name"].fillna("") + " " + frame["surname"].fillna("")).str.strip()
        return [[i, n, d or ""] for i, n, d in zip(frame["rec_id"], names, frame["date_iso"].fillna(""))]

    aligner = BaseAligner(threshold=4, processings=(LevenshteinProcessing(1, 1), LevenshteinProcessing(2, 2)))
    aligner.register_blocking(MinHashingBlocking(1, 1, threshold=0.4, repeatable=True))
    pairs = [(r[0], t[0]) for r, t, _ in aligner.get_aligned_pairs(records(a), records(b), unique=True)]
    links = pd.DataFrame(pairs, columns=["align_id", "target_id"])
    return {"configuration": "MinHashingBlocking on names; Levenshtein names + dob; threshold 4; unique",
            "candidate_pairs": None, "pair_completeness": None, **_quality(links, truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool", choices=TOOLS + ENTITY_TOOLS)
    parser.add_argument("data")
    parser.add_argument("result")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    read = lambda name: pd.read_csv(os.path.join(args.data, name), dtype=str, keep_default_na=False)  # noqa: E731
    if args.tool.startswith("bigalign"):  # (as the `bigalign` command starts)
        from bigalign.malloc import one_malloc_arena

        one_malloc_arena()
    if args.tool in ("bigalign", "bigalign_distance"):
        result = run_bigalign(args.data, args.workers, learned=args.tool == "bigalign")
    elif args.tool == "bigalign_entities":
        result = run_bigalign_entities(args.data, args.workers)
    elif args.tool == "splink_entities":
        result = run_splink_entities(read("people.csv").replace("", None), read("entities.csv"), args.workers)
    else:
        a, b, truth = read("people_a.csv"), read("people_b.csv"), read("truth.csv")
        a, b = a.replace("", None), b.replace("", None)
        result = globals()[f"run_{args.tool}"](a, b, truth, args.workers)
    with open(args.result, "w") as f:
        json.dump(result, f)
    if args.tool.startswith("bigalign"):  # (as the `bigalign` command ends)
        from bigalign.cli import exit_now

        exit_now(0)


if __name__ == "__main__":
    sys.exit(main())
