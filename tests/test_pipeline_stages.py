"""The stage functions of the pipeline, tested directly on small frames, without a cluster
(as dask tests its partition functions); the cluster tests are in test_pipeline.py."""

import numpy as np
import pandas as pd
import pytest

from bigalign.aligner import align_in_memory
from bigalign.blocking import KeyBlocking, UnionBlocking
from bigalign.em import pattern_counts
from bigalign.errors import RecordError
from bigalign.fellegi_sunter import FellegiSunter
from bigalign.pipeline import (
    best_match,
    block_rows,
    candidate_pairs,
    candidate_tile,
    cpu_measured,
    encode_records,
    score_pairs,
    timed,
)
from bigalign.pipeline.encode import sample_records
from bigalign.pipeline.fit_data import random_pair_distances
from bigalign.pipeline.schema import ALIGN_SIDE, TARGET_SIDE, part_of
from bigalign.pipeline.scoring import candidate_patterns, pair_distances
from bigalign.treatments import make_treatments

TREATMENTS = make_treatments([{"column": "name", "metric": "levenshtein", "normalized": True},
                              {"column": "city", "metric": "exact"}])
ALIGNSET = pd.DataFrame({"id": ["a1", "a2", "a3", "a4"], "name": ["anna", "bob", "carl", "dora"],
                         "city": ["paris", "lyon", "paris", "nice"]})
TARGETSET = pd.DataFrame({"id": ["t1", "t2", "t3", "t4", "t5"], "name": ["anna", "bobby", "karl", "dora", "anne"],
                          "city": ["paris", "lyon", "paris", "paris", "paris"]})
# Records meet on their city, or on the first letter of their name.
BLOCKING = UnionBlocking([KeyBlocking("city"), KeyBlocking("name", "prefix:1")])


def encoded_sets():
    return (encode_records(ALIGNSET, TREATMENTS, BLOCKING, "align", "alignset"),
            encode_records(TARGETSET, TREATMENTS, BLOCKING, "target", "targetset"))


def shuffled(encoded_a, encoded_b):
    """One partition holding every block: what the shuffle gives a task."""
    return pd.concat([block_rows(encoded_a, BLOCKING, "align"), block_rows(encoded_b, BLOCKING, "target")],
                     ignore_index=True)


def ids_of(encoded, rids):
    return encoded.set_index("rid").loc[rids, "id"].tolist()


def brute_force_pairs():
    """Pairs sharing a city or a first letter, by hand."""
    return sorted((a.id, t.id) for a in ALIGNSET.itertuples() for t in TARGETSET.itertuples()
                  if a.city == t.city or a.name[0] == t.name[0])


def test_encode_records_keeps_ids_values_and_keys():
    encoded_a, _ = encoded_sets()
    assert encoded_a["id"].tolist() == ALIGNSET["id"].tolist()
    assert {"rid", "t0:v", "t1:v", "k:0", "k:1"} <= set(encoded_a.columns)
    keys = encoded_a[["k:0", "k:1"]].to_numpy()
    assert keys[0, 0] == keys[2, 0] and keys[0, 0] != keys[1, 0]  # two Paris records: one city key
    bad = ALIGNSET.assign(name=[None, "bob", "carl", "dora"], city=["paris"] * 4)
    assert (encode_records(bad, TREATMENTS, BLOCKING, "align", "alignset")["k:1"].to_numpy()[0]) == 0  # no key
    dates = make_treatments([{"column": "name", "metric": "temporal"}])
    with pytest.raises(RecordError, match=r"alignset: record 'a1', column name: unparsable date: 'anna'"):
        encode_records(ALIGNSET, dates, BLOCKING, "align", "alignset")


def test_block_rows_are_one_narrow_row_per_key():
    encoded_a, _ = encoded_sets()
    rows = block_rows(encoded_a, BLOCKING, "align")
    assert len(rows) == 2 * len(ALIGNSET)  # every record has a city and a first letter
    assert set(rows.columns) >= {"key", "slot", "side", "rid"} and "t0:v" not in rows.columns
    assert sorted(rows["slot"].tolist()) == [0] * 4 + [1] * 4


def test_candidate_pairs_are_each_shared_pair_once():
    encoded_a, encoded_b = encoded_sets()
    result = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, dedupe=False, max_block_pairs=None)
    pairs = sorted(zip(ids_of(encoded_a, result.pairs["rid_a"]), ids_of(encoded_b, result.pairs["rid_b"])))
    # a1 and t1 share both their city and their first letter: still one pair
    assert pairs == brute_force_pairs()
    assert result.stats.candidate_pairs == len(pairs) and part_of(result, "pairs") is result.pairs
    # each pair knows the rules (union members, a bit each) that put it in a block: what a model learns per rule
    ruled = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, False, None, rules=True).pairs
    assert "rules" not in result.pairs and ruled[["rid_a", "rid_b"]].equals(result.pairs)
    rules = dict(zip(zip(ids_of(encoded_a, ruled["rid_a"]), ids_of(encoded_b, ruled["rid_b"])),
                     ruled["rules"].tolist()))
    assert rules[("a1", "t1")] == 0b11 and rules[("a1", "t3")] == 0b01 and rules[("a4", "t4")] == 0b10
    # a block too large for one task is set aside, and its tiles give the same pairs
    split = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, False, None, max_task_pairs=5)
    assert split.heavy is not None and split.stats.split_blocks
    tiles = [candidate_tile(split.heavy, key, t, 3, BLOCKING, False).pairs
             for key, _ in split.stats.split_blocks for t in range(3)]
    both = pd.concat([split.pairs] + tiles, ignore_index=True)
    assert sorted(zip(ids_of(encoded_a, both["rid_a"]), ids_of(encoded_b, both["rid_b"]))) == pairs


def joined_pairs(encoded_a, encoded_b, pairs):
    """What the hash join gives scoring: each pair with both records' values."""
    side_a = encoded_a.drop(columns=[c for c in encoded_a.columns if c.startswith(("k:", "x:"))])
    side_b = encoded_b.drop(columns=[c for c in encoded_b.columns if c.startswith(("k:", "x:"))])
    side_a.columns = [f"{ALIGN_SIDE}:{c}" for c in side_a.columns]
    side_b.columns = [f"{TARGET_SIDE}:{c}" for c in side_b.columns]
    return (pairs.merge(side_b, left_on="rid_b", right_on=f"{TARGET_SIDE}:rid")
            .merge(side_a, left_on="rid_a", right_on=f"{ALIGN_SIDE}:rid"))


def test_score_pairs_and_best_match_give_the_in_memory_links():
    encoded_a, encoded_b = encoded_sets()
    pairs = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, False, None).pairs
    joined = joined_pairs(encoded_a, encoded_b, pairs)
    every = score_pairs(joined, TREATMENTS, threshold=2.0, uniq=False, dedupe=False).links
    brute = align_in_memory(ALIGNSET, TARGETSET, TREATMENTS, 2.0, uniq=False)
    blocked = brute.merge(pd.DataFrame(brute_force_pairs(), columns=["align_id", "target_id"]))
    pd.testing.assert_frame_equal(best_match(every).reset_index(drop=True),
                                  align_in_memory(ALIGNSET, TARGETSET, TREATMENTS, 2.0).merge(
                                      blocked[["align_id", "target_id"]]).reset_index(drop=True),
                                  check_dtype=False)
    assert len(every) == len(blocked)
    best = score_pairs(joined, TREATMENTS, threshold=2.0, uniq=True, dedupe=False).links
    assert best["align_id"].is_unique and set(best["align_id"]) == set(every["align_id"])


def test_without_a_cluster_the_pairs_take_their_values_from_the_sets_whole():
    """The in-process join (the pairs shuffled, values looked up in each set whole) gives the
    hash join's rows (see joined_pairs), and every pair of an align record in one partition."""
    import dask
    import dask.dataframe as dd

    from bigalign.pipeline.graph import _joined_pairs

    encoded_a, encoded_b = encoded_sets()
    pairs = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, False, None).pairs
    expected = joined_pairs(encoded_a, encoded_b, pairs).sort_values(["rid_a", "rid_b"]).reset_index(drop=True)
    joined = _joined_pairs(dd.from_pandas(pairs, npartitions=2), dd.from_pandas(encoded_a, npartitions=3),
                           dd.from_pandas(encoded_b, npartitions=2), 3, "tasks")
    parts = dask.compute(*joined.to_delayed(), scheduler="sync")
    whole = pd.concat(parts).sort_values(["rid_a", "rid_b"]).reset_index(drop=True)
    assert list(whole.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(whole, expected, check_dtype=False)
    homes = pd.concat([p[["rid_a"]].drop_duplicates() for p in parts])
    assert homes["rid_a"].is_unique and len(homes) == pairs["rid_a"].nunique()


def test_candidate_patterns_count_the_levels_of_the_pairs():
    encoded_a, encoded_b = encoded_sets()
    pairs = candidate_pairs(shuffled(encoded_a, encoded_b), BLOCKING, False, None).pairs
    model = FellegiSunter([[0.0, 0.3], [0.0]])
    model.cuts_ = [[0.0, 0.3], [0.0]]
    joined = joined_pairs(encoded_a, encoded_b, pairs)
    counts = candidate_patterns(joined, pair_distances(joined, TREATMENTS, dedupe=False), model.levels, dedupe=False)
    names = dict(zip(ALIGNSET.id, ALIGNSET.name)) | dict(zip(TARGETSET.id, TARGETSET.name))
    cities = dict(zip(ALIGNSET.id, ALIGNSET.city)) | dict(zip(TARGETSET.id, TARGETSET.city))

    def level(a, t):
        from rapidfuzz.distance import Levenshtein

        d = Levenshtein.normalized_distance(names[a], names[t])
        return [0 if d == 0 else 1 if d <= 0.3 else 2, int(cities[a] != cities[t])]

    expected = pattern_counts(np.array([level(a, t) for a, t in brute_force_pairs()]))
    pd.testing.assert_frame_equal(counts, expected, check_dtype=False)


def test_a_sample_of_records_does_not_depend_on_the_partitions():
    records = pd.DataFrame({"id": [f"r{i}" for i in range(2000)], "name": ["x"] * 2000, "city": ["y"] * 2000})
    encoded = encode_records(records, TREATMENTS, BLOCKING, "align", "alignset")
    whole = sample_records(encoded, 0.1)
    parts = pd.concat([sample_records(encoded.iloc[i:i + 300], 0.1) for i in range(0, 2000, 300)])
    assert whole["id"].tolist() == parts["id"].tolist() and 150 < len(whole) < 250


@pytest.mark.parametrize("dedupe", [False, True])
def test_random_pairs_from_the_records_as_read_are_those_of_the_encoded_sets(dedupe):
    """A blocking chosen for a run fits its model with the random pairs of the sets as read (their sampled
    records alone encoded), then hands them to the run: the very distances the run would compute from its
    encoded sets, whatever the partitions."""
    import dask
    import dask.dataframe as dd

    from bigalign.datasets import person_records

    data = person_records(3000, seed=5)
    treatments = make_treatments([{"column": ["given_name", "surname"], "metric": "levenshtein", "normalized": True,
                                   "normalizers": ["lunormalize"]},
                                  {"column": "date_of_birth", "metric": "temporal", "scale": 365},
                                  {"column": "suburb", "metric": "jaro_winkler"}])
    align = dd.from_pandas(data.alignset, npartitions=3, sort=False)
    target = align if dedupe else dd.from_pandas(data.targetset, npartitions=2, sort=False)

    def encoded(records, side, name):  # (as a run encodes its sets: keys and all)
        blocking = KeyBlocking("suburb")
        meta = encode_records(records._meta, treatments, blocking, side, name)
        return records.map_partitions(encode_records, treatments, blocking, side, name, meta=meta)

    encoded_a = encoded(align, "align", "alignset")
    encoded_b = encoded_a if dedupe else encoded(target, "target", "targetset")
    scorer = FellegiSunter(random_pairs=20_000)
    counts = (len(data.alignset), len(data.alignset if dedupe else data.targetset))
    with dask.config.set(scheduler="sync"):
        run = random_pair_distances(scorer, treatments, encoded_a, encoded_b, counts).compute()
        as_read = random_pair_distances(scorer, treatments, align.repartition(npartitions=2),
                                        target if dedupe else target.repartition(npartitions=4), counts,
                                        as_read=True).compute()
    assert run.shape == (20_000, 3) and np.isfinite(run).any()
    np.testing.assert_array_equal(run, as_read)


def test_a_stage_adds_its_wall_and_cpu_time_and_a_failed_one_no_cpu_time():
    readings = iter([1.0, 3.5, 10.0, 10.25, 20.0])  # (a sixth reading would raise StopIteration)
    seconds, cpu_seconds = {}, {}
    with cpu_measured(lambda: next(readings), cpu_seconds):
        with timed(seconds, "candidates"):
            pass
        with timed(seconds, "candidates"):  # (a stage timed twice: both add up)
            pass
        with pytest.raises(ValueError), timed(seconds, "score"):  # read at its start only
            raise ValueError("the stage failed")
    with timed(seconds, "write"):  # outside: wall time only
        pass
    assert cpu_seconds == {"candidates": 2.75} and set(seconds) == {"candidates", "score", "write"}


def test_a_few_records_are_encoded_as_a_partition_of_many_encodes_them():
    """A lookup encodes one record, a small partition a few: value by value in Python (normalizers, columns
    joined, dates, keys) where a partition of many takes pandas' and Arrow's column calls. Each record's id
    hash, encoded values and keys are the same either way, on messy records."""
    from other_people import messy_people

    from bigalign.values.columns import FEW_VALUES

    people = messy_people(100)
    people.loc[people["date_of_birth"].isin(["31/02/1991", "91-8-14"]), "date_of_birth"] = None  # (no date)
    treatments = make_treatments([
        {"column": ["given_name", "surname"], "normalizers": ["lunormalize", "simplify"], "metric": "levenshtein",
         "normalized": True},
        {"column": "date_of_birth", "metric": "temporal", "scale": 365},
        {"column": ["street_number", "address"], "normalizers": ["lunormalize"], "metric": "jaccard"},
        {"column": "suburb", "metric": "jaro_winkler"}, {"column": "postcode", "metric": "exact"},
        {"column": "soc_sec_id", "metric": "char_levenshtein", "normalized": True}])
    blocking = UnionBlocking([KeyBlocking("soc_sec_id"),
                              KeyBlocking(["surname", "date_of_birth"], ["soundex", "year"])])
    whole = encode_records(people, treatments, blocking, "align", "alignset")
    for size in (1, 3, FEW_VALUES):
        parts = [encode_records(people.iloc[i:i + size].reset_index(drop=True), treatments, blocking, "align",
                                "alignset") for i in range(0, len(people), size)]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert whole["t1:t"].isna().sum() == 4 and (whole["k:1"] == 0).sum() >= 4  # (dates missing: no year key)
