"""Blockings on their own: signatures, parameters, keys."""

import numpy as np
import pandas as pd
import pytest
from datasketch import MinHash, MinHashLSH

from bigalign.blocking import KDTreeBlocking, KeyBlocking, MinHashLSHBlocking, MiniBatchKMeansBlocking
from bigalign.blocking.minhash import candidate_probability, minhash_signatures, optimal_bands_rows, shingles


def test_signatures_are_bit_identical_to_datasketch():
    texts = ["jean dupont", "jean dupond", "", "東京 タワー", "o'brien-smith", "a"]
    sets = [shingles(t, 3) for t in texts]
    for num_perm, seed in [(128, 1), (64, 7)]:
        ours = minhash_signatures(sets, num_perm, seed)
        for row, s in zip(ours, sets):
            reference = MinHash(num_perm=num_perm, seed=seed)
            for shingle in s:
                reference.update(shingle.encode("utf-8"))
            np.testing.assert_array_equal(row, reference.hashvalues)
            assert row.dtype == reference.hashvalues.dtype


@pytest.mark.parametrize("words", [False, True])
def test_a_blockings_signatures_are_those_of_its_records_shingles(words):
    """Signatures taken from each distinct word's (the minimum over a record's words) are those of the
    record's whole shingle set: pooled columns, repeated and missing values, blank text, a record of none."""
    frame = pd.DataFrame({"id": range(7),
                          "first": ["Jean", "jean", None, "Zoé", "  ", "Ann Marie", None],
                          "last": ["Dupont", "Dupont Dupont", "Martin", None, "Lee", "Marie Ann", None]})
    blocking = MinHashLSHBlocking(["first", "last"], num_perm=32, words=words)
    expected = minhash_signatures(blocking.shingle_sets(frame), 32, 1)
    np.testing.assert_array_equal(blocking.signatures(frame), expected)
    assert (expected[6] == 0xFFFFFFFF).all() and (blocking.keys(frame, "align")[6] == 0).all()
    np.testing.assert_array_equal(blocking.signatures(frame)[5], blocking.signatures(frame.iloc[::-1])[1])


@pytest.mark.parametrize("threshold,num_perm,weights", [(0.3, 64, (0.5, 0.5)), (0.6, 64, (0.5, 0.5)),
                                                     (0.5, 128, (0.5, 0.5)), (0.8, 128, (0.5, 0.5)),
                                                     (0.9, 32, (0.5, 0.5)), (0.05, 256, (0.5, 0.5)),
                                                     (0.45, 100, (0.2, 0.8)), (0.7, 16, (0.9, 0.1))])
def test_bands_and_rows_match_datasketch(threshold, num_perm, weights):
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    assert optimal_bands_rows(threshold, num_perm, *weights) == (lsh.b, lsh.r)


def test_s_curve():
    assert candidate_probability(1.0, 20, 5) == 1.0
    assert candidate_probability(0.0, 20, 5) == 0.0
    assert abs(candidate_probability(0.5, 20, 5) - (1 - (1 - 0.5 ** 5) ** 20)) < 1e-12


def test_shingles_are_word_order_free_and_padded():
    assert shingles("ab", 3) == {"^ab", "ab$"}
    assert shingles("paul dupont", 3) == shingles("dupont paul", 3)
    assert shingles("rue de la paix", words=True) == {"rue", "de", "la", "paix"}


def test_minhash_keys_meet_on_similar_names_only():
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["Jean-Pierre Dupont", "jean pierre dupond", "Zoé Martin"]})
    blocking = MinHashLSHBlocking(["name"], threshold=0.5)
    keys = blocking.keys(frame, "align")
    assert keys.shape == (3, blocking.bands) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).any() and not (keys[0] == keys[2]).any()
    empty = blocking.keys(pd.DataFrame({"id": [1], "name": [None]}), "align")
    assert (empty == 0).all()
    with pytest.raises(ValueError, match="bands × rows"):
        MinHashLSHBlocking(["name"], bands=30, rows=5)


def test_key_blocking_transforms():
    frame = pd.DataFrame({"id": range(5), "dob": ["14/08/1991", "1991-08-14", "19910814", None, "garbage"],
                          "name": ["Robert", "Rupert", "Rubin", "", "Ann"]})
    dates = KeyBlocking("dob", "date").keys(frame, "align")[:, 0]
    assert dates[0] == dates[1] == dates[2] != 0 and dates[3] == 0 and dates[4] == 0
    sounds = KeyBlocking("name", "soundex").keys(frame, "align")[:, 0]
    assert sounds[0] == sounds[1] != sounds[2] and sounds[3] == 0
    prefix = KeyBlocking("name", "prefix:1").keys(frame, "align")[:, 0]
    assert prefix[0] == prefix[1] == prefix[2]
    with pytest.raises(ValueError, match="unknown transform"):
        KeyBlocking("name", "metaphone")


def test_composite_keys_need_every_part_and_soundex_set_ignores_word_order():
    frame = pd.DataFrame({"given": ["Paul", "Dupond", "Paul", "Paul", None],
                          "surname": ["Dupont", "Paul", "Dupont", "Durand", "Dupont"],
                          "dob": ["14/08/1991", "1991-08-14", "1991-08-15", "14/08/1991", "14/08/1991"]})
    keys = KeyBlocking([["given", "surname"], "dob"], transform=["soundex-set", "date"]).keys(frame, "align")[:, 0]
    # Swapped words and a d/t typo share the key; another date or surname does not.
    assert keys[0] == keys[1] != 0
    assert len({keys[0], keys[2], keys[3]}) == 3
    # A missing word leaves the rest of the part ("Dupont"), which is another key.
    assert keys[4] not in (0, keys[0])
    assert KeyBlocking([["given", "surname"], "dob"], transform=["soundex-set", "date"]).values(frame).tolist() == [
        "D153 P400|1991-08-14", "D153 P400|1991-08-14", "D153 P400|1991-08-15", "D653 P400|1991-08-14",
        "D153|1991-08-14"]
    ordered = KeyBlocking([["given", "surname"]], transform="soundex").keys(frame, "align")[:, 0]
    assert ordered[0] != ordered[1]
    # A missing part means no key at all.
    no_given = KeyBlocking(["given", "dob"], transform=["exact", "date"]).keys(frame, "align")[:, 0]
    assert no_given[4] == 0 and (no_given[:4] != 0).all()
    with pytest.raises(ValueError, match="2 transforms for 3 key parts"):
        KeyBlocking(["given", "surname", "dob"], transform=["exact", "date"])


def test_kdtree_cells_meet_within_radius_everywhere():
    rng = np.random.default_rng(0)
    # Points near the poles, the antimeridian, and anywhere.
    base = np.vstack([rng.uniform(-90, 90, (300, 2)) * [1, 2], [[89.99, 0], [0, 179.999], [-89.99, 45]]])
    moved = base + rng.normal(0, 0.02, base.shape)
    moved[:, 0] = np.clip(moved[:, 0], -90, 90)
    moved[:, 1] = (moved[:, 1] + 180) % 360 - 180
    a = pd.DataFrame({"id": range(len(base)), "latitude": base[:, 0], "longitude": base[:, 1]})
    b = pd.DataFrame({"id": range(len(base)), "latitude": moved[:, 0], "longitude": moved[:, 1]})
    blocking = KDTreeBlocking(radius_km=10)
    ka, kb = blocking.keys(a, "align"), blocking.keys(b, "target")
    rows = np.arange(len(a))
    first = blocking.first_shared_slot(ka, kb, blocking.extra(a), blocking.extra(b), rows, rows)
    close = blocking.within_radius(blocking.extra(a), blocking.extra(b))
    assert close.sum() > 250
    np.testing.assert_array_equal(first < blocking.n_slots, close)


def test_kmeans_blocking_is_fitted_and_overlaps():
    rng = np.random.default_rng(1)
    points = pd.DataFrame({"id": range(2000), "x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    blocking = MiniBatchKMeansBlocking(["x", "y"], n_clusters=20, overlap=3).fit(points, points)
    ka, kb = blocking.keys(points, "align"), blocking.keys(points, "target")
    assert (ka[:, 1:] == 0).all() and (kb != 0).all()
    assert (kb == ka[:, :1]).any(axis=1).all()  # a record's own cluster is among its target clusters
    refit = MiniBatchKMeansBlocking(["x", "y"], n_clusters=20, overlap=3).fit(points.iloc[::-1], points.iloc[::-1])
    np.testing.assert_array_equal(refit.centroids_, blocking.centroids_)


def test_soundex_keys_of_whole_columns_equal_word_by_word_codes():
    import random

    from bigalign.blocking.key import TRANSFORMS
    from bigalign.values.soundex import soundex_code

    rng = random.Random(4)
    values = ["", " ", None, "ab  cd", " y z ", "smith smith", "a1 b2", "éloïse dupont", "a\x1fb", "\x85a b"]
    alphabet = "abcdhwrstlmn '-1\t\n\x0b\x1c\x1f"
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) for _ in range(3000)]

    def expected(value, word_set):
        if value is None:
            return None
        codes = [c for c in map(soundex_code, value.split()) if c]
        return " ".join(sorted(set(codes)) if word_set else codes) or None

    for column in (pd.Series(values, dtype=object), pd.Series(values[10:], dtype=object)):
        for name, word_set in (("soundex-set", True), ("soundex", False)):  # mixed text, then ASCII only
            assert TRANSFORMS[name](column).tolist() == [expected(v, word_set) for v in column.tolist()]


@pytest.mark.parametrize("transform", ["soundex-set", "soundex", "date", "year", "exact"])
def test_keys_are_equal_exactly_when_their_texts_are_and_alike_in_every_partition(transform):
    """Keys are hashed from codes and day numbers, not from the text ``values`` shows: equal exactly when
    the texts are, and the same value gets the same key in a partition of ASCII text and in one of mixed
    text (which takes another path)."""
    import random

    rng = random.Random(5)
    if transform in ("date", "year"):
        values = [f"{rng.randint(1, 28)}/{rng.randint(1, 13)}/{rng.randint(1990, 1993)}" for _ in range(2000)]
        values += [f"{y}-{m:02d}-{d:02d}" for y, m, d in zip(range(1990, 1994), range(1, 5), range(1, 5))]
        values += ["19910814", "", None, "x", "31/02/1991"]
    else:
        values = ["".join(rng.choice("abcdhrstu -'") for _ in range(rng.randint(0, 12))) for _ in range(2000)]
        values += ["", None, "Dupont Paul", "paul dupont"]
    blocking = KeyBlocking("v", transform)
    ascii_only = pd.DataFrame({"v": values})
    mixed = pd.DataFrame({"v": values + ["Éloïse Müller", "14/08/1991 é"]})
    keys = blocking.keys(mixed, "align")[:, 0]
    np.testing.assert_array_equal(keys[:len(values)], blocking.keys(ascii_only, "align")[:, 0])
    texts = blocking.values(mixed)
    np.testing.assert_array_equal(keys == 0, texts.isna().to_numpy())
    known = keys != 0
    assert known.sum() > len(values) // 2
    by_text, by_key = pd.factorize(texts[known])[0], pd.factorize(keys[known])[0]
    np.testing.assert_array_equal(by_text, by_key)  # (first-seen order: the same groups, the same codes)


def test_text_hashes_are_equal_exactly_when_the_texts_are_in_any_array():
    """Record ids and key values are hashed from Arrow's buffers, eight bytes at a time: every byte
    counts (values that differ in their last byte, in a byte past a word, by a trailing NUL), equal
    texts hash alike whatever array, slice or offset width holds them, and ids of other types hash as
    their text."""
    import pyarrow as pa

    from bigalign.records import record_hashes
    from bigalign.values.hashing import text_hashes

    words = ["", "a", "a\x00", "b", "abcdefg", "abcdefgh", "abcdefgi", "abcdefghi", "abcdefghj", "bbcdefghi",
             "é", "e\u0301", "東京 タワー"] + ["x" * k for k in range(2, 40)] + ["x" * k + "y" for k in range(40)]
    hashes = text_hashes(pa.array(words))
    assert len(set(hashes.tolist())) == len(words)
    mixed = pa.array([None] + words[::-1] + words, type=pa.large_string())
    again = text_hashes(mixed.slice(1))
    np.testing.assert_array_equal(again[len(words):], hashes)
    np.testing.assert_array_equal(again[:len(words)], hashes[::-1])
    np.testing.assert_array_equal(text_hashes(pa.chunked_array([mixed.slice(0, 7), mixed.slice(7)]))[1:],
                                  again)
    nulls = text_hashes(pa.array([None, "a", None]))
    assert nulls[0] == nulls[2] != nulls[1] == hashes[1]
    np.testing.assert_array_equal(record_hashes(pd.Series([7, 12, 7])), record_hashes(pd.Series(["7", "12", "7"])))


def test_equal_key_pairs_are_every_pair_of_equal_keys_once():
    from bigalign.blocking.base import equal_key_pairs

    rng = np.random.default_rng(3)
    for n_a, n_b, distinct in [(0, 5, 3), (5, 0, 3), (300, 200, 40), (30, 40, 2), (50, 50, 10_000)]:
        keys_a = rng.integers(0, distinct, n_a).astype(np.uint64)
        keys_b = rng.integers(0, distinct, n_b).astype(np.uint64)
        ia, ib = equal_key_pairs(keys_a, keys_b)
        expected = sorted((i, j) for i in range(n_a) for j in range(n_b) if keys_a[i] == keys_b[j])
        assert sorted(zip(ia.tolist(), ib.tolist())) == expected
        assert len(ia) == len(expected)  # (each once)


def test_a_few_records_get_the_keys_a_whole_column_gives_them():
    """Up to FEW_VALUES records, exact keys are found record by record in Python (what a lookup of one
    record takes): the same keys as in a partition of many records, for every transform, parts of several
    columns, missing, blank, non-ASCII values and dates that are none."""
    from other_people import messy_people

    from bigalign.blocking import UnionBlocking
    from bigalign.values.columns import FEW_VALUES

    people = messy_people(200)
    blocking = UnionBlocking([
        KeyBlocking("soc_sec_id"), KeyBlocking(["date_of_birth", "address"], ["date", "exact"]),
        KeyBlocking([["given_name", "surname"], "street_number"], ["soundex-set", "exact"]),
        KeyBlocking(["surname", "date_of_birth", "street_number"], ["soundex", "year", "exact"]),
        KeyBlocking("surname", "prefix:3", normalizers=["lunormalize", "simplify"]),
        KeyBlocking(["suburb", "postcode"], [lambda v: v[::-1], None], normalizers=["unormalize"]),
        KeyBlocking(["given_name", "surname"], normalizers=[]),
    ])
    whole = blocking.keys(people, "align")
    alone = np.vstack([blocking.keys(people.iloc[i:i + 1], "align") for i in range(len(people))])
    by_few = np.vstack([blocking.keys(people.iloc[i:i + FEW_VALUES], "align")
                        for i in range(0, len(people), FEW_VALUES)])
    np.testing.assert_array_equal(alone, whole)
    np.testing.assert_array_equal(by_few, whole)
    assert ((whole == 0).any(axis=0) & (whole != 0).all(axis=1).any()).all()  # (some keys missing, some not)
