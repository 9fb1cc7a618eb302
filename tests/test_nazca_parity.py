"""bigalign against Nazca's rules where words hold apostrophes, and simplify's defaults.

Nazca's rules are written plainly here (its tokenizer splits at white space,
then after each apostrophe; its word-wise metrics compare two values without
a space whole); where Nazca itself is installed, it is checked too.
"""

import random
import string

import numpy as np
import pandas as pd
import pytest
from test_distances import max_of_minima
from test_distances import nazca_levenshtein as levenshtein
from test_distances import nazca_words as words

from bigalign import cdist, cpdist
from bigalign.normalize import STOPWORDS, simplify
from bigalign.values.soundex import soundex_code
from bigalign.values.text import nazca_words

REAL_LOOKING = ["o'connor circuit", "carr crescent", "carroll street", "o'shanassy street", "l'étranger",
                "L’Étranger", "d’artagnan", "d'Artagnan", "jean-pierre o'neil", "rue de l'église",
                "james' place", "''x", "rock'n'roll", "o'connor", "oconnor", "o connor", "étranger",
                "aujourd'hui", "de graaff street", "van der berg", "saint-exupéry", "l'", "o'brien o'neil"]


def jaccard(a, b):
    sa, sb = set(words(a)), set(words(b))
    return 1 - len(sa & sb) / len(sa | sb)


def soundex(a, b, language="english"):
    def code_distance(x, y):
        return float(soundex_code(x, language) != soundex_code(y, language))

    if " " not in a and " " not in b:
        return code_distance(a, b)
    return max_of_minima(words(a), words(b), code_distance)


def nazca_simplify(text, stopwords=STOPWORDS["french"]):
    text = "".join(" " if c in string.punctuation + "’" else c for c in text.lower())
    return [w for w in text.split() if w not in stopwords]


def random_text(rng, n, alphabet="abcéo'’- ", max_len=14):
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len))) for _ in range(n)]
    return [t for t in out if t.strip()]


def both_forms(a, b, metric, expected):
    dense = cdist(a, b, metric)
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    pairs = cpdist([x for x in a for _ in b], [y for _ in a for y in b], metric)
    np.testing.assert_array_equal(pairs, dense.ravel())


def test_words_split_after_apostrophes():
    assert nazca_words("o'connor circuit") == ["o'", "connor", "circuit"]
    assert nazca_words("l’étranger") == ["l’", "étranger"]
    assert nazca_words("james' ''x") == ["james'", "", "'", "'", "x"]
    rng = random.Random(0)
    for text in random_text(rng, 500) + REAL_LOOKING:
        assert nazca_words(text) == words(text)


def test_levenshtein_and_jaccard_follow_nazcas_words():
    rng = random.Random(1)
    a = random_text(rng, 60) + REAL_LOOKING
    b = random_text(rng, 40, "abco'’ \t") + REAL_LOOKING
    both_forms(a, b, "levenshtein", [[levenshtein(x, y) for y in b] for x in a])
    normalized = [[levenshtein(x, y) / max(len(x), len(y)) for y in b] for x in a]
    np.testing.assert_allclose(cdist(a, b, "levenshtein", normalized=True), normalized, rtol=1e-6)
    both_forms(a, b, "jaccard", [[jaccard(x, y) for y in b] for x in a])
    # The figures: Nazca 5 and 0.75
    assert cdist(["carr crescent"], ["o'connor circuit"], "levenshtein")[0, 0] == 5
    assert cdist(["carroll street"], ["o'shanassy street"], "jaccard")[0, 0] == pytest.approx(0.75)
    assert cdist(["o'connor"], ["oconnor"], "levenshtein")[0, 0] == 1  # no space: whole values


@pytest.mark.parametrize("language", ["english", "french"])
def test_soundex_on_several_words_is_nazcas_max_of_minima(language):
    rng = random.Random(2)
    names = ["robert", "rupert", "dupont", "dupond", "o'connor", "oconnor", "l'église", "martin", "marten", "x'"]
    a = [" ".join(rng.choice(names) for _ in range(rng.randint(1, 3))) for _ in range(60)] + REAL_LOOKING
    b = [" ".join(rng.choice(names) for _ in range(rng.randint(1, 3))) for _ in range(40)] + REAL_LOOKING
    both_forms(a, b, "soundex", [[soundex(x, y, language) for y in b] for x in a])
    assert cdist(["Paul Dupont"], ["Dupond Paul"], "soundex", language=language)[0, 0] == 0
    # A value with no letter has no code: it is missing (no evidence).
    assert np.isnan(cdist(["'' 42"], ["'' 42"], "soundex")[0, 0])


def test_simplify_removes_nazcas_french_stopwords_by_default():
    rng = random.Random(3)
    vocabulary = ["De", "la", "Le", "graaff", "street", "l'étranger", "d’artagnan", "Été", "à", "Paris", "tout",
                  "rue", "(1943)", "saint-exupéry", "x.y", "les", "états", "o'connor"]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 6))) for _ in range(800)]
    texts += REAL_LOOKING
    for normalizers in (["simplify"], ["lunormalize", "simplify"]):
        from bigalign.normalize import make_normalizer, normalize_column

        chain = [make_normalizer(n) for n in normalizers]
        got = normalize_column(pd.Series(texts, dtype=object), chain).tolist()
        for text, value in zip(texts, got):
            expected = text if len(chain) == 1 else chain[0].normalize_value(text)
            assert value.split() == nazca_simplify(expected), text
    assert simplify().normalize_value("de graaff street") == "graaff street"
    assert simplify(remove_stopwords=False).normalize_value("de graaff street") == "de graaff street"


def test_against_nazca_itself():
    nazca = pytest.importorskip("nazca.utils.distances")
    normalize = pytest.importorskip("nazca.utils.normalize")
    rng = random.Random(4)
    # Nazca's tokenizer knows the ASCII apostrophe only; its Soundex needs letters.
    a = random_text(rng, 50, "abcéo'- ") + [t for t in REAL_LOOKING if "’" not in t]
    b = random_text(rng, 40, "abco' ") + [t for t in REAL_LOOKING if "’" not in t]
    np.testing.assert_allclose(cdist(a, b, "levenshtein"), [[nazca.levenshtein(x, y) for y in b] for x in a])
    np.testing.assert_allclose(cdist(a, b, "jaccard"), [[nazca.jaccard(x, y) for y in b] for x in a], rtol=1e-6)
    names = ["robert", "rupert", "dupont", "dupond", "martin", "marten", "ashcraft", "tymczak"]
    for language in ("english", "french"):
        for count in (1, 2, 3):  # (Nazca fails on padded words: same counts only)
            x = [" ".join(rng.choice(names) for _ in range(count)) for _ in range(30)]
            y = [" ".join(rng.choice(names) for _ in range(count)) for _ in range(30)]
            np.testing.assert_array_equal(cdist(x, y, "soundex", language=language),
                                          [[nazca.soundex(p, q, language) for q in y] for p in x])
    texts = [t for t in REAL_LOOKING if "’" not in t] + ["Le Petit Prince de la Lune", "Tout état, été (1943)!"]
    for text in texts:
        assert simplify().normalize_value(text).split() == normalize.simplify(text).split(), text
