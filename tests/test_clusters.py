"""From links to entities: connected components on Dask, the chain safeguard, cluster metrics, the job."""

import json
import re

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from test_cli import ROOT, bigalign

from bigalign import cluster_links
from bigalign.evaluate import cluster_quality
from bigalign.io import write_clusters


def graph(kind: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Links of a random graph of ``n`` records: chains, stars, cycles, or all mixed with isolated nodes."""
    if kind == "chains":
        a = np.arange(n - 1)
        a = a[rng.random(n - 1) < 0.95]  # a few breaks: several chains
        b = a + 1
    elif kind == "stars":
        b = np.arange(n)
        a = (b // 25) * 25
    elif kind == "cycles":
        a = np.arange(n)
        b = (a // 40) * 40 + (a % 40 + 1) % 40
    else:  # random edges, many nodes left without one
        a, b = rng.integers(0, n, n // 2), rng.integers(0, n, n // 2)
    keep = a != b
    order = rng.permutation(int(keep.sum()))  # (links in no particular order)
    return pd.DataFrame({"align_id": a[keep][order], "target_id": b[keep][order],
                         "distance": rng.random(int(keep.sum()))})


def scipy_clusters(links: pd.DataFrame, n: int) -> np.ndarray:
    """Each record's cluster id (the smallest record of its component), by scipy."""
    matrix = coo_matrix((np.ones(len(links)), (links["align_id"], links["target_id"])), shape=(n, n))
    _, labels = connected_components(matrix, directed=False)
    smallest = pd.Series(np.arange(n)).groupby(labels).min()
    return smallest.to_numpy()[labels]


def by_record(clusters: pd.DataFrame) -> np.ndarray:
    return clusters.sort_values("id")["cluster_id"].to_numpy()


@pytest.fixture(scope="module", params=[1, 3])
def workers(request):
    with LocalCluster(n_workers=request.param, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster, set_as_default=False) as client:
        yield client


@pytest.mark.parametrize("kind", ["chains", "stars", "cycles", "random"])
def test_components_are_scipy_s_in_memory_and_on_dask_whatever_the_partitions(kind, workers):
    n = 3_000
    links = graph(kind, n, np.random.default_rng(len(kind)))
    expected = scipy_clusters(links, n)
    in_memory = cluster_links(links, ids=np.arange(n), dedupe=True)
    assert (by_record(in_memory) == expected).all()
    assert in_memory.attrs["clusters"]["clusters"] == len(np.unique(expected))
    for partitions in (1, 20):
        on_dask = cluster_links(dd.from_pandas(links, npartitions=partitions, sort=False),
                                ids=dd.from_pandas(pd.Series(np.arange(n)), npartitions=3),
                                dedupe=True, client=workers)
        pd.testing.assert_frame_equal(on_dask, in_memory)


def test_a_chain_of_a_thousand_records_is_one_cluster_and_its_rounds_are_reported(client):
    links = pd.DataFrame({"align_id": np.arange(999), "target_id": np.arange(1, 1000), "distance": 0.1})
    links = links.sample(frac=1.0, random_state=0)  # the chain's links spread over every partition
    clusters = cluster_links(dd.from_pandas(links, npartitions=70, sort=False), ids=np.arange(1200), dedupe=True,
                             client=client)
    assert (clusters.set_index("id")["cluster_id"].loc[np.arange(1000)] == 0).all()
    stats = clusters.attrs["clusters"]
    assert stats["rounds"] == 3  # 70 forests → 9 → 2 → 1, whatever the chain's length
    assert stats["sizes"] == {1: 200, 1000: 1} and stats["clusters"] == 201
    assert stats["largest"][0] == {"cluster_id": "0", "size": 1000, "members": ["0", "1", "10", "100", "101"]}


def two_entities_and_a_chain() -> pd.DataFrame:
    """Two people of 5 records each (every pair strongly linked), and a weak chain between them through
    two records that are neither."""
    strong = [(a, b, 0.05) for group in (range(0, 5), range(10, 15)) for a in group for b in group if a < b]
    chain = [(4, 20, 0.8), (20, 21, 0.85), (21, 10, 0.8)]
    return pd.DataFrame(strong + chain, columns=["align_id", "target_id", "distance"])


@pytest.mark.parametrize("guard", [{"max_size": 5}, {"threshold": 0.5}])
def test_the_safeguards_cut_a_chain_between_two_people(guard, client):
    links = two_entities_and_a_chain()
    assert cluster_links(links, dedupe=True)["cluster_id"].nunique() == 1  # unguarded: one chained cluster of 12
    for frame in (links, dd.from_pandas(links, npartitions=3)):
        clusters = cluster_links(frame, ids=[*range(5), *range(10, 15), 20, 21], dedupe=True, **guard,
                                 client=client if isinstance(frame, dd.DataFrame) else None)
        found = clusters.groupby("cluster_id")["id"].apply(sorted).to_dict()
        assert found[0] == [0, 1, 2, 3, 4] and found[10] == [10, 11, 12, 13, 14]
        if "max_size" in guard:  # cut back from the strongest links: the chain's two records stay a pair
            assert found[20] == [20, 21] and clusters.attrs["clusters"]["split_clusters"] == 1
        else:  # no link under the stricter threshold: each is alone
            assert found[20] == [20] and found[21] == [21]


def test_a_model_s_links_are_clustered_on_their_match_weights():
    links = two_entities_and_a_chain()
    scored = pd.DataFrame({"align_id": links["align_id"], "target_id": links["target_id"],
                           "match_weight": 10 - 10 * links["distance"],
                           "match_probability": 1 - links["distance"]})
    clusters = cluster_links(scored, dedupe=True, max_size=5)
    assert clusters.groupby("cluster_id").size().to_dict() == {0: 5, 10: 5, 20: 2}
    stricter = cluster_links(scored, dedupe=True, threshold=0.9)
    assert stricter.groupby("cluster_id").size().to_dict() == {0: 5, 10: 5}  # (linked records only)


def test_links_between_two_sets_make_clusters_that_span_them():
    links = pd.DataFrame({"align_id": ["a1", "a2", "a3"], "target_id": ["t1", "t1", "t9"], "distance": 0.1})
    clusters = cluster_links(links, ids={"alignset": ["a1", "a2", "a3", "a4"], "targetset": ["t1", "t9", "t5"]})
    assert clusters.values.tolist() == [
        ["alignset", "a1", "alignset:a1"], ["alignset", "a2", "alignset:a1"], ["targetset", "t1", "alignset:a1"],
        ["alignset", "a3", "alignset:a3"], ["targetset", "t9", "alignset:a3"],
        ["alignset", "a4", "alignset:a4"], ["targetset", "t5", "targetset:t5"]]


def test_cluster_metrics_on_a_worked_example():
    clusters = pd.DataFrame({"id": list("abcdef"), "cluster_id": ["a", "a", "a", "d", "d", "f"]})
    entities = pd.DataFrame({"id": list("abcdef"), "entity": [1, 1, 2, 2, 2, 3]})
    q = cluster_quality(clusters, entities)
    # within-cluster pairs ab ac bc de (4), true pairs ab cd ce de (4), both: ab de
    assert (q.pair_precision, q.pair_recall) == (0.5, 0.5)
    # B-cubed precision: a, b 2/3; c 1/3; d, e, f 1 → 14/3 over 6; recall: a, b 1; c 1/3; d, e 2/3; f 1 → the same
    assert q.bcubed_precision == pytest.approx(7 / 9) and q.bcubed_recall == pytest.approx(7 / 9)
    assert (q.records, q.clusters, q.entities) == (6, 3, 3)


def test_bad_arguments_are_named():
    links = two_entities_and_a_chain()
    with pytest.raises(ValueError, match="max_size must be an integer of at least 2"):
        cluster_links(links, dedupe=True, max_size=1)
    with pytest.raises(ValueError, match="links need align_id, target_id and distance"):
        cluster_links(links.drop(columns="distance"), dedupe=True)
    with pytest.raises(ValueError, match=r"ids: \['people'\] are not among the sets"):
        cluster_links(links, ids={"people": [1]}, dedupe=True)


def test_an_entities_job_deduplicates_into_clusters_and_is_evaluated(tmp_path, client):
    text = (ROOT / "jobs/entities.toml").read_text().replace("n = 50000", "n = 6000")
    job = tmp_path / "entities.toml"
    job.write_text(text.replace("../out/entities/", str(tmp_path) + "/"))
    alone = bigalign("run", job)  # (small inputs: no cluster, Dask's threads in this process)
    assert "no cluster: Dask's threads in this process" in alone.stderr
    found_alone = [pd.read_parquet(tmp_path / name) for name in ("links.parquet", "clusters.parquet")]
    run = bigalign("run", job, "--scheduler", client.scheduler.address)
    for name, expected in zip(("links.parquet", "clusters.parquet"), found_alone):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / name), expected)
    summary = json.loads((tmp_path / "summary.json").read_text())
    clusters = summary["clusters"]
    assert clusters["records"] == 6000 and sum(int(k) * v for k, v in clusters["sizes"].items()) == 6000
    assert clusters["quality"]["pair_f1"] >= 0.98 and clusters["quality"]["bcubed_f1"] >= 0.99
    assert f"pairwise precision {clusters['quality']['pair_precision']:.4f}" in run.stdout
    evaluated = bigalign("evaluate", tmp_path / "clusters.parquet", tmp_path / "entities.csv")
    assert f"pair_f1: {clusters['quality']['pair_f1']:.4f}" in evaluated.stdout
    report = (tmp_path / "report.html").read_text()
    assert 'id="plot-cluster-sizes"' in report and 'id="largest-clusters"' in report
    # as N-Triples: each record of a cluster of two or more, but its first, the same as the first
    found = pd.read_parquet(tmp_path / "clusters.parquet")
    write_clusters(found, str(tmp_path / "clusters.nt"), "ntriples", {"alignset": "http://example.org/person/{id}"})
    triples = (tmp_path / "clusters.nt").read_text().splitlines()
    assert len(triples) == (found["id"] != found["cluster_id"]).sum()
    assert len(triples) == clusters["linked_records"] - sum(v for k, v in clusters["sizes"].items() if k != "1")
    some = found[found["id"] != found["cluster_id"]].iloc[0]
    assert (f"<http://example.org/person/{some['id']}> <http://www.w3.org/2002/07/owl#sameAs> "
            f"<http://example.org/person/{some['cluster_id']}> .") in triples


def three_set_job(directory, link_type="link_and_dedupe", n=4000):
    text = (ROOT / "jobs/three_sets.toml").read_text().replace("n = 60000", f"n = {n}")
    text = text.replace("../out/three_sets/", str(directory) + "/").replace("link_and_dedupe", link_type)
    text = text.replace(f'"{directory}/links.parquet"', f'"{directory}/links-{link_type}.parquet"')
    text = text.replace(f'"{directory}/clusters.parquet"', f'"{directory}/clusters-{link_type}.parquet"')
    job = directory / f"{link_type}.toml"
    job.write_text(text)
    return job


def test_three_sets_are_linked_and_deduplicated_into_entities_that_span_them(tmp_path, client):
    run = bigalign("run", three_set_job(tmp_path), "--scheduler", client.scheduler.address)
    for name in ("census", "parish", "tax"):
        assert f"{name}: " in run.stdout and "rows read" in run.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quality"]["f1"] >= 0.97 and summary["blocking"]["pair_completeness"] >= 0.97
    quality = summary["clusters"]["quality"]
    assert quality["pair_f1"] >= 0.98 and quality["bcubed_f1"] >= 0.99 and quality["records"] == 4000
    links = pd.read_parquet(tmp_path / "links-link_and_dedupe.parquet")
    assert list(links.columns[:4]) == ["align_set", "align_id", "target_set", "target_id"]
    assert set(links["align_set"]) == {"census", "parish", "tax"}
    # each pair once, the smaller (set, id) first
    order = {"census": 0, "parish": 1, "tax": 2}
    set_a, set_b = links["align_set"].map(order), links["target_set"].map(order)
    assert ((set_a < set_b) | ((set_a == set_b) & (links["align_id"] < links["target_id"]))).all()
    assert not links.duplicated(["align_set", "align_id", "target_set", "target_id"]).any()
    clusters = pd.read_parquet(tmp_path / "clusters-link_and_dedupe.parquet")
    assert len(clusters) == 4000 and clusters["set"].value_counts().to_dict() == {
        s: r["kept"] for s, r in summary["records"].items()}
    spanning = clusters.groupby("cluster_id")["set"].nunique()
    assert (spanning == 3).sum() > 100
    assert clusters["cluster_id"].str.match(r"^(census|parish|tax):[cpt]\d+$").all()
    # the other link types on the same sets: the candidates split exactly between them
    from bigalign.jobs import load_job
    from bigalign.runner import run_job

    found = {}
    for link_type in ("link_only", "dedupe_only"):
        done = run_job(load_job(str(three_set_job(tmp_path, link_type))), client=client, show_progress=False)
        found[link_type] = (done.blocking["candidate_pairs"], pd.read_parquet(tmp_path / f"links-{link_type}.parquet"))
        # each stage's CPU time, of this process and the workers' processes
        assert set(done.cpu_seconds) <= set(done.seconds) and done.cpu_seconds["candidates"] > 0
    assert summary["blocking"]["candidate_pairs"] == found["link_only"][0] + found["dedupe_only"][0]
    across, within = found["link_only"][1], found["dedupe_only"][1]
    assert (across["align_set"] != across["target_set"]).all() and (within["align_set"] == within["target_set"]).all()
    assert len(across) > 0 and len(within) > 0


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace('[[sets]]\nname = "tax"', '[[sets]]\nname = "parish"'), "sets[2].name: must be distinct"),
    (lambda t: t.replace("link_and_dedupe", "link_all"), "link_type: must be one of"),
    (lambda t: t.replace('link_type = "', 'uniq = true\nlink_type = "'), "uniq: deduplication and several sets"),
    (lambda t: t + '\n[alignset]\npath = "x.csv"\n', "alignset: a job with [[sets]] names all its sets"),
])
def test_several_sets_jobs_are_checked(tmp_path, change, message):
    from bigalign.errors import JobError
    from bigalign.jobs import load_job

    job = three_set_job(tmp_path)
    job.write_text(change(job.read_text()))
    with pytest.raises(JobError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_job(str(job))


def test_align_sets_links_three_sets_in_python_and_cluster_links_makes_their_entities(client):
    from bigalign import align_sets
    from bigalign.blocking import KeyBlocking, UnionBlocking
    from bigalign.datasets import person_entities

    people = person_entities(3000, seed=2, sets=("a", "b", "c"))
    treatments = [{"column": ["given_name", "surname"], "normalizers": ["lunormalize", "simplify"],
                   "metric": "levenshtein", "normalized": True, "weight": 3},
                  {"column": "date_of_birth", "metric": "temporal", "normalized": True, "scale": 365, "weight": 2},
                  {"column": "soc_sec_id", "metric": "char_levenshtein", "normalized": True, "weight": 2}]
    blocking = UnionBlocking([KeyBlocking("soc_sec_id"), KeyBlocking(["date_of_birth", "surname"], ["date", "exact"])])
    links = align_sets(people.sets, treatments, 1.5, blocking=blocking, client=client)
    assert list(links.columns) == ["align_set", "align_id", "target_set", "target_id", "distance"]
    across = align_sets(people.sets, treatments, 1.5, blocking=blocking, link_type="link_only", client=client)
    assert len(across) == (links["align_set"] != links["target_set"]).sum() and len(across) > 0
    names = list(people.sets)
    clusters = cluster_links(links, ids={s: people.sets[s]["rec_id"] for s in names}, dedupe=True, sets=names,
                             max_size=8)
    quality = cluster_quality(clusters, people.entities)
    assert quality.records == 3000 and quality.pair_f1 >= 0.9 and quality.bcubed_f1 >= 0.95
    with pytest.raises(ValueError, match="link_type: must be one of"):
        align_sets(people.sets, treatments, 1.5, link_type="both")


def test_a_truth_without_the_columns_it_needs_is_named(tmp_path):
    from bigalign.errors import InputError
    from bigalign.jobs import load_job
    from bigalign.runner import read_truth

    job = tmp_path / "entities.toml"
    job.write_text((ROOT / "jobs/entities.toml").read_text().replace("../out/entities/", str(tmp_path) + "/"))
    for header, missing in (("record,entity", "missing ['id']"), ("align_id,other", "missing ['target_id']")):
        (tmp_path / "entities.csv").write_text(header + "\na1,1\n")
        with pytest.raises(InputError, match=r"entities.csv: .*" + re.escape(missing)):
            read_truth(load_job(str(job)))
    (tmp_path / "entities.csv").write_text("set,id,entity\nalignset,a1,1\nalignset,a2,1\nalignset,a3,2\n")
    pairs, entities = read_truth(load_job(str(job)))
    assert pairs.values.tolist() == [["a1", "a2"]] and len(entities) == 3


def test_the_true_pairs_of_entities_are_each_pair_of_one_entity_once():
    from bigalign.runner import entity_pairs

    first, second = entity_pairs(np.array(["x", "y", "x", None, "x", "z", None, "y"], dtype=object))
    assert sorted(zip(first.tolist(), second.tolist())) == [(0, 2), (0, 4), (1, 7), (2, 4)]  # (no entity: none)
    big = np.array([7] * 50 + [8] * 3, dtype=object)
    first, second = entity_pairs(big)
    assert len(first) == 50 * 49 // 2 + 3 and (first < 50).sum() == 50 * 49 // 2 and (first != second).all()
