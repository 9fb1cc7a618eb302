"""The Dask pipeline on real clusters: exactness, determinism, quality."""

import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import bigalign
from bigalign.blocking import KDTreeBlocking, KeyBlocking, MinHashLSHBlocking, MiniBatchKMeansBlocking, UnionBlocking
from bigalign.cluster import NoCluster
from bigalign.datasets import person_records
from bigalign.evaluate import blocking_quality, link_quality
from bigalign.pipeline import RecordError, pair_hashes, run_alignment, to_dask
from bigalign.spec import make_alignment

PERSON_TREATMENTS = [
    {"column": ["given_name", "surname"], "metric": "levenshtein", "normalized": True, "weight": 3,
     "normalizers": ["lunormalize", "simplify"]},
    {"column": "date_of_birth", "metric": "temporal", "normalized": True, "scale": 365, "weight": 2},
    {"column": ["street_number", "address"], "metric": "levenshtein", "normalized": True},
    {"column": "suburb", "metric": "jaro_winkler"},
    {"column": "postcode", "metric": "exact", "weight": 0.5},
    {"column": "soc_sec_id", "metric": "char_levenshtein", "normalized": True, "weight": 2},
]


def person_blocking():
    return UnionBlocking([MinHashLSHBlocking(["given_name", "surname"], threshold=0.6),
                          KeyBlocking("date_of_birth", "date"), KeyBlocking("soc_sec_id")])


def places(n, seed):
    rng = np.random.default_rng(seed)
    lat, lon = rng.uniform(-89, 89, n), rng.uniform(-180, 180, n)
    lat[:20], lon[:20] = 89.95, rng.uniform(-180, 180, 20)  # a crowd at the pole
    lon[20:40] = 179.99  # and on the antimeridian
    a = pd.DataFrame({"id": [f"a{i}" for i in range(n)], "latitude": lat, "longitude": lon})
    b = pd.DataFrame({"id": [f"b{i}" for i in range(n)],
                      "latitude": np.clip(lat + rng.normal(0, 0.05, n), -90, 90),
                      "longitude": (lon + rng.normal(0, 0.05, n) + 180) % 360 - 180})
    return a, b


def test_exact_kdtree_blocking_equals_brute_force(client):
    a, b = places(1500, 0)
    treatments = [bigalign.Treatment(("latitude", "longitude"), "geographical", units="km")]
    for uniq in (False, True):
        brute = bigalign.align(a, b, treatments, 8.0, uniq=uniq)
        blocked = bigalign.align(a, b, treatments, 8.0, uniq=uniq, blocking=KDTreeBlocking(radius_km=8),
                                 client=client, npartitions=5)
        assert len(brute) > 1000
        pd.testing.assert_frame_equal(blocked, brute)


def test_kmeans_blocking_with_radius_is_exact(client):
    rng = np.random.default_rng(3)
    a = pd.DataFrame({"id": range(3000), "x": rng.uniform(0, 100, 3000), "y": rng.uniform(0, 100, 3000)})
    b = a.assign(id=a.id + 10_000, x=a.x + rng.normal(0, 0.3, 3000), y=a.y + rng.normal(0, 0.3, 3000))
    treatments = [bigalign.Treatment(("x", "y"), "euclidean")]
    brute = bigalign.align(a, b, treatments, 1.0, uniq=False)
    blocking = MiniBatchKMeansBlocking(["x", "y"], n_clusters=30, overlap=8, radius=1.0)
    blocked = bigalign.align(a, b, treatments, 1.0, uniq=False, blocking=blocking, client=client, npartitions=4)
    pd.testing.assert_frame_equal(blocked, brute)


@pytest.fixture(scope="module")
def people():
    return person_records(3000, seed=7)


def test_same_links_whatever_the_partitions_and_workers(client, people):
    def run(c, npartitions):
        return bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, 3.5,
                              blocking=person_blocking(), client=c, npartitions=npartitions)

    one = run(client, 1)
    sixteen = run(client, 16)
    assert len(one) > 2000
    pd.testing.assert_frame_equal(one, sixteen)
    with LocalCluster(n_workers=3, threads_per_worker=2, host="127.0.0.1", dashboard_address=":0") as cluster, \
            Client(cluster) as three:
        pd.testing.assert_frame_equal(run(three, 7), one)
    # (one worker, as a thread of this process: a worker process is the session's cluster's)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as single:
        pd.testing.assert_frame_equal(run(single, 3), one)
    # no cluster: Dask's threads in this process, one or three
    for threads, npartitions in ((1, 5), (3, 2)):
        none = NoCluster(threads)
        pd.testing.assert_frame_equal(run(none, npartitions), one)
        none.close()


def test_each_candidate_pair_scored_once_across_a_union(client, people):
    run = run_alignment(client, to_dask(people.alignset, None, "a", 4), to_dask(people.targetset, None, "t", 4),
                        make_alignment(PERSON_TREATMENTS, blocking=person_blocking(), threshold=np.inf, uniq=False))
    pairs = run.links[["align_id", "target_id"]]
    assert not pairs.duplicated().any()
    assert run.stats.candidate_pairs == len(pairs) < run.stats.block_pairs


def test_deduplication_of_one_set(client):
    data = person_records(800, seed=3)
    # One set holding both sides: its duplicates are the true pairs.
    both = pd.concat([data.alignset, data.targetset], ignore_index=True)
    brute = bigalign.align(both, both, PERSON_TREATMENTS, 3.5, uniq=False)
    blocked = bigalign.align(both, both, PERSON_TREATMENTS, 3.5, uniq=False, blocking=person_blocking(),
                             client=client, npartitions=3)
    assert (brute.align_id < brute.target_id).all() and not (brute.align_id == brute.target_id).any()
    assert len(blocked) > 600
    # The blocking may miss a few pairs, never invent or repeat one.
    merged = blocked.merge(brute, how="left", indicator=True)
    assert (merged["_merge"] == "both").all() and not blocked.duplicated(["align_id", "target_id"]).any()
    # ... and keeps nearly all the true pairs that brute force finds
    found = [link_quality(links.astype(str), data.truth.astype(str), unordered=True).true_positives
             for links in (blocked, brute)]
    assert found[1] == len(data.truth) and found[0] >= 0.98 * found[1]
    with pytest.raises(ValueError, match="uniq: .* uniq must be false"):
        bigalign.align(both, both, PERSON_TREATMENTS, 3.5)


def test_a_deduplication_pairs_each_block_with_itself_once(client):
    """One set keyed alike on both sides (encoded and shuffled once): its candidates are exactly the
    unordered pairs of records that share a key, whatever the partitions."""
    data = person_records(1500, seed=5)
    both = pd.concat([data.alignset, data.targetset], ignore_index=True)
    blocking = UnionBlocking([KeyBlocking("date_of_birth", "date"), KeyBlocking("soc_sec_id")])
    expected = set()
    keys = blocking.keys(both, "align")
    for slot in range(keys.shape[1]):
        for rows in pd.Series(range(len(both))).groupby(keys[:, slot]).groups.values():
            if keys[rows[0], slot]:
                ids = sorted(both["rec_id"].to_numpy()[list(rows)])
                expected |= {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]}
    found = []
    for partitions in (1, 4):
        records = to_dask(both, None, "a", partitions)
        alignment = make_alignment(PERSON_TREATMENTS, blocking=blocking, threshold=10.0, uniq=False, dedupe=True)
        run = run_alignment(client, records, records, alignment)
        assert run.stats.candidate_pairs == len(expected) > 1000
        found.append(run.links)
    pd.testing.assert_frame_equal(found[0], found[1])
    assert set(zip(found[0]["align_id"], found[0]["target_id"])) <= expected


def test_oversized_blocks_are_excluded_and_counted(client):
    frame = pd.DataFrame({"id": range(200), "city": ["paris"] * 150 + [f"c{i}" for i in range(50)]})
    treatments = bigalign.make_treatments([{"column": "city", "metric": "exact"}])
    run = run_alignment(client, to_dask(frame, None, "a", 2), to_dask(frame.assign(id=frame.id + 1000), None, "t", 2),
                        make_alignment(treatments, blocking=KeyBlocking("city"), threshold=0.0, uniq=False,
                                       max_block_pairs=1000))
    assert run.stats.excluded_blocks == 1 and run.stats.excluded_pairs == 150 * 150
    assert run.stats.largest_block_pairs == 150 * 150
    assert len(run.links) == 50


def test_a_large_block_is_split_into_tiles_on_several_tasks(client):
    rng = np.random.default_rng(5)
    names = ["martin"] * 300 + [f"n{i}" for i in range(100)]
    a = pd.DataFrame({"id": [f"a{i}" for i in range(400)], "city": names, "x": rng.uniform(0, 10, 400)})
    b = a.assign(id=[f"b{i}" for i in range(400)], x=a.x + rng.normal(0, 0.01, 400))
    treatments = [bigalign.Treatment("x", "euclidean")]
    whole = bigalign.align(a, b, treatments, 0.05, uniq=False, blocking=KeyBlocking("city"), client=client)
    tiled = bigalign.align(a, b, treatments, 0.05, uniq=False, blocking=KeyBlocking("city"), client=client,
                           max_task_pairs=10_000)
    brute = bigalign.align(a, b, treatments, 0.05, uniq=False)
    pd.testing.assert_frame_equal(tiled, whole)
    pd.testing.assert_frame_equal(tiled, brute[brute.align_id.str[1:].astype(int).map(lambda i: names[i])
                                              == brute.target_id.str[1:].astype(int).map(lambda i: names[i])]
                                  .reset_index(drop=True))
    run = run_alignment(client, to_dask(a, None, "a", 3), to_dask(b, None, "b", 3),
                        make_alignment(treatments, blocking=KeyBlocking("city"), threshold=0.05, max_task_pairs=10_000))
    assert [p for _, p in run.stats.split_blocks] == [90_000]
    assert run.stats.candidate_pairs == 90_000 + 100 and run.stats.largest_block_pairs == 90_000


def test_unreadable_value_names_set_record_and_column(client):
    a = pd.DataFrame({"id": ["x", "y"], "dob": ["14/08/1991", "31/02/1991"]})
    with pytest.raises(RecordError, match=r"alignset: record 'y', column dob: unparsable date: '31/02/1991'"):
        bigalign.align(a, a.assign(id=["p", "q"], dob=["1991-08-14", "1991-02-21"]),
                       [bigalign.Treatment("dob", "temporal")], 1,
                       blocking=KeyBlocking("dob", "year"), client=client)


def test_person_records_blocking_and_links_quality(client):
    data = person_records(20_000, seed=1)
    a, t = to_dask(data.alignset, None, "a", 4), to_dask(data.targetset, None, "t", 4)
    treatments = bigalign.make_treatments(PERSON_TREATMENTS)
    alignment = make_alignment(treatments, blocking=person_blocking(), threshold=np.inf, uniq=False)
    everything = run_alignment(client, a, t, alignment,
                               truth_hashes=pair_hashes(data.truth["align_id"], data.truth["target_id"]))
    kept = len(everything.links.merge(data.truth))
    assert everything.stats.true_pairs_kept == kept  # every candidate is a link here: the tasks' count is exact
    quality = blocking_quality(len(everything.links), kept, len(data.truth), 20_000, 20_000)
    assert quality["pair_completeness"] >= 0.99
    assert quality["reduction_ratio"] > 0.999
    links = bigalign.matching.best_match_per_item(everything.links[everything.links.distance <= 3.5])
    assert link_quality(links, data.truth).f1 >= 0.98


@pytest.mark.integration
def test_dask_scheduler_and_workers_started_by_hand(tmp_path, people, monkeypatch):
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    dask = [os.path.join(os.path.dirname(sys.executable), "dask")]
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                                      ":0", "--scheduler-file", str(scheduler_file)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(100):
            if scheduler_file.exists():
                break
            time.sleep(0.2)
        for _ in range(2):
            procs.append(subprocess.Popen(dask + ["worker", "--scheduler-file", str(scheduler_file), "--nthreads",
                                                  "1", "--host", "127.0.0.1", "--no-dashboard"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(scheduler_file=str(scheduler_file)) as c:
            c.wait_for_workers(2, timeout=60)
            address = c.scheduler.address
        by_file = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, 3.5,
                                 blocking=person_blocking(), client=str(scheduler_file), npartitions=4)
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
        by_environment = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, 3.5,
                                        blocking=person_blocking(), npartitions=2)
        local = bigalign.align(people.alignset, people.targetset, PERSON_TREATMENTS, 3.5, blocking=person_blocking(),
                               npartitions=2, client=address)
        pd.testing.assert_frame_equal(by_file, by_environment)
        pd.testing.assert_frame_equal(by_file, local)
        assert len(by_file) > 2000
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_dense_blocks_give_the_pairs_and_distances_of_the_pair_path(client, people):
    """Large blocks scored as dense matrices: the same links, distances and counts as pair by pair."""
    treatments = bigalign.make_treatments(PERSON_TREATMENTS)
    blocking = UnionBlocking([KeyBlocking("soc_sec_id"), KeyBlocking("date_of_birth", "year")])
    truth = pair_hashes(people.truth["align_id"], people.truth["target_id"])
    for uniq, threshold in ((True, 3.5), (False, 4.0)):
        runs = [run_alignment(client, to_dask(people.alignset, None, "a", 3), to_dask(people.targetset, None, "t", 3),
                              make_alignment(treatments, blocking=blocking, threshold=threshold, uniq=uniq),
                              truth_hashes=truth, dense_block_pairs=dense)
                for dense in (None, 500)]
        pairwise, dense = runs
        assert pairwise.stats.dense_blocks == 0 and dense.stats.dense_blocks > 50
        pd.testing.assert_frame_equal(dense.links, pairwise.links)
        assert len(dense.links) > 2000
        for count in ("candidate_pairs", "true_pairs_kept", "links_under_threshold"):
            assert getattr(dense.stats, count) == getattr(pairwise.stats, count), count
    a, b = places(1500, 0)
    geo = bigalign.make_treatments([{"column": ("latitude", "longitude"), "metric": "geographical",
                                             "units": "km"}])
    alignment = make_alignment(geo, blocking=KDTreeBlocking(radius_km=8), threshold=8.0, uniq=False)
    runs = [run_alignment(client, to_dask(a, "id", "a", 2), to_dask(b, "id", "b", 2), alignment,
                          dense_block_pairs=dense) for dense in (None, 4)]
    assert runs[1].stats.dense_blocks > 0
    pd.testing.assert_frame_equal(runs[1].links, runs[0].links)
