"""Metrics: distances between attribute values, in two forms.

* ``cdist(a, b)`` — the dense ``(len(a), len(b))`` matrix of a block;
* ``cpdist(a, b)`` — the distances of aligned pairs ``(a[k], b[k])``.

Both forms run the same element-wise arithmetic, so a pair gets bit-for-bit
the same distance whichever form scores it (the distributed pipeline relies on
this for results that do not depend on how records are partitioned).

Each metric first *encodes* a column once (parses dates, computes Soundex
codes, checks coordinates) into a small frame; the kernels read encoded
frames. String metrics run on rapidfuzz's compiled kernels.

Missing values (None, NaN, empty strings) carry no evidence either way: a
pair where either value is missing gets NaN, and the global distance leaves
that treatment out (see :func:`bigalign.treatments.global_alignment_matrix`).
A metric given ``missing=d`` puts the fixed distance ``d`` there instead.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, Indel, JaroWinkler, Levenshtein

from .normalize import map_distinct
from .records import TEXT, arrow_text

__all__ = ["InvalidValueError", "Metric", "METRICS", "cdist", "cpdist", "make_metric"]

EARTH_RADIUS_KM = 6371.0088


class InvalidValueError(ValueError):
    """A value that a metric cannot read (an unparsable date, a latitude of 95).

    ``row`` is the position of the value in the column it came from.
    """

    def __init__(self, metric: str, row: int, value: Any, reason: str):
        self.metric, self.row, self.value, self.reason = metric, row, value, reason
        super().__init__(f"row {row}: {metric}: {reason}: {value!r}")


def _is_missing_scalar(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _first_invalid(metric: str, invalid: np.ndarray, values: pd.Series | pd.DataFrame, reason: str) -> None:
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        value = values.iloc[row]
        value = tuple(value) if isinstance(value, pd.Series) else value
        raise InvalidValueError(metric, row, value, reason)


class Metric:
    """Base class of metrics.

    Subclasses set ``name``, ``bounded`` (distances already in [0, 1]) and
    implement :meth:`encode`, :meth:`_cdist` and :meth:`_cpdist`.

    Parameters
    ----------
    missing : float, optional
        The distance of a pair where either value is missing; by default
        none (NaN): the treatment is left out of that pair's global distance.
    """

    name = "metric"
    bounded = False

    def __init__(self, missing: float | None = None):
        if missing is not None and (isinstance(missing, bool) or not isinstance(missing, (int, float, np.number))
                                    or not missing >= 0):
            raise ValueError(f"{self.name}: 'missing' must be a number ≥ 0, got {missing!r}")
        self.missing = None if missing is None else float(missing)

    # -- encoding -----------------------------------------------------------
    def encode(self, values: pd.Series | pd.DataFrame) -> pd.DataFrame:
        """Encode a column once; raise :class:`InvalidValueError` on bad values."""
        raise NotImplementedError

    # Why a value is set aside when invalid() says this metric cannot read it.
    invalid_reason = "not readable"

    def invalid(self, values: pd.Series | pd.DataFrame) -> np.ndarray:
        """Boolean mask of present values this metric cannot read."""
        return np.zeros(len(values), dtype=bool)

    def reject_reasons(self, values: pd.Series | pd.DataFrame) -> np.ndarray:
        """Why each value cannot be read (None where it can)."""
        return np.where(self.invalid(values), self.invalid_reason, None)

    @property
    def reads_every_value(self) -> bool:
        """Whether any value is readable (nothing to check before a run)."""
        kind = type(self)
        return kind.invalid is Metric.invalid and kind.reject_reasons is Metric.reject_reasons

    def is_missing(self, encoded: pd.DataFrame) -> np.ndarray:
        return encoded.isna().any(axis=1).to_numpy()

    # -- distances ----------------------------------------------------------
    def missing_distance(self, normalized: bool) -> float:
        """The distance of a pair with a missing value: ``missing``, else NaN (no evidence)."""
        return math.nan if self.missing is None else self.missing

    def cdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool = False) -> np.ndarray:
        """Dense distance matrix between encoded frames ``a`` and ``b``."""
        out = np.asarray(self._cdist(a, b, normalized), dtype=np.float64)
        ma, mb = self.is_missing(a), self.is_missing(b)
        if ma.any() or mb.any():
            out[ma, :] = self.missing_distance(normalized)
            out[:, mb] = self.missing_distance(normalized)
        return out

    def cpdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool = False,
               ia: np.ndarray | None = None, ib: np.ndarray | None = None) -> np.ndarray:
        """Distances of the pairs ``(a.iloc[ia[k]], b.iloc[ib[k]])``.

        Without ``ia`` and ``ib``, ``a`` and ``b`` are aligned pairs. The
        per-value work (splitting, lengths, codes) is done once per row of
        ``a`` and ``b``, however many pairs a row is in.
        """
        if ia is None or ib is None:
            if len(a) != len(b):
                raise ValueError(f"cpdist needs aligned inputs, got {len(a)} and {len(b)} values")
            ia = ib = np.arange(len(a))
        out = np.asarray(self._cpdist(a, b, ia, ib, normalized), dtype=np.float64)
        missing = self.is_missing(a)[ia] | self.is_missing(b)[ib]
        out[missing] = self.missing_distance(normalized)
        return out

    def _cdist(self, a: pd.DataFrame, b: pd.DataFrame, normalized: bool) -> np.ndarray:
        raise NotImplementedError

    def _cpdist(self, a: pd.DataFrame, b: pd.DataFrame, ia: np.ndarray, ib: np.ndarray,
                normalized: bool) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


# ---------------------------------------------------------------------------
# Strings
# ---------------------------------------------------------------------------
def _as_text(value: Any) -> Any:
    if type(value) is str:  # the common case, first
        return value if value.strip() else None
    if _is_missing_scalar(value):
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    text = str(value)
    return text if text.strip() else None


# What str.strip() strips (str.isspace()): Unicode's white space, and \x1c-\x1f.
_PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                  "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def _text_array(values: pd.Series) -> pa.Array:
    """:func:`_as_text` of each value, as Arrow text; at once when the values are text."""
    text = arrow_text(values)
    if text is None:  # not all text
        return pa.array(map_distinct(values, _as_text).to_numpy(), type=pa.string())
    blank = pc.equal(pc.utf8_trim(text, _PY_WHITESPACE), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), text)


def _joined(values: pd.Series | pd.DataFrame) -> pd.Series:
    """One text per record, missing when blank: several columns are joined
    by spaces (missing parts skipped), as Arrow text."""
    if isinstance(values, pd.Series):
        joined = _text_array(values)
    else:
        parts = [_text_array(values[c]) for c in values.columns]
        joined = parts[0]
        for part in parts[1:]:  # (null_handling="skip" drops all-null rows in pyarrow 26)
            joined = pc.coalesce(pc.binary_join_element_wise(joined, part, " "), joined, part)
    return pd.Series(TEXT.__from_arrow__(joined), index=values.index)


class StringMetric(Metric):
    """Metrics over text; encoded as one object column ``v``.

    An attribute of several columns (given name and surname) is compared as
    their values joined by spaces.
    """

    def encode(self, values: pd.Series | pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"v": _joined(values)}, index=values.index)

    @staticmethod
    def _strings(encoded: pd.DataFrame) -> list[str]:
        return [v if isinstance(v, str) else "" for v in encoded["v"].tolist()]

    @classmethod
    def _string_array(cls, encoded: pd.DataFrame) -> np.ndarray:
        return np.array(cls._strings(encoded), dtype=object)


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
        return process.cpdist(self._string_array(a)[ia], self._string_array(b)[ib], scorer=scorer, dtype=dtype,
                              workers=1)


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
        wa, wb = _Words(_text_column(a)), _Words(_text_column(b))
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
        d = _word_pair_distances(wa, wb, np.concatenate([c[0] for c in cells] or [np.empty(0, np.int64)]),
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
        if normalized:
            return self._normalize(raw, wa.value_lengths[ia], wb.value_lengths[ib])
        return raw.astype(np.float32)


def _text_column(encoded: pd.DataFrame) -> pa.Array:
    """A string metric's encoded values as Arrow text, "" where missing."""
    text = arrow_text(encoded["v"])
    if text is None:
        text = pa.array(StringMetric._strings(encoded), type=pa.string())
    return text.fill_null("")


# Nazca's words: a value is split at white space, then after each apostrophe, which
# stays on the first part (French elision: "l'été" → "l'", "été"; "james'" → "james'", "").
# The typographic apostrophe counts as one.
APOSTROPHES = "'’"
_AFTER_APOSTROPHE = re.compile(f"(?<=[{APOSTROPHES}])")


def nazca_words(text: str) -> list[str]:
    """The words of ``text`` as Nazca's tokenizer finds them (see :data:`APOSTROPHES`)."""
    return [part for chunk in text.split() for part in _AFTER_APOSTROPHE.split(chunk)]


def _split_after_apostrophes(words: pa.Array, owner: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """:func:`nazca_words`'s second step in Arrow: words (without white space)
    cut after each apostrophe, and the value each part belongs to."""
    if not pc.any(pc.match_substring_regex(words, f"[{APOSTROPHES}]")).as_py():
        return words, owner
    # \x1f is white space (str.isspace), so never inside a word: a safe place to cut.
    parts = pc.split_pattern(pc.replace_substring_regex(words, f"([{APOSTROPHES}])", "\\1\x1f"), "\x1f")
    return pc.list_flatten(parts), owner[pc.list_parent_indices(parts).to_numpy()]


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
        words, owner = _split_after_apostrophes(words.filter(present), owner[present])
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


def _word_pair_distances(wa: _Words, wb: _Words, codes_a: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
    """Edit distances of word pairs (codes into the vocabularies), each distinct pair computed once."""
    n_b = len(wb.vocabulary)
    inverse, unique = pd.factorize(codes_a * n_b + codes_b)  # hashing: faster than sorting
    words_a = np.asarray(wa.vocabulary, dtype=object)[unique // n_b]
    words_b = np.asarray(wb.vocabulary, dtype=object)[unique % n_b]
    d = process.cpdist(words_a, words_b, scorer=Levenshtein.distance, dtype=np.int32, workers=1)
    return d.astype(np.int64)[inverse]


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
        ca, cb = self._codes(a, b)
        return (ca[ia] != cb[ib]).astype(np.float32)


_SOUNDEX_CODES = {
    "english": {**dict.fromkeys("BFPV", "1"), **dict.fromkeys("CGJKQSXZ", "2"), **dict.fromkeys("DT", "3"),
                "L": "4", **dict.fromkeys("MN", "5"), "R": "6"},
    "french": {**dict.fromkeys("BP", "1"), **dict.fromkeys("CKQ", "2"), **dict.fromkeys("DT", "3"),
               "L": "4", **dict.fromkeys("MN", "5"), "R": "6", **dict.fromkeys("GJ", "7"),
               **dict.fromkeys("XZS", "8"), **dict.fromkeys("FV", "9")},
}
_NOT_LETTERS = re.compile(r"[^A-Z]")


@lru_cache(maxsize=1 << 16)  # words repeat: surnames, given names
def soundex_code(word: str, language: str = "english") -> str:
    """The four-character Soundex code of one word ("" if it has no letter).

    Accents are stripped first; hyphens, apostrophes, digits and other
    non-letters are ignored. Vowels separate equal codes; H and W do not.
    """
    from .normalize import _strip_accents

    letters = _NOT_LETTERS.sub("", _strip_accents(word).upper())
    if not letters:
        return ""
    table = _SOUNDEX_CODES[language]
    code = [letters[0]]
    previous = table.get(letters[0], "")
    for letter in letters[1:]:
        digit = table.get(letter, "")
        if digit and digit != previous:
            code.append(digit)
        if letter not in "HW":
            previous = digit
    return ("".join(code) + "000")[:4]


def _soundex_digit_tables() -> dict[str, np.ndarray]:
    tables = {}
    for language, codes in _SOUNDEX_CODES.items():
        table = np.zeros(256, dtype=np.uint8)
        for letter, digit in codes.items():
            table[ord(letter)] = ord(digit)
        tables[language] = table
    return tables


_SOUNDEX_DIGITS = _soundex_digit_tables()


def soundex_codes(words: list[str], language: str = "english") -> list[str]:
    """:func:`soundex_code` of each word; ASCII words are coded together in numpy."""
    if not words:
        return []
    codes: list[Any] = [None] * len(words)
    ascii_rows = [i for i, w in enumerate(words) if w.isascii()]
    if len(ascii_rows) < len(words):
        for i in set(range(len(words))).difference(ascii_rows):
            codes[i] = soundex_code(words[i], language)
        if not ascii_rows:
            return codes
        words = [words[i] for i in ascii_rows]
    raw = np.array(words, dtype=bytes)
    # Characters by position: row j holds the j-th character of every word
    # (running sums down the columns of this layout are fast).
    chars = np.ascontiguousarray(raw.view(np.uint8).reshape(len(raw), -1).T)
    chars = np.where((chars >= ord("a")) & (chars <= ord("z")), chars - 32, chars)
    letter = (chars >= ord("A")) & (chars <= ord("Z"))
    # Letters moved to the front of each word, in order (non-letters are ignored).
    small = np.int16 if chars.shape[0] < 2**15 else np.int64
    position = np.cumsum(letter, axis=0, dtype=small) - 1
    letters = np.zeros_like(chars)
    words_at = np.broadcast_to(np.arange(chars.shape[1]), chars.shape)
    letters[position[letter], words_at[letter]] = chars[letter]
    digits = _SOUNDEX_DIGITS[language][letters]
    # The previous digit is that of the last letter before, H and W skipped (the first letter always counts).
    sets = (letters != ord("H")) & (letters != ord("W"))
    sets[0] = True
    depth = np.arange(chars.shape[0], dtype=small)[:, None]
    last_setter = np.maximum.accumulate(np.where(sets, depth, 0), axis=0)
    previous = np.take_along_axis(digits, last_setter, axis=0)
    emitted = (digits != 0) & (letters != 0)
    emitted[1:] &= digits[1:] != previous[:-1]
    emitted[0] = False
    # First letter, then the first three emitted digits, padded with zeros.
    out = np.full((len(raw), 4), ord("0"), dtype=np.uint8)
    out[:, 0] = letters[0]
    rank = np.cumsum(emitted, axis=0, dtype=small)
    keep = emitted & (rank <= 3)
    out[words_at[keep], rank[keep]] = digits[keep]
    out[letters[0] == 0] = 0  # no letter: ""
    text = out.view("S4").ravel().astype("U4").tolist()
    if len(ascii_rows) == len(codes):
        return text
    for i, code in zip(ascii_rows, text):
        codes[i] = code
    return codes


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

    def __init__(self, language: str = "english", missing: float | None = None):
        super().__init__(missing)
        if language not in _SOUNDEX_CODES:
            raise ValueError(f"soundex: unknown language {language!r}; expected one of {sorted(_SOUNDEX_CODES)}")
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
        codes, uniques = pd.factorize(_joined(values), use_na_sentinel=True)
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


# ---------------------------------------------------------------------------
# Numbers: dates, coordinates, vectors
# ---------------------------------------------------------------------------
class ScaledMetric(Metric):
    """Unbounded metrics; normalized means ``min(raw / scale, 1)``."""

    def __init__(self, scale: float | None = None, missing: float | None = None):
        super().__init__(missing)
        if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(f"{self.name}: 'scale' must be a positive number, got {scale!r}")
        self.scale = None if scale is None else float(scale)

    def _scaled(self, raw: np.ndarray, normalized: bool) -> np.ndarray:
        if not normalized:
            return raw
        if self.scale is None:
            raise ValueError(
                f"{self.name}: normalized distances need 'scale', the raw distance that maps to 1"
            )
        return np.minimum(raw / self.scale, 1.0)

    def _cdist(self, a, b, normalized):
        return self._scaled(self._raw(a.to_numpy(np.float64)[:, None, :], b.to_numpy(np.float64)[None, :, :]),
                            normalized)

    def _cpdist(self, a, b, ia, ib, normalized):
        return self._scaled(self._raw(a.to_numpy(np.float64)[ia], b.to_numpy(np.float64)[ib]), normalized)

    def _raw(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError


_FRENCH_MONTHS = ["janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout",
                  "septembre", "octobre", "novembre", "decembre"]
_MONTHS = {}
for _number, (_fr, _en) in enumerate(zip(_FRENCH_MONTHS, calendar.month_name[1:]), start=1):
    for _name in (_fr, _en.lower()):
        _MONTHS[_name] = _number
        _MONTHS[_name[:3]] = _number
    _MONTHS[_fr[:4]] = _number  # "janv", "sept", "fevr", "juil"
_MONTHS["fev"] = 2
_MONTHS["juil"] = 7
_NUMERIC_DATE = re.compile(r"^(\d{1,4})[-/. ](\d{1,2})[-/. ](\d{1,4})(?:[ T].*)?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_WORD_DATE = re.compile(r"^(?:(\d{1,2})(?:er)? )?([a-z]+)\.? (\d{4})$")
_WORD_DATE_US = re.compile(r"^([a-z]+)\.? (\d{1,2}),? (\d{4})$")


def parse_date(value: Any, dayfirst: bool = True) -> dt.date | None:
    """Parse one date; ``None`` when missing; ``ValueError`` when unreadable.

    Accepts ``14-08-1991``, ``14/08/1991``, ``14.08.1991`` (day first unless
    ``dayfirst=False``), ISO ``1991-08-14`` (with or without a time),
    ``19910814``, ``14 août 1991``, ``1er mai 1991``, ``August 14, 1991``,
    ``mai 1991`` (the first of the month), and date or datetime objects.
    Years have four digits: two-digit years are ambiguous and rejected.
    """
    if _is_missing_scalar(value):
        return None
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    text = str(value).strip()
    if m := _NUMERIC_DATE.match(text):
        x, y, z = m.groups()
        if len(x) == 4:
            year, month, day = int(x), int(y), int(z)
        elif len(z) == 4:
            day, month = (int(x), int(y)) if dayfirst else (int(y), int(x))
            year = int(z)
        else:
            raise ValueError("ambiguous or incomplete date (years need four digits)")
        return dt.date(year, month, day)
    if m := _COMPACT_DATE.match(text):
        return dt.date(*map(int, m.groups()))
    from .normalize import _strip_accents

    words = _strip_accents(text).lower().replace(",", " ").split()
    text = " ".join(words)
    if m := _WORD_DATE.match(text):
        day, month, year = m.groups()
        if month in _MONTHS:
            return dt.date(int(year), _MONTHS[month], int(day or 1))
    if m := _WORD_DATE_US.match(text):
        month, day, year = m.groups()
        if month in _MONTHS:
            return dt.date(int(year), _MONTHS[month], int(day))
    raise ValueError("not a date")


# The forms most dates come in, matched whole (RE2: ASCII digits only); every
# other value goes to parse_date, so the result is the same either way.
_VECTOR_DATE = r"^(?P<x>[0-9]{1,4})[-/. ](?P<y>[0-9]{1,2})[-/. ](?P<z>[0-9]{1,4})$"
_VECTOR_COMPACT_DATE = r"^(?P<x>[0-9]{4})(?P<y>[0-9]{2})(?P<z>[0-9]{2})$"
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _vector_ordinals(text: pa.Array, dayfirst: bool) -> np.ndarray:
    """Ordinals of the numeric forms of :func:`parse_date`, vectorised: NaN
    where a value has another form, -inf where it has this form but is no date."""
    out = np.full(len(text), np.nan)
    for pattern in (_VECTOR_DATE, _VECTOR_COMPACT_DATE):
        groups = pc.extract_regex(text, pattern)
        found = np.asarray(groups.is_valid().to_numpy(zero_copy_only=False), dtype=bool) & np.isnan(out)
        if not found.any():
            continue
        parts = {g: groups.field(g).filter(pa.array(found)) for g in "xyz"}
        x, y, z = (pc.cast(parts[g], pa.int64()).to_numpy() for g in "xyz")
        x_long = pc.utf8_length(parts["x"]).to_numpy() == 4
        z_long = pc.utf8_length(parts["z"]).to_numpy() == 4
        year = np.where(x_long, x, z)
        month = np.where(x_long, y, x if not dayfirst else y)
        day = np.where(x_long, z, y if not dayfirst else x)
        valid = (x_long | z_long) & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
        months = np.where(valid, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
        first = months.astype("datetime64[D]").astype(np.int64)
        length = (months + 1).astype("datetime64[D]").astype(np.int64) - first
        valid &= day <= length
        out[found] = np.where(valid, first + day - 1 + _EPOCH_ORDINAL, -np.inf)
    return out


def parse_dates(values: pd.Series, dayfirst: bool = True) -> np.ndarray:
    """Ordinals (float64) of the dates of ``values``: NaN where missing,
    -inf where unreadable; the result of :func:`parse_date` on each value.

    Each distinct value is parsed once; the numeric forms (``14/08/1991``,
    ``1991-08-14``, ``19910814``) are parsed together in Arrow, others one
    by one."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = arrow_text(uniques)
    # Not all text (date objects...): every value one by one.
    ordinals = np.full(len(uniques), np.nan) if text is None else _vector_ordinals(text, dayfirst)
    others = np.flatnonzero(np.isnan(ordinals))
    for i, value in zip(others.tolist(), np.asarray(uniques[others], dtype=object).tolist()):
        try:
            date = parse_date(value, dayfirst)
        except (ValueError, OverflowError):
            ordinals[i] = -np.inf
        else:
            ordinals[i] = np.nan if date is None else date.toordinal()
    return np.append(ordinals, np.nan)[codes]


def _year_and_month(ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Year and month (1–12) of date ordinals (finite ones)."""
    months = (ordinals.astype(np.int64) - _EPOCH_ORDINAL).astype("datetime64[D]").astype("datetime64[M]")
    month_index = months.astype(np.int64)
    return month_index // 12 + 1970, month_index % 12 + 1


class TemporalMetric(ScaledMetric):
    """Absolute difference between dates, in days, months or years.

    Months and years count calendar boundaries: 31 Jan → 1 Feb is one month.
    Each distinct value is parsed once per column (see :func:`parse_date`).
    """

    name = "temporal"
    _GRANULARITIES = ("days", "months", "years")

    def __init__(self, granularity: str = "days", dayfirst: bool = True, scale: float | None = None,
                 missing: float | None = None):
        super().__init__(scale, missing)
        if granularity not in self._GRANULARITIES:
            raise ValueError(f"temporal: 'granularity' must be one of {self._GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self.dayfirst = bool(dayfirst)

    def _numbers(self, values: pd.Series) -> np.ndarray:
        if isinstance(values, pd.DataFrame):
            raise ValueError(f"temporal compares one column, not {list(values.columns)}")
        ordinals = parse_dates(values, self.dayfirst)
        if self.granularity == "days":
            return ordinals
        known = np.isfinite(ordinals)
        year, month = _year_and_month(np.where(known, ordinals, _EPOCH_ORDINAL))
        numbers = year * 12 + month - 1 if self.granularity == "months" else year
        return np.where(known, numbers, ordinals)

    invalid_reason = "unparsable date"

    def invalid(self, values):
        return np.isneginf(self._numbers(values))

    def encode(self, values):
        numbers = self._numbers(values)
        _first_invalid(self.name, np.isneginf(numbers), values, "unparsable date")
        return pd.DataFrame({"t": numbers}, index=values.index)

    def _raw(self, a, b):
        return np.abs(a[..., 0] - b[..., 0])


def _number(value: Any) -> float:
    """A coordinate: NaN when missing, inf when present but not a finite number."""
    if _is_missing_scalar(value):
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.inf
    return number if math.isfinite(number) else math.inf


def _coordinates(values: pd.Series | pd.DataFrame, width: int | None, name: str) -> pd.DataFrame:
    """Coordinates as a float frame, from a frame or a Series of tuples: a
    point is NaN where missing (wholly or in part), inf where a value is
    present but not a finite number ("forty-eight", "48,85", "NaN", "1e400")."""
    if isinstance(values, pd.DataFrame):
        frame = pd.DataFrame({i: map_distinct(values[c], _number).astype(np.float64)
                              for i, c in enumerate(values.columns)}, index=values.index)
    else:
        def to_tuple(v: Any) -> tuple:
            if isinstance(v, (list, tuple, np.ndarray)):
                return tuple(_number(x) for x in v)
            return (_number(v),)

        rows = [to_tuple(v) for v in values.tolist()]
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise ValueError(f"{name}: values have different numbers of coordinates: {sorted(widths)}")
        # An empty column has the width of one number (or of ``width``): what a frame of no rows
        # is expected to look like when it stands for a partition's layout.
        frame = pd.DataFrame(rows, index=values.index, dtype=np.float64,
                             columns=None if rows else range(width or 1))
    if width is not None and frame.shape[1] != width:
        raise ValueError(f"{name}: expected {width} coordinates per value, got {frame.shape[1]}")
    unreadable = np.isinf(frame.to_numpy()).any(axis=1)
    frame[frame.isna().any(axis=1).to_numpy() & ~unreadable] = np.nan  # a partly missing point is missing
    frame[unreadable] = np.inf
    return frame


def _unreadable(frame: pd.DataFrame) -> np.ndarray:
    return np.isinf(frame.to_numpy()).any(axis=1)


def haversine_angle(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Central angle (radians) between points given in radians: exact across
    the antimeridian and at the poles (only sines of half-differences enter)."""
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


class GeographicalMetric(ScaledMetric):
    """Great-circle (haversine) distance between (latitude, longitude) in degrees.

    Exact across the antimeridian and at the poles: only the sines of the
    half-differences enter the formula. (Nazca's ``geographical`` is an
    equirectangular approximation, within 0.1% of this only below ~30 km and
    off by thousands of kilometres between distant points.)
    """

    name = "geographical"

    def __init__(self, units: str = "m", scale: float | None = None, missing: float | None = None):
        super().__init__(scale, missing)
        if units not in ("m", "km"):
            raise ValueError(f"geographical: 'units' must be 'm' or 'km', got {units!r}")
        self.units = units

    def reject_reasons(self, values):
        try:
            frame = _coordinates(values, 2, self.name)
        except (TypeError, ValueError):
            return np.full(len(values), "not a pair of coordinates", dtype=object)
        lat, lon = frame[0].to_numpy(), frame[1].to_numpy()
        out_of_range = ((np.abs(lat) > 90) | (np.abs(lon) > 180)) & np.isfinite(lat) & np.isfinite(lon)
        return np.where(_unreadable(frame), "not a number",
                        np.where(out_of_range, "coordinates out of range", None))

    def invalid(self, values):
        return self.reject_reasons(values) != None  # noqa: E711 (element-wise)

    def encode(self, values):
        frame = _coordinates(values, 2, self.name)
        lat, lon = frame[0].to_numpy(), frame[1].to_numpy()
        _first_invalid(self.name, _unreadable(frame), values, "not a number")
        _first_invalid(self.name, np.abs(lat) > 90, values, "latitude out of [-90, 90]")
        _first_invalid(self.name, np.abs(lon) > 180, values, "longitude out of [-180, 180]")
        return pd.DataFrame({"lat": lat, "lon": lon}, index=values.index)

    def _raw(self, a, b):
        radius = EARTH_RADIUS_KM * (1000.0 if self.units == "m" else 1.0)
        return radius * haversine_angle(np.radians(a[..., 0]), np.radians(a[..., 1]), np.radians(b[..., 0]),
                                        np.radians(b[..., 1]))


class EuclideanMetric(ScaledMetric):
    """Euclidean distance between numbers or tuples of numbers."""

    name = "euclidean"

    invalid_reason = "not a number"

    def invalid(self, values):
        try:
            return _unreadable(_coordinates(values, None, self.name))
        except (TypeError, ValueError):
            return np.ones(len(values), dtype=bool)

    def encode(self, values):
        frame = _coordinates(values, None, self.name)
        _first_invalid(self.name, _unreadable(frame), values, "not a number")
        frame.columns = [f"x{i}" for i in range(frame.shape[1])]
        return frame

    def _raw(self, a, b):
        total = np.zeros(np.broadcast_shapes(a.shape, b.shape)[:-1])
        for k in range(a.shape[-1]):  # the same summation order in both forms
            total += (a[..., k] - b[..., k]) ** 2
        return np.sqrt(total)


class CallableMetric(Metric):
    """A user function ``f(a, b) -> float`` on two values (a Python loop: slow).

    Give it ``bounded=True`` if it returns distances in [0, 1].
    """

    def __init__(self, func: Callable[[Any, Any], float], bounded: bool = False, missing: float | None = None):
        super().__init__(missing)
        self.func = func
        self.bounded = bool(bounded)
        self.name = getattr(func, "__name__", "callable")

    def encode(self, values):
        if isinstance(values, pd.DataFrame):
            values = pd.Series(list(values.itertuples(index=False, name=None)), index=values.index)
        return pd.DataFrame({"v": values.astype(object)}, index=values.index)

    def is_missing(self, encoded):
        return encoded["v"].map(_is_missing_scalar).to_numpy(dtype=bool)

    def _cdist(self, a, b, normalized):
        va, vb = a["v"].tolist(), b["v"].tolist()
        return np.array([[self.func(x, y) for y in vb] for x in va], dtype=np.float64).reshape(len(va), len(vb))

    def _cpdist(self, a, b, ia, ib, normalized):
        va, vb = a["v"].tolist(), b["v"].tolist()
        return np.array([self.func(va[i], vb[j]) for i, j in zip(ia.tolist(), ib.tolist())], dtype=np.float64)


METRICS: dict[str, type[Metric]] = {
    cls.name: cls
    for cls in (NazcaLevenshtein, CharLevenshtein, DamerauLevenshteinMetric, JaroWinklerMetric, SoundexMetric,
                JaccardMetric, DifflibMetric, ExactMetric, TemporalMetric, GeographicalMetric, EuclideanMetric)
}


def make_metric(metric: str | Metric | Callable, **options: Any) -> Metric:
    """A metric from its name (with options), an instance, or a callable."""
    if isinstance(metric, Metric):
        if options:
            raise ValueError("options are given to the metric's constructor, not with an instance")
        return metric
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
        try:
            return METRICS[metric](**options)
        except TypeError as err:
            raise ValueError(f"metric {metric!r}: {err}") from None
    if callable(metric):
        return CallableMetric(metric, **options)
    raise TypeError(f"a metric is a name, a Metric or a callable, not {metric!r}")


def _as_column(values: Any) -> pd.Series | pd.DataFrame:
    if isinstance(values, (pd.Series, pd.DataFrame)):
        return values.reset_index(drop=True)
    return pd.Series(list(values), dtype=object)


def cdist(values_a: Any, values_b: Any, metric: str | Metric | Callable, normalized: bool = False,
          **options: Any) -> np.ndarray:
    """Distance matrix between two lists of values.

    Parameters
    ----------
    values_a, values_b : sequence, Series or DataFrame
        The values of one attribute; tuples (or a frame of several columns)
        for coordinates and vectors.
    metric : str, Metric or callable
        A name from :data:`METRICS`, a :class:`Metric`, or ``f(a, b)``.
    normalized : bool
        Scale distances to [0, 1] (see each metric).
    **options
        Given to the metric (``units="km"``, ``granularity="years"``,
        ``language="french"``, ``scale=...``, ``missing=...``).

    Returns
    -------
    numpy.ndarray of float32, shape ``(len(values_a), len(values_b))``
    """
    m = make_metric(metric, **options)
    return m.cdist(m.encode(_as_column(values_a)), m.encode(_as_column(values_b)), normalized).astype(np.float32)


def cpdist(values_a: Any, values_b: Any, metric: str | Metric | Callable, normalized: bool = False,
           **options: Any) -> np.ndarray:
    """Distances of aligned pairs ``(values_a[k], values_b[k])``; see :func:`cdist`."""
    m = make_metric(metric, **options)
    return m.cpdist(m.encode(_as_column(values_a)), m.encode(_as_column(values_b)), normalized).astype(np.float32)
