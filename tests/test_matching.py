"""From pairs to links: the best target per item, ties and canonical order."""

import numpy as np
import pandas as pd
import pytest

from bigalign.matching import best_match_per_item, sort_links


def full_sort_reference(links):
    ordered = links.sort_values(["align_id", "distance", "target_id"], kind="mergesort")
    return ordered[~ordered["align_id"].duplicated()].reset_index(drop=True)


@pytest.mark.parametrize("ids", ["text", "arrow text", "integers"])
def test_best_match_per_item_is_the_first_of_the_full_sort(ids):
    rng = np.random.default_rng(0)
    n = 5000
    # Few distinct distances and targets: many ties, broken by the smallest target id.
    links = pd.DataFrame({"align_id": rng.integers(0, 800, n), "target_id": rng.integers(0, 50, n),
                          "distance": rng.integers(0, 4, n) / 2})
    if ids != "integers":
        links = links.astype({"align_id": str, "target_id": str})
    if ids == "arrow text":
        links = links.astype({"align_id": "string[pyarrow]", "target_id": "string[pyarrow]"})
    best = best_match_per_item(links)
    pd.testing.assert_frame_equal(best, sort_links(full_sort_reference(links)))
    assert best["align_id"].is_unique and len(best) == links["align_id"].nunique()


def test_best_match_per_item_of_no_links():
    empty = pd.DataFrame({"align_id": pd.Series([], dtype=str), "target_id": pd.Series([], dtype=str),
                          "distance": np.array([], dtype=float)})
    assert best_match_per_item(empty).columns.tolist() == ["align_id", "target_id", "distance"]
    assert len(best_match_per_item(empty)) == 0


def test_best_match_per_item_of_links_one_per_item_sorts_them_and_drops_missing_distances():
    links = pd.DataFrame({"align_id": ["c", "a", "b", "d"], "target_id": ["x", "y", "z", "w"],
                          "distance": [0.5, 0.1, np.nan, 0.2]})
    best = best_match_per_item(links)
    assert best.values.tolist() == [["a", "y", 0.1], ["c", "x", 0.5], ["d", "w", 0.2]]
    twice = pd.concat([links, links.assign(distance=[0.4, np.nan, 0.3, 0.2], target_id=["v", "u", "t", "a"])])
    assert best_match_per_item(twice).values.tolist() == [["a", "y", 0.1], ["b", "t", 0.3], ["c", "v", 0.4],
                                                           ["d", "a", 0.2]]


def test_a_few_links_are_sorted_as_many_are():
    """Up to FEW_VALUES links (a lookup's) are sorted in Python: in the order pandas' sort gives (align id,
    distance with NaN last, target id, then the sets), ties kept in their order."""
    from bigalign.values.columns import FEW_VALUES

    rng = np.random.default_rng(2)
    for _ in range(200):
        n = int(rng.integers(0, FEW_VALUES + 1))
        links = pd.DataFrame({"align_set": rng.integers(0, 2, n), "align_id": rng.choice(["a", "b", "é", "B"], n),
                              "target_set": rng.integers(0, 2, n), "target_id": rng.choice(["t1", "t10", "t2"], n),
                              "distance": rng.choice([0.0, 0.25, 1.0, np.nan], n), "row": np.arange(n)})
        keys = ["align_id", "distance", "target_id", "align_set", "target_set"]
        expected = links.sort_values(keys, kind="mergesort").reset_index(drop=True)
        got = sort_links(links.copy())
        assert got["row"].tolist() == expected["row"].tolist()
