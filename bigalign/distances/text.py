"""String metrics: rapidfuzz's kernels (Levenshtein, Damerau, Jaro–Winkler, Indel), Nazca's word-level
Levenshtein, exact, Soundex and Jaccard."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Indel, JaroWinkler, Levenshtein

from ..values.columns import FEW_VALUES, arrow_text, is_na
from ..values.soundex import SOUNDEX_CODES, soundex_code
from ..values.text import APOSTROPHES, joined_text, nazca_words, split_after_apostrophes
from .base import Metric

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["CharLevenshtein", "DamerauLevenshteinMetric", "DifflibMetric", "ExactMetric", "JaccardMetric",
           "JaroWinklerMetric", "NazcaLevenshtein", "RapidfuzzMetric", "SoundexMetric", "StringMetric"]


class StringMetric(Metric):
    """Metrics over text; encoded as one object column ``v``.

    An attribute of several columns (given name and surname) is compared as
    their values joined by spaces.
    """

    def encode(self, values: pd.Series | pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"v": joined_text(values)}, index=values.index)

    @staticmethod
    def _strings(encoded: pd.DataFrame) -> list[str]:
        return StringMetric._string_array(encoded).tolist()

    @staticmethod
    def _string_array(encoded: pd.DataFrame) -> np.ndarray:
        """Each value as a Python string, "" where missing: an object array, made by Arrow when the values
        are text (a loop in Python cost rapidfuzz's metrics more than their distances)."""
        text = arrow_text(encoded["v"])
        if text is None:  # (not all text: "" for what is not a string)
            return np.array([v if isinstance(v, str) else "" for v in encoded["v"].tolist()], dtype=object)
        return text.fill_null("").to_numpy(zero_copy_only=False)


class RapidfuzzMetric(StringMetric):
    """A string metric that is one rapidfuzz scorer."""

    # Staticmethods: rapidfuzz's scorers would otherwise bind as methods.
    scorer: Any = None
    normalized_scorer: Any = None

    def _scorer(self, normalized: bool) -> tuple[Any, Any]:
        if normalized or self.bounded:
            return self.normalized_scorer, np.float32
        return self.scorer, np.int32

    def _cdist(self, a, b, normalized):
        scorer, dtype = self._scorer(normalized)
        return process.cdist(self._strings(a), self._strings(b), scorer=scorer, dtype=dtype, workers=1)

    def _cpdist(self, a, b, ia, ib, normalized):
        scorer, dtype = self._scorer(normalized)
        if len(ia) <= FEW_VALUES:  # (pair by pair: a column's strings cost a lookup's few pairs more than they do)
            return np.array([scorer(x, y) for x, y in zip(_few_strings(a, ia), _few_strings(b, ib))], dtype=dtype)
        strings_a = self._string_array(a)
        strings_b = strings_a if b is a else self._string_array(b)  # (a deduplication: one set, read once)
        return _cpdist_in_calls(strings_a, ia, strings_b, ib, scorer, dtype)


class CharLevenshtein(RapidfuzzMetric):
    """Character edit distance (normalized: divided by the longer length)."""

    name = "char_levenshtein"
    scorer, normalized_scorer = staticmethod(Levenshtein.distance), staticmethod(Levenshtein.normalized_distance)


class DamerauLevenshteinMetric(RapidfuzzMetric):
    """Damerau–Levenshtein (unrestricted transpositions)."""

    name = "damerau_levenshtein"
    scorer = staticmethod(DamerauLevenshtein.distance)
    normalized_scorer = staticmethod(DamerauLevenshtein.normalized_distance)


class JaroWinklerMetric(RapidfuzzMetric):
    """1 − Jaro–Winkler similarity."""

    name = "jaro_winkler"
    bounded = True
    normalized_scorer = staticmethod(JaroWinkler.normalized_distance)


class DifflibMetric(RapidfuzzMetric):
    """1 − ratio, where ratio = 2·LCS / (len a + len b).

    This is the optimal form of :class:`difflib.SequenceMatcher`'s ratio:
    difflib finds its matching blocks greedily, so its ratio is at most this
    one and equal whenever its greedy blocks form a longest common
    subsequence.
    """

    name = "difflib"
    bounded = True
    normalized_scorer = staticmethod(Indel.normalized_distance)


class NazcaLevenshtein(StringMetric):
    """Nazca's Levenshtein: word order does not matter for multi-word values.

    Values are split into words as Nazca splits them (white space, then after
    each apostrophe: see :func:`nazca_words`); the word × word edit-distance
    matrix is built, the shorter word list padded with ``""``, and the
    distance is the largest of the row minima and column minima. When
    neither value has a space, it is the plain edit distance of the whole
    values (Nazca's rule: ``o'connor`` and ``oconnor`` are at distance 1).
    Normalized: divided by the longer value's length.
    """

    name = "levenshtein"
    # Token pairs computed at once; bounds the memory of one dense block.
    max_token_pairs = 4_000_000

    @staticmethod
    def _normalize(raw: np.ndarray, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        longest = np.maximum(la, lb).astype(np.float32)
        out = raw.astype(np.float32)
        np.divide(out, longest, out=out, where=longest > 0)
        return out

    def _cdist(self, a, b, normalized):
        text_a, text_b = _text_column(a), _text_column(b)
        out = np.empty((len(text_a), len(text_b)), dtype=np.float32)
        wb = _Words(text_b)
        rows = max(1, self.max_token_pairs // max(1, len(wb.codes)))
        for start in range(0, len(text_a), rows):
            wa = _Words(text_a.slice(start, rows))
            raw = _token_max_min(wa, wb)
            _compare_whole_values(raw, wa, wb)
            out[start:start + rows] = self._normalize(raw, wa.value_lengths[:, None], wb.value_lengths[None, :]) \
                if normalized else raw
        return out

    def _cpdist(self, a, b, ia, ib, normalized):
        if len(ia) <= FEW_VALUES:  # (the word tables' few dozen Arrow calls cost a lookup's pair ~1.5 ms)
            values_a, values_b = _few_strings(a, ia), _few_strings(b, ib)
            raw = np.array([_nazca_distance(x, y) for x, y in zip(values_a, values_b)], dtype=np.int64)
            if normalized:
                return self._normalize(raw, np.array([len(x) for x in values_a]), np.array([len(y) for y in values_b]))
            return raw.astype(np.float32)
        text_a = _text_column(a)
        text_b = text_a if b is a else _text_column(b)
        # Equal values are at distance 0, words or not: most candidate pairs of a good blocking
        # are matches, and their equal values need no word pair compared, nor their words found
        # (the demo's candidates at 1M: a third of the addresses differ).
        differ = np.flatnonzero(pc.not_equal(text_a.take(ia), text_b.take(ib)).to_numpy(zero_copy_only=False))
        if b is a:  # (a deduplication: one set, its values split once)
            rows, inverse = np.unique(np.concatenate([ia[differ], ib[differ]]), return_inverse=True)
            wa = wb = _Words(text_a.take(rows))
            ia_differ, ib_differ = inverse[:len(differ)], inverse[len(differ):]
        else:
            rows_a, ia_differ = np.unique(ia[differ], return_inverse=True)
            rows_b, ib_differ = np.unique(ib[differ], return_inverse=True)
            wa, wb = _Words(text_a.take(rows_a)), _Words(text_b.take(rows_b))
        words = _WordDistances(wa, wb, int((wa.counts[ia_differ] * wb.counts[ib_differ]).sum()))
        step = self.max_token_pairs // 256  # (pairs at once, ~15k: a few words each, their word pairs bounded)
        raw = np.zeros(len(ia), dtype=np.int64)
        for s in range(0, len(differ), step):
            raw[differ[s:s + step]] = self._raw_pairs(wa, wb, ia_differ[s:s + step], ib_differ[s:s + step], words)
        if normalized:
            lengths_a = pc.utf8_length(text_a).to_numpy()
            lengths_b = lengths_a if b is a else pc.utf8_length(text_b).to_numpy()
            return self._normalize(raw, lengths_a[ia], lengths_b[ib])
        return raw.astype(np.float32)

    @staticmethod
    def _raw_pairs(wa: _Words, wb: _Words, ia: np.ndarray, ib: np.ndarray, words: _WordDistances) -> np.ndarray:
        """Nazca's edit distances of pairs of values (rows ``ia`` of ``wa``, ``ib`` of ``wb``)."""
        ka, kb = wa.counts[ia], wb.counts[ib]
        # Pairs grouped by shape (words of a × words of b): a group's word distances
        # are one dense (pairs, ka, kb) array, reduced along its axes.
        shape = ka * (int(kb.max(initial=0)) + 1) + kb
        order = np.argsort(shape, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(shape[order])) + 1) if len(order) else []
        words_a = [wa.starts[ia[g]][:, None] + np.arange(ka[g[0]]) for g in groups]  # (pairs, ka) word indices
        words_b = [wb.starts[ib[g]][:, None] + np.arange(kb[g[0]]) for g in groups]
        cells = [(np.repeat(wa.codes[x], y.shape[1], axis=1).ravel(), np.tile(wb.codes[y], (1, x.shape[1])).ravel())
                 for x, y in zip(words_a, words_b)]
        d = words.of(np.concatenate([c[0] for c in cells] or [np.empty(0, np.int64)]),
                     np.concatenate([c[1] for c in cells] or [np.empty(0, np.int64)]))
        raw = np.zeros(len(ia), dtype=np.int64)
        at = 0
        for g, x, y in zip(groups, words_a, words_b):
            m, p, q = len(g), x.shape[1], y.shape[1]
            block = d[at:at + m * p * q].reshape(m, p, q)
            at += m * p * q
            row_min, col_min = block.min(axis=2), block.min(axis=1)
            # Padding: a shorter list gets "" words; "" is at distance len(w) of a word w,
            # so its own minimum is the other side's shortest word.
            if p < q:
                col_min = np.minimum(col_min, wb.lengths[y])
                raw[g] = np.maximum(np.maximum(row_min.max(axis=1), col_min.max(axis=1)), wb.shortest[ib[g]])
            elif q < p:
                row_min = np.minimum(row_min, wa.lengths[x])
                raw[g] = np.maximum(np.maximum(row_min.max(axis=1), col_min.max(axis=1)), wa.shortest[ia[g]])
            else:
                raw[g] = np.maximum(row_min.max(axis=1), col_min.max(axis=1))
        whole = (wa.whole[ia] | wb.whole[ib]) & ~wa.spaced[ia] & ~wb.spaced[ib]
        if whole.any():
            k = np.flatnonzero(whole)
            raw[k] = process.cpdist(wa.text.take(ia[k]).to_pylist(), wb.text.take(ib[k]).to_pylist(),
                                    scorer=Levenshtein.distance, dtype=np.int32, workers=1)
        return raw


def _few_values(encoded: pd.DataFrame, rows: np.ndarray) -> list:
    """The values of rows ``rows`` of an encoded column ``v``, without the whole column's."""
    return encoded["v"].array.take(rows).tolist()


def _few_strings(encoded: pd.DataFrame, rows: np.ndarray) -> list[str]:
    """:func:`_few_values` as strings, "" where not text (as :meth:`StringMetric._string_array` and
    :func:`_text_column` read them)."""
    return [v if isinstance(v, str) else "" for v in _few_values(encoded, rows)]


def _nazca_distance(a: str, b: str) -> int:
    """One pair's distance by :class:`NazcaLevenshtein`'s rule, in Python: what its tables give, for a few pairs."""
    if a == b:
        return 0
    if " " not in a and " " not in b:
        return Levenshtein.distance(a, b)
    words_a, words_b = nazca_words(a) or [""], nazca_words(b) or [""]
    longest = max(len(words_a), len(words_b))  # (the shorter list padded with "")
    words_a, words_b = words_a + [""] * (longest - len(words_a)), words_b + [""] * (longest - len(words_b))
    cells = [[Levenshtein.distance(x, y) for y in words_b] for x in words_a]
    return max(max(min(row) for row in cells), max(min(column) for column in zip(*cells)))


def _text_column(encoded: pd.DataFrame) -> pa.Array:
    """A string metric's encoded values as Arrow text, "" where missing."""
    text = arrow_text(encoded["v"])
    if text is None:
        text = pa.array(StringMetric._strings(encoded), type=pa.string())
    return text.fill_null("")


class _Words:
    """The words of text values, as :func:`nazca_words` finds them (Arrow's
    Unicode white space is Python's); a value without words has one, "".

    ``codes`` (into ``vocabulary``), ``lengths``: each word's, value after value;
    ``counts``, ``starts``: each value's words; ``shortest``: its shortest
    word's length; ``value_lengths``: its length. Nazca compares two values
    without a space (U+0020) whole, as one word: ``whole`` marks the values
    without a space whose words are not just the value itself (``o'connor``,
    a tab), for which that differs.
    """

    def __init__(self, text: pa.Array):
        self.text = text
        lists = pc.utf8_split_whitespace(text)
        words = pc.list_flatten(lists)
        owner = pc.list_parent_indices(lists).to_numpy()
        present = pc.not_equal(words, "").to_numpy(zero_copy_only=False)  # runs of spaces give "" words
        words, owner = words.filter(present), owner[present]
        encoded = words.dictionary_encode()
        if pc.any(pc.match_substring_regex(encoded.dictionary, f"[{APOSTROPHES}]")).as_py():  # (looked for
            words, owner = split_after_apostrophes(words, owner)  # among the distinct words: few have one)
            encoded = words.dictionary_encode()
        self.vocabulary = encoded.dictionary.to_pylist() + [""]
        found = np.bincount(owner, minlength=len(text))
        self.counts = np.maximum(found, 1)
        self.starts = np.cumsum(self.counts) - self.counts
        self.codes = np.full(self.counts.sum(), len(self.vocabulary) - 1, dtype=np.int64)  # "" where none
        rank = np.arange(len(owner)) - (np.cumsum(found) - found)[owner]
        self.codes[self.starts[owner] + rank] = encoded.indices.to_numpy()
        vocabulary_lengths = np.append(pc.utf8_length(encoded.dictionary).to_numpy(), 0).astype(np.int64)
        self.lengths = vocabulary_lengths[self.codes]
        self.shortest = np.minimum.reduceat(self.lengths, self.starts) if len(self.starts) else self.lengths
        self.value_lengths = pc.utf8_length(text).to_numpy().astype(np.int64)
        spaced = pc.match_substring(text, " ").to_numpy(zero_copy_only=False)
        single = (found == 1) & (self.lengths[self.starts] == self.value_lengths)
        self.spaced = spaced
        self.whole = ~spaced & ~single & (self.value_lengths > 0)


# Pairs given to rapidfuzz's cpdist at once: it copies each call's strings (~100 bytes a pair;
# a model's 200k random pairs in one call held 20–30 MB, a tenth of a small run's peak).
PAIRS_PER_CALL = 1 << 16


def _cpdist_in_calls(strings_a: np.ndarray, ia: np.ndarray, strings_b: np.ndarray, ib: np.ndarray, scorer: Any,
                    dtype: Any) -> np.ndarray:
    """rapidfuzz's ``cpdist`` of the pairs ``(strings_a[ia], strings_b[ib])``, :data:`PAIRS_PER_CALL` at a time."""
    calls = [slice(s, s + PAIRS_PER_CALL) for s in range(0, len(ia), PAIRS_PER_CALL)]
    return np.concatenate([process.cpdist(strings_a[ia[c]], strings_b[ib[c]], scorer=scorer, dtype=dtype, workers=1)
                           for c in calls] or [np.empty(0, dtype)])


# Cells (a byte each) of a matrix of every word of one side against every word of the other.
DENSE_WORD_CELLS = 16 << 20


class _WordDistances:
    """Edit distances of word pairs (codes into two vocabularies), for ``pairs`` word pairs to come.

    When the two vocabularies are small for the pairs asked (pairs drawn at
    random, whose words rarely meet twice), a matrix of them all: rapidfuzz's
    ``cdist`` prepares each word once and compares it with the others at a
    time: 40 ns a cell against 800 ns a pair for ``cpdist`` (3,000 words
    a side, 1.8M random pairs of them: 4× faster with five cells a pair), so
    it is chosen up to eight cells a pair asked. Otherwise each distinct
    pair asked, once."""

    def __init__(self, wa: _Words, wb: _Words, pairs: int):
        self.vocabulary_a = np.asarray(wa.vocabulary, dtype=object)
        self.vocabulary_b = np.asarray(wb.vocabulary, dtype=object)
        self.matrix = None
        if len(self.vocabulary_a) * len(self.vocabulary_b) <= min(DENSE_WORD_CELLS, 8 * pairs):
            # (one byte a cell: a distance over 254 reads 255, and is computed again below)
            self.matrix = process.cdist(self.vocabulary_a, self.vocabulary_b, scorer=Levenshtein.distance,
                                        dtype=np.uint8, score_cutoff=254, workers=1)

    def _pairwise(self, codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
        return _cpdist_in_calls(self.vocabulary_a, codes_a, self.vocabulary_b, codes_b, Levenshtein.distance,
                               np.int32).astype(np.int64)

    def of(self, codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
        if self.matrix is not None:
            d = self.matrix[codes_a, codes_b].astype(np.int64)
            far = np.flatnonzero(d == 255)
            if len(far):
                d[far] = self._pairwise(codes_a[far], codes_b[far])
            return d
        n_b = len(self.vocabulary_b)
        inverse, unique = pd.factorize(codes_a * n_b + codes_b)  # hashing: faster than sorting
        return self._pairwise(unique // n_b, unique % n_b)[inverse]


def _compare_whole_values(raw: np.ndarray, wa: _Words, wb: _Words) -> None:
    """Nazca's rule for pairs where neither value has a space: the edit
    distance of the whole values, in place of the word rule where they differ."""
    for rows, columns in ((wa.whole, ~wb.spaced), (~wa.spaced, wb.whole)):
        i, j = np.flatnonzero(rows), np.flatnonzero(columns)
        if len(i) and len(j):
            raw[np.ix_(i, j)] = process.cdist(wa.text.take(i).to_pylist(), wb.text.take(j).to_pylist(),
                                              scorer=Levenshtein.distance, dtype=np.int32, workers=1)


def _token_max_min(wa: _Words, wb: _Words) -> np.ndarray:
    """Nazca's max of row and column minima for every pair of two lists."""
    unique_d = process.cdist(wa.vocabulary, wb.vocabulary, scorer=Levenshtein.distance, dtype=np.int32, workers=1)
    d = unique_d[wa.codes][:, wb.codes]
    ka, kb, lena, lenb = wa.counts, wb.counts, wa.lengths, wb.lengths
    starts_a, starts_b = wa.starts, wb.starts
    # min over the words of each b, for every word of a: (words_a, n_b)
    per_b = np.minimum.reduceat(d, starts_b, axis=1)
    # min over the words of each a, for every word of b: (n_a, words_b)
    per_a = np.minimum.reduceat(d, starts_a, axis=0)
    rows = np.maximum.reduceat(per_b, starts_a, axis=0)
    rows_padded_b = np.maximum.reduceat(np.minimum(per_b, lena[:, None]), starts_a, axis=0)
    cols = np.maximum.reduceat(per_a, starts_b, axis=1)
    cols_padded_a = np.maximum.reduceat(np.minimum(per_a, lenb[None, :]), starts_b, axis=1)
    min_len_a = wa.shortest[:, None]
    min_len_b = wb.shortest[None, :]
    a_short = ka[:, None] < kb[None, :]
    b_short = ka[:, None] > kb[None, :]
    # a padded: its "" rows have minimum len(shortest word of b); b's columns
    # may reach "" at cost len(word). Symmetrically when b is padded.
    row_part = np.where(b_short, rows_padded_b, np.where(a_short, np.maximum(rows, min_len_b), rows))
    col_part = np.where(a_short, cols_padded_a, np.where(b_short, np.maximum(cols, min_len_a), cols))
    return np.maximum(row_part, col_part)


class ExactMetric(StringMetric):
    """0 when the values are equal, 1 otherwise."""

    name = "exact"
    bounded = True

    @staticmethod
    def _codes(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        codes, _ = pd.factorize(pd.concat([a["v"], b["v"]], ignore_index=True))
        return codes[: len(a)], codes[len(a):]

    def _cdist(self, a, b, normalized):
        ca, cb = self._codes(a, b)
        return (ca[:, None] != cb[None, :]).astype(np.float32)

    def _cpdist(self, a, b, ia, ib, normalized):
        if len(ia) <= FEW_VALUES:  # (pair by pair; a missing value's pair is the base's to say)
            pairs = zip(_few_values(a, ia), _few_values(b, ib))
            return np.array([1.0 if is_na(x) or is_na(y) else x != y for x, y in pairs], dtype=np.float32)
        ca, cb = self._codes(a, b)
        return (ca[ia] != cb[ib]).astype(np.float32)


class SoundexMetric(Metric):
    """0 when the Soundex codes are equal, 1 otherwise, by Nazca's rule.

    When neither value has a space, their whole codes are compared; otherwise
    their words (:func:`nazca_words`) are, word order free: the shorter list
    padded with words without a code, the distance is 0 when every word of
    each value has a word of the same code in the other. A value with no
    letter at all has no code: it is missing.

    Encoded as ``v`` (the whole value's code), ``w`` (its words' codes in
    order, ``-`` for a word without one) and ``s`` (1 if it has a space).
    """

    name = "soundex"
    bounded = True

    parameters = {"language": str}

    def __init__(self, language: str = "english", missing: float | None = None):
        super().__init__(missing)
        if language not in SOUNDEX_CODES:
            raise ValueError(f"soundex: unknown language {language!r}; expected one of {sorted(SOUNDEX_CODES)}")
        self.language = language

    def _codes(self, text: Any) -> tuple[Any, Any, float]:
        if text is None:
            return None, None, math.nan
        words = [soundex_code(w, self.language) or "-" for w in nazca_words(text)]
        whole = soundex_code(text, self.language)
        if not whole and all(w == "-" for w in words):
            return None, None, math.nan
        return whole, " ".join(words), float(" " in text)

    def encode(self, values):
        codes, uniques = pd.factorize(joined_text(values), use_na_sentinel=True)
        rows = [self._codes(text) for text in uniques.tolist()] + [(None, None, math.nan)]  # last: missing
        encoded = pd.DataFrame(rows, columns=["v", "w", "s"]).astype({"v": object, "w": object, "s": np.float64})
        return encoded.iloc[codes].set_axis(values.index)

    @staticmethod
    def _word_sets(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """Codes (integers, comparable across ``a`` and ``b``) of each value's
        whole code, word-code set and word-code set with a padding word;
        each value's number of words; whether it has a space."""
        out = []
        for frame in (a, b):
            words = [w.split() if isinstance(w, str) else [] for w in frame["w"].tolist()]
            sets = [" ".join(sorted(set(w))) for w in words]
            padded = [" ".join(sorted(set(w) | {"-"})) for w in words]
            out.append((frame["v"].fillna("").tolist(), sets, padded, np.array([len(w) for w in words]),
                        frame["s"].to_numpy(np.float64) > 0))
        (va, sa, pa_, na, spa), (vb, sb, pb, nb, spb) = out
        codes, _ = pd.factorize(pd.Series(va + vb + sa + sb + pa_ + pb, dtype=object))
        n, m = len(va), len(vb)
        parts = np.split(codes, np.cumsum([n, m, n, m, n]))
        return (*parts, na, nb, spa, spb)

    @staticmethod
    def _distance(whole_a, whole_b, set_a, set_b, padded_a, padded_b, n_a, n_b, spaced_a, spaced_b) -> np.ndarray:
        by_words = np.where(n_a == n_b, set_a != set_b, np.where(n_a < n_b, padded_a != set_b, set_a != padded_b))
        return np.where(spaced_a | spaced_b, by_words, whole_a != whole_b).astype(np.float32)

    def _cdist(self, a, b, normalized):
        wa, wb, sa, sb, pa_, pb, na, nb, spa, spb = self._word_sets(a, b)
        column, row = (slice(None), None), (None, slice(None))
        return self._distance(wa[column], wb[row], sa[column], sb[row], pa_[column], pb[row], na[column], nb[row],
                              spa[column], spb[row])

    def _cpdist(self, a, b, ia, ib, normalized):
        wa, wb, sa, sb, pa_, pb, na, nb, spa, spb = self._word_sets(a, b)
        return self._distance(wa[ia], wb[ib], sa[ia], sb[ib], pa_[ia], pb[ib], na[ia], nb[ib], spa[ia], spb[ib])


class JaccardMetric(StringMetric):
    """1 − |A ∩ B| / |A ∪ B| on the sets of words (:func:`nazca_words`)."""

    name = "jaccard"
    bounded = True

    @staticmethod
    def _token_matrices(a: pd.DataFrame, b: pd.DataFrame) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        import scipy.sparse as sp  # (~0.15 s to import: not for every command, only for Jaccard's matrices)

        texts = StringMetric._strings(a) + StringMetric._strings(b)
        token_sets = [sorted(set(nazca_words(t))) for t in texts]
        counts = np.fromiter(map(len, token_sets), np.int64, len(token_sets))
        codes, vocab = pd.factorize(pd.Series([w for s in token_sets for w in s], dtype=object))
        indptr = np.r_[0, np.cumsum(counts)]
        m = sp.csr_matrix((np.ones(len(codes), np.int32), codes, indptr), shape=(len(texts), max(1, len(vocab))))
        return m[: len(a)], m[len(a):]

    def _cdist(self, a, b, normalized):
        ma, mb = self._token_matrices(a, b)
        inter = (ma @ mb.T).toarray().astype(np.float64)
        union = np.asarray(ma.sum(1), np.float64) + np.asarray(mb.sum(1), np.float64).T - inter
        return _jaccard_distance(inter, union)

    def _cpdist(self, a, b, ia, ib, normalized):
        ma, mb = self._token_matrices(a, b)
        ma, mb = ma[ia], mb[ib]
        inter = np.asarray(ma.multiply(mb).sum(1), np.float64).ravel()
        union = np.asarray(ma.sum(1), np.float64).ravel() + np.asarray(mb.sum(1), np.float64).ravel() - inter
        return _jaccard_distance(inter, union)


def _jaccard_distance(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return 1.0 - out
