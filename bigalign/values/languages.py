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


def check_lang(lang: Any, what: str) -> tuple[str, ...]:
    """``lang`` as given in a job or to a treatment: a non-empty list of tags, lower-cased."""
    if isinstance(lang, str) or not isinstance(lang, (list, tuple)) or not lang or not all(
            isinstance(tag, str) for tag in lang):
        raise ValueError(f"{what}: 'lang' is a list of language tags in order of preference (\"\": a literal "
                         f"without one), such as [\"fr\", \"en\", \"\"]; got {lang!r}")
    return tuple(tag.lower() for tag in lang)


def tag_ranks(tags: Any, datatypes: Any, lang: Sequence[str]) -> np.ndarray:
    """Each literal's language's place in ``lang`` (``""``: none; a tag matches its subtags, "en" matches
    "en-GB"), -1 when a text literal is in none of them; a literal that is not text (its datatype is a
    number's, a date's) ranks 0."""
    tag = pd.Series(tags, dtype=object).fillna("").astype(str).str.lower().to_numpy(dtype=object)
    ranks = np.full(len(tag), -1, dtype=np.int16)
    for rank in range(len(lang) - 1, -1, -1):  # (the first place a tag matches wins)
        wanted = lang[rank]
        hit = tag == wanted
        if wanted:
            hit |= np.fromiter((t.startswith(wanted + "-") for t in tag), dtype=bool, count=len(tag))
        ranks[hit] = rank
    if datatypes is not None:
        kinds = pd.Series(datatypes, dtype=object)
        ranks[~(kinds.isna() | kinds.isin(TEXT_TYPES[1:])).to_numpy()] = 0
    return ranks
