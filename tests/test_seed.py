"""The worked examples of the seed article, exactly."""

import numpy as np
import pandas as pd

import bigalign
from bigalign import Treatment, cdist

ALIGNSET = [["Paul Dupont", "14-08-1991", "Paris"],
            ["Jacques Dupuis", "06-01-1999", "Bressuire"],
            ["Michel Edouard", "18-04-1881", "Nantes"]]
TARGETSET = [["Dupond Paul", "14/08/1991", "Paris"],
             ["Edouard Michel", "18/04/1881", "Nantes"],
             ["Dupuis Jacques ", "06/01/1999", "Bressuire"],
             ["Dupont Paul", "01-12-2012", "Paris"]]
GLOBAL = [[1, 40304, 2715, 7780], [2715, 43011, 0, 5091], [40304, 0, 43011, 48084]]


def column(rows, k):
    return [r[k] for r in rows]


def test_simple_case():
    m = cdist(["Victor Hugo", "Albert Camus"], ["Albert Camus", "Guillaume Apollinaire", "Victor Hugo"],
              "levenshtein")
    np.testing.assert_array_equal(m, [[6, 9, 0], [0, 8, 6]])
    assert m.dtype == np.float32


def test_names_matrix():
    m = cdist(column(ALIGNSET, 0), column(TARGETSET, 0), "levenshtein", normalized=False)
    np.testing.assert_array_equal(m, [[1, 6, 5, 0], [5, 6, 0, 5], [6, 0, 6, 6]])


def test_birthdates_matrix_in_days():
    m = cdist(column(ALIGNSET, 1), column(TARGETSET, 1), "temporal")
    np.testing.assert_array_equal(m, [[0, 40294, 2702, 7780], [2702, 42996, 0, 5078],
                                      [40294, 0, 42996, 48074]])


def test_birthplaces_matrix():
    m = cdist(column(ALIGNSET, 2), column(TARGETSET, 2), "levenshtein")
    np.testing.assert_array_equal(m, [[0, 4, 8, 0], [8, 9, 0, 8], [4, 0, 9, 4]])


def test_global_alignment_matrix():
    treatments = [Treatment(0, "levenshtein"), Treatment(1, "temporal"), Treatment(2, "levenshtein")]
    a, t = pd.DataFrame(ALIGNSET), pd.DataFrame(TARGETSET)
    m = bigalign.global_alignment_matrix(treatments, [x.encode(a) for x in treatments],
                                         [x.encode(t) for x in treatments])
    np.testing.assert_array_equal(m, GLOBAL)


def test_links_at_threshold_2_nazca_dict_form():
    alignset = [[i] + r for i, r in enumerate(ALIGNSET)]
    targetset = [[i] + r for i, r in enumerate(TARGETSET)]
    treatments = {1: {"metric": "levenshtein"}, 2: {"metric": "temporal"}, 3: {"metric": "levenshtein"}}
    links = bigalign.align(alignset, targetset, treatments, threshold=2, uniq=True)
    assert list(links.columns) == ["align_id", "target_id", "distance"]
    assert list(zip(links.align_id, links.target_id, links.distance)) == [(0, 0, 1.0), (1, 2, 0.0), (2, 1, 0.0)]


def test_links_from_dataframes_with_named_columns():
    a = pd.DataFrame(ALIGNSET, columns=["name", "birth", "city"]).assign(uri=["a0", "a1", "a2"])
    t = pd.DataFrame(TARGETSET, columns=["name", "birth", "city"]).assign(uri=["t0", "t1", "t2", "t3"])
    treatments = [Treatment("name", "levenshtein"), Treatment("birth", "temporal"), Treatment("city", "levenshtein")]
    links = bigalign.align(a, t, treatments, 2, id_column="uri")
    assert links[["align_id", "target_id"]].values.tolist() == [["a0", "t0"], ["a1", "t2"], ["a2", "t1"]]
    everything = bigalign.align(a, t, treatments, 1e9, uniq=False, id_column="uri")
    assert len(everything) == 12
    assert everything.distance.tolist()[:4] == [1, 2715, 7780, 40304]
