"""From links to entities: connected components on Dask, the chain safeguard, cluster metrics, the job."""

import json

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
    for partitions in (1, 7, 20):
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
    text = text.replace("../out/entities/", str(tmp_path) + "/")
    text = text.replace('path = "' + str(tmp_path) + '/clusters.parquet"', 'path = "clusters.nt"\nformat = "ntriples"')
    text = text.replace('[output]\n', '[output]\nalign_uri = "http://example.org/person/{id}"\n')
    job = tmp_path / "entities.toml"
    job.write_text(text)
    run = bigalign("run", job, "--scheduler", client.scheduler.address)
    summary = json.loads((tmp_path / "summary.json").read_text())
    clusters = summary["clusters"]
    assert clusters["records"] == 6000 and sum(int(k) * v for k, v in clusters["sizes"].items()) == 6000
    assert clusters["quality"]["pair_f1"] >= 0.98 and clusters["quality"]["bcubed_f1"] >= 0.99
    assert f"pairwise precision {clusters['quality']['pair_precision']:.4f}" in run.stdout
    triples = (tmp_path / "clusters.nt").read_text().splitlines()
    assert len(triples) == clusters["linked_records"] - sum(clusters["sizes"][k] for k in clusters["sizes"] if k != "1")
    assert all(t.startswith("<http://example.org/person/a") and "owl#sameAs> <http://example.org/person/a" in t
               for t in triples)
    # the same run written as Parquet, evaluated by the command line
    (tmp_path / "parquet.toml").write_text(text.replace('path = "clusters.nt"\nformat = "ntriples"',
                                                        'path = "clusters.parquet"'))
    bigalign("run", tmp_path / "parquet.toml", "--scheduler", client.scheduler.address)
    evaluated = bigalign("evaluate", tmp_path / "clusters.parquet", tmp_path / "entities.csv")
    assert f"pair_f1: {clusters['quality']['pair_f1']:.4f}" in evaluated.stdout
    report = (tmp_path / "report.html").read_text()
    assert 'id="plot-cluster-sizes"' in report and 'id="largest-clusters"' in report
