"""Each metric against an independent reference, on random and awkward inputs."""

import datetime as dt
import difflib
import math
import random

import numpy as np
import pandas as pd
import pytest
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from bigalign import InvalidValueError, cdist, cpdist, distances
from bigalign.distances import text as string_metrics
from bigalign.values.soundex import soundex_code

AWKWARD = ["", "a", "Élodie", "elodie", "Jean-Pierre", "O'Brien", "d'Artagnan", "Москва", "Moskva",
           "東京都", "Zoë  Saldaña", "x1 2y", "  ", "Paul Dupont", "Dupond Paul", "l'été à Paris"]


def random_strings(rng, n, alphabet="abcdeé -'", max_len=12):
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_len))) for _ in range(n)]


def lev(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def nazca_words(text):
    """Nazca's tokenizer: white space, then after each apostrophe (the typographic one too)."""
    found = []
    for chunk in text.split():
        part = ""
        for c in chunk:
            part += c
            if c in "'’":
                found.append(part)
                part = ""
        found.append(part)
    return found


def max_of_minima(ta, tb, distance):
    n = max(len(ta), len(tb))
    ta, tb = ta + [""] * (n - len(ta)), tb + [""] * (n - len(tb))
    m = np.array([[distance(x, y) for y in tb] for x in ta])
    return max(m.min(axis=1).max(), m.min(axis=0).max())


def nazca_levenshtein(a, b):
    """Nazca's rule, written plainly: two values without a space compared whole;
    else the word matrix, "" padding, max of minima."""
    if " " not in a and " " not in b:
        return lev(a, b)
    return max_of_minima(nazca_words(a), nazca_words(b), lev)


def lcs(a, b):
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def check_both_forms(a, b, metric, expected, **options):
    """cdist and cpdist agree with the reference, and with each other bit for bit."""
    dense = cdist(a, b, metric, **options)
    np.testing.assert_allclose(dense, expected, rtol=1e-6, atol=1e-6)
    pairs_a = [x for x in a for _ in b]
    pairs_b = [y for _ in a for y in b]
    np.testing.assert_array_equal(cpdist(pairs_a, pairs_b, metric, **options), dense.ravel())


def present(values):
    return [v for v in values if v.strip()]


@pytest.mark.parametrize("words", ["pairwise", "pairwise, a few at a time", "dense"])
def test_nazca_levenshtein_random_multiword(words, monkeypatch):
    # word pairs one by one (each distinct pair once), in slices, or a matrix of every word against every other
    # (a byte a cell: distances over 254, between the long words added below, are computed again)
    monkeypatch.setattr(string_metrics, "DENSE_WORD_CELLS", 1 << 30 if words == "dense" else 0)
    if words == "pairwise, a few at a time":
        monkeypatch.setattr(distances.NazcaLevenshtein, "max_token_pairs", 64 * 7)
        monkeypatch.setattr(string_metrics, "PAIRS_PER_CALL", 5)
    rng = random.Random(1)
    a = present(random_strings(rng, 40, "abc d", 14)) + present(AWKWARD)
    b = present(random_strings(rng, 30, "abcd ", 14)) + present(AWKWARD)
    # white space of every kind str.split knows (\x1c, no-break space, ideographic space...)
    a += present(random_strings(rng, 20, "ab \t\x1c\xa0\u3000é", 10))
    a, b = a + ["x" * 300 + " y", "ab " + "c" * 260], b + ["b" * 280 + " ab"]
    check_both_forms(a, b, "levenshtein", [[nazca_levenshtein(x, y) for y in b] for x in a])
    longest = [[max(len(x), len(y)) for y in b] for x in a]
    expected = np.array([[nazca_levenshtein(x, y) for y in b] for x in a]) / np.array(longest)
    check_both_forms(a, b, "levenshtein", expected, normalized=True)
    # a pair at a time (a lookup's few): computed pair by pair in Python, the tables' distances bit for bit
    pairs_a, pairs_b = a, (b * 3)[:len(a)]
    for normalized in (False, True):
        together = cpdist(pairs_a, pairs_b, "levenshtein", normalized=normalized)
        alone = [cpdist([x], [y], "levenshtein", normalized=normalized)[0] for x, y in zip(pairs_a, pairs_b)]
        np.testing.assert_array_equal(alone, together)


@pytest.mark.parametrize("pairs_per_call", [None, 7])
def test_char_levenshtein_and_damerau_against_references(pairs_per_call, monkeypatch):
    if pairs_per_call:  # rapidfuzz given the pairs a few at a time
        monkeypatch.setattr(string_metrics, "PAIRS_PER_CALL", pairs_per_call)
    rng = random.Random(2)
    a = present(random_strings(rng, 30)) + present(AWKWARD)
    b = present(random_strings(rng, 25)) + present(AWKWARD)
    check_both_forms(a, b, "char_levenshtein", [[lev(x, y) for y in b] for x in a])
    check_both_forms(a, b, "damerau_levenshtein", [[DamerauLevenshtein.distance(x, y) for y in b] for x in a])
    check_both_forms(a, b, "jaro_winkler", [[JaroWinkler.normalized_distance(x, y) for y in b] for x in a])


def test_difflib_is_the_optimal_sequence_matcher_ratio():
    rng = random.Random(3)
    a = present(random_strings(rng, 30)) + present(AWKWARD)
    b = present(random_strings(rng, 25)) + present(AWKWARD)
    expected = [[1 - 2 * lcs(x, y) / (len(x) + len(y)) for y in b] for x in a]
    check_both_forms(a, b, "difflib", expected)
    ours = cdist(a, b, "difflib")
    greedy = np.array([[1 - difflib.SequenceMatcher(None, x, y, autojunk=False).ratio() for y in b] for x in a])
    assert (ours <= greedy + 1e-6).all()
    assert (np.abs(ours - greedy) < 1e-6).mean() > 0.8


def test_jaccard_on_token_sets():
    rng = random.Random(4)
    words = ["rue", "de", "la", "paix", "paris", "avenue", "foch"]
    a = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(30)]
    b = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(20)]
    expected = [[1 - len(set(x.split()) & set(y.split())) / len(set(x.split()) | set(y.split())) for y in b]
                for x in a]
    check_both_forms(a, b, "jaccard", expected)


def test_exact_and_soundex():
    a = ["Robert", "Rupert", "Tymczak", "Ashcraft", "Pfister", "Jean-Pierre", "O'Neil", "x42"]
    check_both_forms(a, a, "exact", [[float(x != y) for y in a] for x in a])
    assert [soundex_code(w) for w in a] == ["R163", "R163", "T522", "A261", "P236", "J516", "O540", "X000"]
    assert soundex_code("1234") == "" and soundex_code("") == "" and soundex_code("Élise") == "E420"
    assert soundex_code("Dupont", "french") == soundex_code("Dupond", "french") == "D153"
    m = cdist(["Robert Dupont", "Robert"], ["Rupert Dupond", "Robert"], "soundex")
    np.testing.assert_array_equal(m, [[0, 1], [1, 0]])
    # Values with no letter have no code: they are missing.
    assert np.isnan(cdist(["1234"], ["Robert"], "soundex")[0, 0])


def random_dates(rng, n):
    start = dt.date(1850, 1, 1).toordinal()
    return [dt.date.fromordinal(start + rng.randint(0, 70000)) for _ in range(n)]


def formats(d, k):
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
              "novembre", "décembre"]
    return [f"{d:%d-%m-%Y}", f"{d:%d/%m/%Y}", d.isoformat(), f"{d.day} {months[d.month - 1]} {d.year}",
            f"{d:%B} {d.day}, {d.year}", f"{d:%Y%m%d}", d][k % 7]


def test_temporal_against_datetime_arithmetic():
    rng = random.Random(5)
    da, db = random_dates(rng, 40), random_dates(rng, 30)
    a = [formats(d, k) for k, d in enumerate(da)]
    b = [formats(d, k + 3) for k, d in enumerate(db)]
    check_both_forms(a, b, "temporal", [[abs((x - y).days) for y in db] for x in da])
    check_both_forms(a, b, "temporal", [[abs((x.year - y.year) * 12 + x.month - y.month) for y in db] for x in da],
                     granularity="months")
    check_both_forms(a, b, "temporal", [[abs(x.year - y.year) for y in db] for x in da], granularity="years")
    check_both_forms(a, b, "temporal", [[min(abs((x - y).days) / 365, 1) for y in db] for x in da],
                     normalized=True, scale=365)


def test_temporal_month_first_and_errors():
    assert cdist(["08/14/1991"], ["1991-08-14"], "temporal", dayfirst=False)[0, 0] == 0
    with pytest.raises(InvalidValueError, match=r"row 1: temporal: unparsable date: '31/02/1991'"):
        cdist(["14/08/1991", "31/02/1991"], ["1991-08-14"], "temporal")
    with pytest.raises(ValueError, match="scale"):
        cdist(["14/08/1991"], ["1991-08-14"], "temporal", normalized=True)


def haversine(p, q, radius=6371.0088):
    (lat1, lon1), (lat2, lon2) = map(lambda x: (math.radians(x[0]), math.radians(x[1])), (p, q))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * radius * math.asin(math.sqrt(h))


def test_geographical_against_haversine_including_antimeridian_and_poles():
    rng = random.Random(6)
    a = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(30)] + [(0, 179.99), (89.999, 0)]
    b = [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(20)] + [(0, -179.99), (89.999, 180)]
    check_both_forms(a, b, "geographical", [[haversine(x, y) for y in b] for x in a], units="km")
    m = cdist([(0, 179.99), (89.999, 0)], [(0, -179.99), (89.999, 180)], "geographical", units="m")
    assert 2200 < m[0, 0] < 2240 and m[1, 1] < 225  # 0.02° of longitude; ~0.002° of arc at the pole
    with pytest.raises(InvalidValueError, match="latitude"):
        cdist([(95.0, 0.0)], [(0.0, 0.0)], "geographical")


def test_euclidean_on_numbers_and_tuples():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(20, 3)), rng.normal(size=(15, 3))
    ta, tb = [tuple(r) for r in a], [tuple(r) for r in b]
    check_both_forms(ta, tb, "euclidean", np.linalg.norm(a[:, None] - b[None], axis=-1))
    check_both_forms([1, 5.5], [2, -1], "euclidean", [[1, 2], [3.5, 6.5]])


@pytest.mark.parametrize("metric", ["levenshtein", "char_levenshtein", "damerau_levenshtein", "jaro_winkler",
                                    "soundex", "jaccard", "difflib", "exact"])
def test_string_metrics_take_awkward_and_missing_values(metric):
    values = AWKWARD + [None, float("nan")]
    missing = [not (isinstance(v, str) and v.strip()) for v in values]
    m = cdist(values, values, metric)
    assert m.shape == (len(values), len(values))
    # A missing value is no evidence: NaN, exactly in the rows and columns of missing values.
    if metric == "soundex":  # no Latin letter, no code: missing too
        missing = [mi or not soundex_code(v.replace(" ", "")) for mi, v in zip(missing, values)]
    missing = np.array(missing)
    np.testing.assert_array_equal(np.isnan(m), missing[:, None] | missing[None, :])
    normalized = cdist(values, values, metric, normalized=True)
    assert np.nanmax(normalized) <= 1.0
    fixed = cdist(values, values, metric, missing=0.5)
    assert (fixed[missing] == 0.5).all() and (fixed[:, missing] == 0.5).all() and not np.isnan(fixed).any()


def test_missing_numbers_and_dates():
    m = cdist(["14/08/1991", None, ""], ["14/08/1991", float("nan")], "temporal")
    np.testing.assert_array_equal(m, [[0, np.nan], [np.nan, np.nan], [np.nan, np.nan]])
    g = cdist([(1.0, 2.0), (None, 2.0)], [(1.0, 2.0)], "geographical", normalized=True, scale=1000, missing=1)
    assert g.tolist() == [[0.0], [1.0]]
    e = cdist(pd.Series([1.0, np.nan]), pd.Series([3.0]), "euclidean", missing=7)
    assert e.tolist() == [[2.0], [7.0]]


def test_user_callable_metric():
    m = cdist(["a", "bb"], ["ccc"], lambda x, y: abs(len(x) - len(y)))
    assert m.tolist() == [[2.0], [1.0]]


def test_unknown_metric_and_options_are_named():
    with pytest.raises(ValueError, match="unknown metric 'levenstein'"):
        cdist(["a"], ["b"], "levenstein")
    with pytest.raises(ValueError, match="units"):
        cdist([(0, 0)], [(0, 0)], "geographical", units="miles")
    with pytest.raises(ValueError, match="metric 'levenshtein'.*unexpected keyword"):
        cdist(["a"], ["b"], "levenshtein", units="km")


def test_vectorised_soundex_and_dates_equal_the_one_by_one_functions():
    from bigalign.values.dates import parse_date, parse_dates
    from bigalign.values.soundex import soundex_codes

    rng = random.Random(3)
    words = AWKWARD + ["Ashcraft", "Tymczak", "Pfister", "hwhw", "wah", "123", "Müller"]
    words += random_strings(rng, 3000, alphabet="abcdhwrstlmnpgéHW-' 1", max_len=14)
    for language in ("english", "french"):
        assert soundex_codes(words, language) == [soundex_code(w, language) for w in words]
    dates = ["14-08-1991", "1991-08-14", "19910814", "31/02/2000", "29/02/2000", "29/02/1900", "0001-01-01",
             "9999-12-31", "00/01/2000", "1-1-1", " 14/08/1991", "1991-08-14T10:00", "14 août 1991", "", None,
             "x", "٣/٤/١٩٩٠", "1.1.0000", dt.date(2000, 1, 2)]
    for _ in range(3000):
        y, m, d, sep = rng.randint(0, 9999), rng.randint(0, 14), rng.randint(0, 33), rng.choice("-/. ")
        dates.append(rng.choice([f"{y}{sep}{m}{sep}{d}", f"{d}{sep}{m}{sep}{y}", f"{y:04d}{m:02d}{d:02d}"]))
    # The fixed widths (read from their bytes): zero-padded, mixed separators, near misses of each form.
    for _ in range(3000):
        y, m, d = rng.randint(0, 9999), rng.randint(0, 14), rng.randint(0, 33)
        s1, s2 = rng.choice("-/. x0"), rng.choice("-/. x0")
        dates.append(rng.choice([f"{d:02d}{s1}{m:02d}{s2}{y:04d}", f"{y:04d}{s1}{m:02d}{s2}{d:02d}",
                                 f"{y:04d}{m:02d}{d:02d}", f"{y:04d}{m:02d}{d:01d}{s1}", f"{d:02d}{m:02d}{y:04d}",
                                 f"{y:03d}{s1}{m:01d}{s2}{d:03d}", f"{d:02d}{s1}{m:02d}{s2}{y:04d}"[::-1]]))
    dates += ["29/02/2000", "29-02-1900", "2000.02.29", "2100 02 29", "0000-01-01", "٣/٤/١٩٩٠ ", "é1/01/2000"]
    for dayfirst in (True, False):
        expected = []
        for value in dates:
            try:
                date = parse_date(value, dayfirst)
                expected.append(math.nan if date is None else date.toordinal())
            except ValueError:
                expected.append(-math.inf)
        np.testing.assert_array_equal(parse_dates(pd.Series(dates, dtype=object), dayfirst), expected)
        text = [v for v in dates if v is None or isinstance(v, str)]  # (all text: the fixed widths' path)
        np.testing.assert_array_equal(parse_dates(pd.Series(text, dtype="string[pyarrow]"), dayfirst),
                                      [e for v, e in zip(dates, expected) if v is None or isinstance(v, str)])


def test_text_of_columns_at_once_equals_value_by_value():
    from bigalign.values.text import PY_WHITESPACE, as_text, joined_text

    assert PY_WHITESPACE == "".join(c for c in map(chr, range(0x110000)) if c.isspace())
    rng = random.Random(8)
    blanks = list(PY_WHITESPACE) + [PY_WHITESPACE, " \x1c ", "\u200b"]  # (a zero-width space is not blank)
    first = AWKWARD + blanks + [None, float("nan")] + random_strings(rng, 500, alphabet="ab \t\x1f\xa0é")
    second = random_strings(rng, len(first), alphabet="cd \x0b\u3000")
    frame = pd.DataFrame({"x": first, "y": second}, dtype=object)

    def reference(*values):
        parts = [t for t in map(as_text, values) if t is not None]
        return " ".join(parts) if parts else None

    def got(series):
        return [None if pd.isna(v) else v for v in series.tolist()]

    assert got(joined_text(frame)) == [reference(x, y) for x, y in zip(first, second)]
    assert got(joined_text(frame["x"])) == [reference(x) for x in first]
    assert got(joined_text(pd.Series(first + [12], dtype=object))) == [reference(x) for x in first] + ["12"]


@pytest.mark.parametrize("metric", ["char_levenshtein", "damerau_levenshtein", "jaro_winkler", "difflib", "exact",
                                    "levenshtein"])
def test_a_few_pairs_alone_get_the_distances_they_get_among_many(metric):
    """Up to FEW_VALUES pairs (a lookup's) are compared pair by pair in Python, not through the columns'
    arrays: each pair alone gets its distance among many, bit for bit, missing and blank values included."""
    from bigalign.values.columns import FEW_VALUES, is_missing

    rng = random.Random(6)
    a = random_strings(rng, 40) + AWKWARD + [None, "x", None, "same"]
    b = random_strings(rng, 40) + AWKWARD[::-1] + ["x", None, None, "same"]
    assert len(a) == len(b) > FEW_VALUES
    for normalized in (False, True):
        together = cpdist(a, b, metric, normalized=normalized)
        alone = [cpdist([x], [y], metric, normalized=normalized)[0] for x, y in zip(a, b)]
        np.testing.assert_array_equal(alone, together)
        np.testing.assert_array_equal(np.isnan(together), [is_missing(x) or is_missing(y) for x, y in zip(a, b)])
        assert 0 < np.count_nonzero(together == 0) and np.count_nonzero(together > 0) > len(a) // 2
