"""Language tags: which literals ``lang = ["fr", "en", ""]`` keeps, and in what order.

A set's ``lang`` filters the rows of its query as they are read; a
treatment's filters the values of its attribute, by the tags staged beside
them (``name_lang``, ``name_datatype``), so that one attribute compares
French and English names while another of the same set reads every label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TEXT_TYPES", "check_lang", "tag_ranks"]

# The datatypes of text literals, which ``lang`` filters (a plain literal of SPARQL 1.0 JSON has none);
# other literals (numbers, dates) are kept whatever their place.
TEXT_TYPES = (None, "http://www.w3.org/2001/XMLSchema#string", "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString")


def check_lang(lang: Any) -> tuple[str, ...]:
    """``lang`` as given in a job or to a treatment: a non-empty list of tags, lower-cased."""
    if isinstance(lang, str) or not isinstance(lang, (list, tuple)) or not lang or not all(
            isinstance(tag, str) for tag in lang):
        raise ValueError(f"is a list of language tags in order of preference (\"\": a literal without one), such as "
                         f"[\"fr\", \"en\", \"\"]; got {lang!r}")
    return tuple(tag.lower() for tag in lang)


def _rank(tag: str, lang: Sequence[str]) -> int:
    for rank, wanted in enumerate(lang):
        if tag == wanted or (wanted and tag.startswith(wanted + "-")):
            return rank
    return -1


def tag_ranks(tags: Any, datatypes: Any, lang: Sequence[str]) -> np.ndarray:
    """Each literal's language's place in ``lang`` (``""``: none; a tag matches its subtags, "en" matches
    "en-GB"), -1 when a text literal is in none of them; a literal that is not text (its datatype is a
    number's, a date's) ranks 0. Each distinct tag is ranked once (a set holds few)."""
    codes, uniques = pd.factorize(pd.Series(tags, dtype=object).fillna("").astype(str).str.lower())
    ranks = np.array([_rank(tag, lang) for tag in uniques], dtype=np.int16)[codes] if len(codes) else \
        np.empty(0, np.int16)
    if datatypes is not None:
        kinds = pd.Series(datatypes, dtype=object)
        ranks[~(kinds.isna() | kinds.isin(TEXT_TYPES[1:])).to_numpy()] = 0
    return ranks
