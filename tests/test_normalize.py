import random

import pandas as pd
import pytest

from bigalign.normalize import (
    lunormalize,
    make_normalizer,
    normalize_column,
    remove_after,
    rgxformat,
    roundstr,
    simplify,
    tokenize,
    unormalize,
)
from bigalign.values.columns import FEW_VALUES, is_missing


def run(normalizer, values):
    """The normalized values, missing ones as None (text may come back as Arrow text, NaN or NA when missing)."""
    out = normalizer(pd.Series(values, dtype=object))
    return [None if pd.isna(v) else v for v in out.tolist()]


def test_unormalize_strips_accents_and_keeps_other_scripts():
    assert run(unormalize(), ["Élodie Ñandú", "Straße", "Œuvre", "Łódź", "Москва", "東京", None]) == [
        "Elodie Nandu", "Strasse", "OEuvre", "Lodz", "Москва", "東京", None]
    assert run(lunormalize(), ["Éric DUPONT", "Ἀθῆναι"]) == ["eric dupont", "αθηναι"]


def test_simplify_with_stopwords_and_lemmas():
    # Nazca's default: French stop-words removed (its list)
    assert run(simplify(), ["  Le Petit-Prince, (1943)!  ", "de graaff street", "Été"]) == [
        "petit prince 1943", "graaff street", ""]
    assert run(simplify(remove_stopwords=False), ["  Le Petit-Prince, (1943)!  "]) == ["le petit prince 1943"]
    assert run(simplify(remove_stopwords=True), ["Le Petit Prince de la Lune"]) == ["petit prince lune"]
    assert run(simplify(remove_stopwords=True, language="english"), ["The Lord of the Rings"]) == ["lord rings"]
    assert run(simplify(lemmas={"rings": "ring"}), ["Rings"]) == ["ring"]
    with pytest.raises(ValueError, match="language"):
        simplify(language="klingon")
    with pytest.raises(ValueError, match="remove_stopwords"):
        simplify(remove_stopwords="no")


def test_remove_after_tokenize_roundstr_rgxformat():
    assert run(remove_after("("), ["Force ennemie (Plume)", "La Maternelle"]) == ["Force ennemie", "La Maternelle"]
    assert run(remove_after("AND"), ["I like cats and dogs"]) == ["I like cats"]
    assert run(tokenize(), ["Jean-Pierre, l'ami: du 3e!"]) == ["Jean-Pierre l'ami du 3e"]
    assert run(roundstr(2), [3.14159, "2.5"]) == ["3.14", "2.5"]
    assert run(roundstr(), [2.6]) == ["3"]
    assert run(rgxformat(r"(?P<d>\d+)/(?P<m>\d+)/(?P<y>\d+)", "{y}-{m}-{d}"), ["14/08/1991", "x"]) == [
        "1991-08-14", "x"]


def test_make_normalizer_forms():
    assert run(make_normalizer("simplify"), ["A-B"]) == ["a b"]
    assert run(make_normalizer({"name": "remove_after", "sub": "("}), ["a (b)"]) == ["a"]
    assert run(make_normalizer(str.upper), ["ab", None]) == ["AB", None]
    with pytest.raises(ValueError, match="unknown normalizer 'simplyfy'"):
        make_normalizer("simplyfy")
    with pytest.raises(ValueError, match="remove_after"):
        make_normalizer({"name": "remove_after"})


def test_chains_on_whole_columns_equal_value_by_value():
    rng = random.Random(5)
    values = ["Élodie  O'Brien", "JEAN_PIERRE", "Москва!", "a\x1fb\x0bc", None, float("nan"), 12, "  ",
              "ß-Straße"]
    values += ["".join(rng.choice("aBé _-.,'\t1") for _ in range(rng.randint(0, 10))) for _ in range(2000)]
    # All text, ASCII or not, then all ASCII: the built-ins' Arrow form (see normalize_ascii) runs on these.
    text = [v for v in values if isinstance(v, str)]
    text += ["".join(rng.choice("aZ09 _-.,'!\t\n\x0b\x0c\r\x1c\x1f~") for _ in range(rng.randint(0, 12)))
             for _ in range(2000)]
    # words, stop-words among them
    words = ["de", "La", "le", "The", "of", "été", "Paris", "rue", "x", "", "-", "'"]
    text += [" ".join(rng.choice(words) for _ in range(rng.randint(0, 5))) for _ in range(1000)]
    ascii_text = [v for v in text if v.isascii()]
    chains = [["lunormalize", "simplify"], ["unormalize"], ["lower"], ["simplify"],
              [{"name": "simplify", "remove_stopwords": False}],
              [{"name": "simplify", "language": "english"}, "lunormalize"],
              [lambda v: None if "1" in str(v) else v, "lunormalize"]]
    half = len(text) // 2  # Arrow text in two chunks, as Dask partitions hold it
    arrow_text = pd.concat([pd.Series(text[:half], dtype="string[pyarrow]"),
                            pd.Series(text[half:], dtype="string[pyarrow]")], ignore_index=True)
    for column_values, column in ((values, None), (text, None), (ascii_text, None), (text, arrow_text)):
        column = pd.Series(column_values, dtype=object) if column is None else column
        for chain in chains:
            normalizers = [make_normalizer(n) for n in chain]

            def one_by_one(value):
                if value is None or value != value:
                    return None
                for n in normalizers:
                    value = n.normalize_value(value)
                    # a value a user's normalizer makes missing (None, NaN, blank) stays missing
                    if value is None or not n.keeps_values and is_missing(value):
                        return None
                return value

            got = [None if pd.isna(v) else v for v in normalize_column(column, normalizers).tolist()]
            assert got == [one_by_one(v) for v in column_values], chain
            for start in (0, 9, 2000, 4010):  # a few values (a lookup's): normalized in Python, the same
                few = column.iloc[start:start + FEW_VALUES].reset_index(drop=True)
                got = [None if pd.isna(v) else v for v in normalize_column(few, normalizers).tolist()]
                assert got == [one_by_one(v) for v in column_values[start:start + FEW_VALUES]], chain
