"""A deduplication's index: entities whose ids last through batches, merges, splits and removals, and whose
clusters are always those of one full run on the records the index holds."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bigalign.datasets import person_entities
from bigalign.index import Index, build_index, link_batch, update_index
from bigalign.jobs import load_job
from bigalign.runner import run_job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
ENTITIES = (ROOT / "jobs" / "entities.toml").read_text()
TREATMENTS_AND_BLOCKING = ENTITIES[ENTITIES.index("# Names: word order free"):ENTITIES.index("# What agreeing at")]


def people_job(folder: Path, records: str, max_size: int = 4) -> Path:
    """The entities job's treatments and blocking, Nazca's weighted distance, clusters cut at ``max_size``."""
    job = folder / f"job-{Path(records).stem}.toml"
    job.write_text(f'threshold = 3.5\ndedupe = true\n\n[alignset]\npath = "{records}"\nid = "rec_id"\n\n'
                   f'{TREATMENTS_AND_BLOCKING}\n[output]\npath = "run-{Path(records).stem}/links.parquet"\n\n'
                   f'[clusters]\nmax_size = {max_size}\n')
    return job


def partition(ids: pd.Series, clusters: pd.Series) -> set[frozenset]:
    return {frozenset(group) for group in pd.Series(ids.astype(str).to_numpy()).groupby(
        clusters.astype(str).to_numpy()).agg(list)}


def full_run_clusters(folder: Path, records: pd.DataFrame, name: str) -> set[frozenset]:
    records.to_csv(folder / f"{name}.csv", index=False)
    job = load_job(str(people_job(folder, f"{name}.csv")))
    summary = run_job(job, show_progress=False)
    assert summary.clusters["split_clusters"] > 0  # (components over max_size, cut: the hard case)
    clusters = pd.read_parquet(job.clusters.path)
    return partition(clusters["id"], clusters["cluster_id"])


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entities")
    records = person_entities(1600, seed=7).sets["records"]
    return folder, records, full_run_clusters(folder, records, "everyone")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_order_of_batches_gives_the_clusters_of_one_full_run(people, tmp_path, seed, client):
    """Built on a part of the records, then three batches added in an order of their own: the index's
    entities equal a full run's clusters on all the records (with oversized components cut as it cuts them),
    then, after removals, those of a full run on the records left. The first order is built and linked on a
    real cluster (two worker processes), the others in this process."""
    on = client if seed == 0 else None
    _, records, everyone = people
    order = np.random.default_rng(seed).permutation(len(records))
    chunks = np.array_split(order, [400, 800, 1300])
    for i, chunk in enumerate(chunks):
        records.iloc[chunk].to_csv(tmp_path / f"part{i}.csv", index=False)
    job = load_job(str(people_job(tmp_path, "part0.csv")))
    build_index(job, str(tmp_path / "index"), client=on)
    for i in range(1, len(chunks)):
        if i == 2:  # (one batch through `bigalign link --add`, the others through update_index)
            link_batch(job, str(tmp_path / "index"), str(tmp_path / f"part{i}.csv"),
                       output=str(tmp_path / "batch" / "links.parquet"), add=True, client=on)
        else:
            update_index(job, str(tmp_path / "index"), add=str(tmp_path / f"part{i}.csv"))
    index = Index.open(str(tmp_path / "index"))
    entities = index.entities()
    assert len(entities) == len(records) and index.manifest["version"] == len(chunks)
    assert partition(entities["id"], entities["cluster_id"]) == everyone
    assert entities["cluster_id"].is_unique is False and entities["cluster_id"].nunique() == len(everyone)

    gone = records["rec_id"].iloc[order[::7]].astype(str).tolist()
    update_index(job, str(tmp_path / "index"), remove=gone)
    left = Index.open(str(tmp_path / "index")).entities()
    assert sorted(left["id"].astype(str)) == sorted(set(records["rec_id"].astype(str)) - set(gone))
    kept = records[~records["rec_id"].astype(str).isin(gone)]
    assert partition(left["id"], left["cluster_id"]) == full_run_clusters(tmp_path, kept, f"left{seed}")


TINY = """threshold = 0.3
dedupe = true

[alignset]
path = "built.csv"
id = "id"

[[treatments]]
column = "name"
metric = "levenshtein"
normalized = true

[blocking]
kind = "key"
columns = "group"

[output]
path = "out/links.csv"
format = "csv"
"""


def tiny(folder: Path, name: str, rows: dict[str, str]) -> str:
    pd.DataFrame({"id": list(rows), "name": list(rows.values()), "group": "g"}).to_csv(folder / name, index=False)
    return str(folder / name)


def test_entity_ids_last_through_growth_merges_and_splits(tmp_path):
    """Exact ids: a cluster that grows keeps its id; a merge keeps the oldest id (not the smallest); a
    split leaves the id with its namesake and gives the other part a new one; each change is written."""
    (tmp_path / "job.toml").write_text(TINY)
    tiny(tmp_path, "built.csv", {"q5": "aaaa", "p9": "zzzz"})
    job = load_job(str(tmp_path / "job.toml"))
    manifest = build_index(job, str(tmp_path / "index"))
    assert manifest["clusters"] == 2
    index = str(tmp_path / "index")

    def clusters() -> dict[str, str]:
        entities = Index.open(index).entities()
        return dict(zip(entities["id"].astype(str), entities["cluster_id"].astype(str)))

    # grows, and a new cluster: a0 is 0.5 from q5 (no link), b1 0.25 from p9
    summary = link_batch(job, index, tiny(tmp_path, "one.csv", {"a0": "aabb", "b1": "zzzy"}), add=True)
    assert clusters() == {"q5": "q5", "p9": "p9", "a0": "a0", "b1": "p9"}
    assert summary.entities == {"records": 2, "joined": 1, "new_clusters": 1, "changes": {}, "clusters": 3,
                                "added": True, "changes_file": str(tmp_path / "out" / "changes.csv")}
    assert pd.read_parquet(tmp_path / "out" / "clusters.parquet").astype(str).values.tolist() == [
        ["alignset", "a0", "a0"], ["alignset", "b1", "p9"]]
    # m0 bridges q5 (version 1) and a0 (version 2): the merge keeps q5, the older, though "a0" < "q5"
    link_batch(job, index, tiny(tmp_path, "two.csv", {"m0": "aaab"}), add=True)
    assert clusters() == {"q5": "q5", "p9": "p9", "a0": "q5", "b1": "p9", "m0": "q5"}
    changes = pd.read_csv(tmp_path / "out" / "changes.csv", keep_default_na=False)
    assert changes.values.tolist() == [["a0", "a0", "q5", "merged"]]
    # without the bridge, the cluster splits: q5 keeps its id; "a0" was given once, so a0 gets "a0~2"
    manifest = update_index(job, index, remove=["m0"])
    assert clusters() == {"q5": "q5", "p9": "p9", "a0": "a0~2", "b1": "p9"}
    entities = Index.open(index)
    stored = pd.read_parquet(f"{entities.root}/{manifest['entities']}/changes.parquet")
    assert sorted(stored.fillna("").values.tolist()) == [["a0", "q5", "a0~2", "split"], ["m0", "q5", "", "removed"]]
    assert sorted(map(tuple, entities.issued().values.tolist())) == [("a0", 2), ("a0~2", 4), ("p9", 1), ("q5", 1)]


def test_a_batch_not_added_says_what_adding_it_would_do(tmp_path):
    """Without --add (the command line), the batch's links and clusters are written, the index is not
    changed; a lookup in a deduplication's index gives the matched record's entity."""
    (tmp_path / "job.toml").write_text(TINY)
    tiny(tmp_path, "built.csv", {"q5": "aaaa", "a0": "aabb", "p9": "zzzz"})
    build_index(load_job(str(tmp_path / "job.toml")), str(tmp_path / "index"))
    tiny(tmp_path, "new.csv", {"m0": "aaab", "n1": "nnnn"})
    done = subprocess.run([sys.executable, "-m", "bigalign", "link", str(tmp_path / "job.toml"), "--index",
                           str(tmp_path / "index"), "--records", str(tmp_path / "new.csv")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "entities: 1 of the batch's 2 records in existing clusters, 1 new clusters; ids changed: 1 merged" \
        in done.stdout and "(not added: what adding the batch would do)" in done.stdout
    links = pd.read_csv(tmp_path / "out" / "links.csv")
    assert links[["align_id", "target_id"]].values.tolist() == [["a0", "m0"], ["m0", "q5"]]
    assert pd.read_parquet(tmp_path / "out" / "clusters.parquet")[["id", "cluster_id"]].values.tolist() == [
        ["m0", "a0"], ["n1", "n1"]]
    index = Index.open(str(tmp_path / "index"))
    assert index.manifest["version"] == 1 and len(index.entities()) == 3
    best = index.match({"name": "aaaa", "group": "g"}, k=1)
    assert best[["target_id", "cluster_id"]].values.tolist() == [["q5", "q5"]]
    again = index.match({"name": "aabc", "group": "g"}, k=1)  # (the entities read once, for every lookup)
    assert again[["target_id", "cluster_id"]].values.tolist() == [["a0", "a0"]]


def test_an_index_of_several_sets_is_refused(tmp_path):
    from bigalign.errors import JobError

    job = load_job(str(ROOT / "jobs" / "three_sets.toml"))
    with pytest.raises(JobError, match="several sets"):
        build_index(job, str(tmp_path / "index"))
