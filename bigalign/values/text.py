"""Text values: blank text, several columns as one text, accents, Nazca's words.

The Arrow forms (:func:`text_array`, :func:`joined_text`,
:func:`split_after_apostrophes`) give what the Python forms give, value by
value: Arrow's Unicode white space is Python's (``str.isspace``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .columns import FEW_VALUES, TEXT, arrow_text, is_missing, map_distinct

__all__ = ["APOSTROPHES", "PY_WHITESPACE", "as_text", "joined_text", "joined_value", "nazca_words",
           "split_after_apostrophes", "strip_accents", "text_array"]


def as_text(value: Any) -> Any:
    """A value as one text (a list or tuple joined by spaces); None when missing or blank."""
    if type(value) is str:  # the common case, first
        return value if value.strip() else None
    if is_missing(value):
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    text = str(value)
    return text if text.strip() else None


# What str.strip() strips (str.isspace()): Unicode's white space, and \x1c-\x1f.
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                  "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def text_array(values: pd.Series) -> pa.Array:
    """:func:`as_text` of each value, as Arrow text; at once when the values are text."""
    text = arrow_text(values)
    if text is None:  # not all text
        return pa.array(map_distinct(values, as_text).to_numpy(), type=pa.string())
    blank = pc.equal(pc.utf8_trim(text, PY_WHITESPACE), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), text)


def joined_text(values: pd.Series | pd.DataFrame) -> pd.Series:
    """One text per record, missing when blank: several columns are joined
    by spaces (missing parts skipped), as Arrow text."""
    columns = [values] if isinstance(values, pd.Series) else [values[c] for c in values.columns]
    if len(values) <= FEW_VALUES:  # (a few records value by value: a column costs a dozen Arrow calls)
        rows = list(zip(*(column.tolist() for column in columns)))
        if all(type(v) is str or is_missing(v) for row in rows for v in row):
            return pd.Series(pd.array([joined_value(row) for row in rows], dtype=TEXT), index=values.index)
    joined = text_array(columns[0])
    for column in columns[1:]:  # (null_handling="skip" drops all-null rows in pyarrow 26)
        part = text_array(column)
        joined = pc.coalesce(pc.binary_join_element_wise(joined, part, " "), joined, part)
    return pd.Series(TEXT.__from_arrow__(joined), index=values.index)


def joined_value(values: Sequence[Any]) -> str | None:
    """:func:`joined_text` of one record's values: :func:`as_text` of each, those present joined by spaces."""
    texts = [t for t in map(as_text, values) if t is not None]
    return " ".join(texts) if texts else None


# Nazca's words: a value is split at white space, then after each apostrophe, which
# stays on the first part (French elision: "l'été" → "l'", "été"; "james'" → "james'", "").
# The typographic apostrophe counts as one.
APOSTROPHES = "'’"
_AFTER_APOSTROPHE = re.compile(f"(?<=[{APOSTROPHES}])")


def nazca_words(text: str) -> list[str]:
    """The words of ``text`` as Nazca's tokenizer finds them (see :data:`APOSTROPHES`)."""
    return [part for chunk in text.split() for part in _AFTER_APOSTROPHE.split(chunk)]


def split_after_apostrophes(words: pa.Array, owner: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """:func:`nazca_words`'s second step in Arrow: words (without white space)
    cut after each apostrophe, and the value each part belongs to."""
    if not pc.any(pc.match_substring_regex(words, f"[{APOSTROPHES}]")).as_py():
        return words, owner
    # \x1f is white space (str.isspace), so never inside a word: a safe place to cut.
    parts = pc.split_pattern(pc.replace_substring_regex(words, f"([{APOSTROPHES}])", "\\1\x1f"), "\x1f")
    return pc.list_flatten(parts), owner[pc.list_parent_indices(parts).to_numpy()]


# Letters that Unicode does not decompose into a base letter and a mark.
_LIGATURES = str.maketrans(
    {
        "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
        "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
        "Þ": "TH", "ı": "i", "ŀ": "l", "Ŀ": "L",
    }
)


def strip_accents(text: str) -> str:
    """Accents stripped from Latin letters; other scripts kept as they are."""
    # Drop combining marks after compatibility decomposition; characters of
    # other scripts (Cyrillic, Greek, CJK...) have no ASCII form and are kept
    # as they are rather than raising or vanishing.
    text = str(text)
    if text.isascii():  # most values: nothing to strip
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))
