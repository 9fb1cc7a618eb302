"""MinHash LSH on text: records meet when one band of their signatures is equal.

Signatures are computed for a whole partition at once in numpy, bit for bit
equal to :class:`datasketch.MinHash` (its default ``affine32`` scheme and
SHA-1 hash of each shingle): each distinct shingle is hashed once, premixed
with the MurmurHash3 finalizer, permuted with ``a·h + b mod 2^32``, and the
minimum per record taken with ``np.minimum.reduceat``.

P(two records become candidates | Jaccard s) = 1 − (1 − s^r)^b.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Hashable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..normalize import make_normalizer, normalize_column
from ..values.columns import is_missing
from ..values.hashing import fold64
from .base import Blocking, salted_keys

__all__ = ["MinHashLSHBlocking", "candidate_probability", "minhash_signatures", "optimal_bands_rows",
           "shingles"]

_EMPTY = np.uint32(0xFFFFFFFF)
# Shingle × permutation cells held at once while computing signatures.
_CHUNK_CELLS = 8_000_000
# A record's words (a word's shingles) taken one position at a time up to this many (see _group_minimum).
_POSITIONS = 16


def candidate_probability(similarity: np.ndarray | float, bands: int | np.ndarray, rows: int | np.ndarray
                          ) -> np.ndarray | float:
    """Probability that two records of Jaccard ``similarity`` share a band."""
    return 1.0 - (1.0 - np.asarray(similarity, dtype=float) ** rows) ** bands


@lru_cache(maxsize=64)
def optimal_bands_rows(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
                       false_negative_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows minimising the weighted false-positive and false-negative
    areas of the S-curve around ``threshold`` (datasketch's criterion and order of search).

    Each area is the integral of a polynomial of degree ``bands · rows ≤ num_perm``: Gauss–Legendre
    quadrature on ``num_perm / 2 + 1`` nodes is exact for it, every (bands, rows) at once (a millisecond,
    where adaptive quadrature of each took 0.35 s with SciPy's import, in every process that builds one)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"MinHash LSH threshold must be in (0, 1), got {threshold!r}")
    shapes = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below, above = threshold * (nodes + 1) / 2, threshold + (1 - threshold) * (nodes + 1) / 2
    bands, rows = shapes[:, :1], shapes[:, 1:]
    false_positive = threshold / 2 * (candidate_probability(below[None, :], bands, rows) @ weights)
    false_negative = (1 - threshold) / 2 * ((1.0 - candidate_probability(above[None, :], bands, rows)) @ weights)
    error = false_positive * false_positive_weight + false_negative * false_negative_weight
    b, r = shapes[int(np.argmin(error))]
    return int(b), int(r)


def shingles(text: str, ngram: int = 3, words: bool = False) -> set[str]:
    """Word tokens, or character n-grams of each word padded with ^ and $."""
    tokens = text.split()
    if words:
        return set(tokens)
    return set().union(*(_word_shingles(token, ngram) for token in tokens))


@lru_cache(maxsize=1 << 16)
def _word_shingles(token: str, ngram: int) -> frozenset[str]:
    # (cached: names and words repeat across records, and this loop is most of a signature's cost)
    padded = f"^{token}$"
    if len(padded) <= ngram:
        return frozenset((padded,))
    return frozenset(padded[i:i + ngram] for i in range(len(padded) - ngram + 1))


@lru_cache(maxsize=16)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # datasketch's affine32 parameters: odd multipliers, then offsets.
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _sha1_32(text: str) -> int:
    return int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:4], "little")


def minhash_signatures(shingle_sets: Sequence[Collection[str]], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """``(n, num_perm)`` uint32 signatures; rows of empty sets are all 2^32−1."""
    counts = np.fromiter(map(len, shingle_sets), np.int64, len(shingle_sets))
    flat = [s for shingle_set in shingle_sets for s in shingle_set]
    codes, vocabulary = pd.factorize(pd.Series(flat, dtype=object))
    hashed = _fmix32(np.fromiter(map(_sha1_32, vocabulary), np.uint32, len(vocabulary)))
    a, b = _permutations(num_perm, seed)
    permuted = hashed[:, None] * a[None, :] + b[None, :]  # uint32 wrap-around is the modulo
    return _group_minimum(permuted, codes, counts)


def _group_minimum(table: np.ndarray, items: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per group (``counts[g]`` consecutive ``items`` each), the elementwise minimum of its items' rows of
    ``table``; a group without items is all 2^32−1 (the signature of an empty set).

    The ``k``-th members of every group at once: a gather and a minimum of whole rows (a record's
    words, a word's shingles: 3.5× faster than ``np.minimum.reduceat`` over rows of ``num_perm``
    cells); the members of long groups past :data:`_POSITIONS`, by segments, a chunk of cells at a time."""
    out = np.full((len(counts), table.shape[1]), _EMPTY, dtype=np.uint32)
    starts = np.cumsum(counts) - counts
    for k in range(min(_POSITIONS, int(counts.max(initial=0)))):
        groups = np.flatnonzero(counts > k)
        rows = table[items[starts[groups] + k]]
        out[groups] = rows if k == 0 else np.minimum(out[groups], rows)
    long = np.flatnonzero(counts > _POSITIONS)
    rest = counts[long] - _POSITIONS
    step = max(1, _CHUNK_CELLS // (table.shape[1] * max(1, int(rest.mean()) if len(rest) else 1)))
    for lo in range(0, len(long), step):
        chunk, held = long[lo:lo + step], rest[lo:lo + step]
        offsets = np.cumsum(held) - held
        at = np.repeat(starts[chunk] + _POSITIONS - offsets, held) + np.arange(int(held.sum()))
        out[chunk] = np.minimum(out[chunk], np.minimum.reduceat(table[items[at]], offsets, axis=0))
    return out


class MinHashLSHBlocking(Blocking):
    """MinHash LSH over one or more text columns.

    Parameters
    ----------
    columns : sequence of labels
        Their shingles are pooled: swapping words or columns (given name and
        surname) does not change the set.
    threshold : float
        Jaccard similarity around which the S-curve is steepest; bands and
        rows are chosen from it unless given.
    num_perm : int
        Permutations of the signature.
    bands, rows : int, optional
        Explicit LSH parameters (``bands * rows <= num_perm``).
    ngram : int
        Character n-gram size; with ``words=True`` word tokens are used.
    seed : int
        Seed of the permutations (datasketch's ``seed``).
    normalizers : sequence
        Applied to each column first.
    weights : (float, float)
        False-positive and false-negative weights of the parameter search.
    """

    name = "minhash_lsh"
    parameters = {"columns": (list, str), "threshold": (int, float), "num_perm": int, "bands": int, "rows": int,
                  "ngram": int, "words": bool, "seed": int, "normalizers": list, "weights": list}

    def __init__(self, columns: Sequence[Hashable] | Hashable, threshold: float = 0.5, num_perm: int = 128,
                 bands: int | None = None, rows: int | None = None, ngram: int = 3, words: bool = False,
                 seed: int = 1, normalizers: Sequence[Any] = ("lunormalize", "simplify"),
                 weights: tuple[float, float] = (0.5, 0.5)):
        self.columns = [columns] if isinstance(columns, (str, int)) else list(columns)  # type: ignore[call-overload]
        if not self.columns:
            raise ValueError("MinHashLSHBlocking: 'columns' is empty")
        if not isinstance(num_perm, int) or num_perm < 1:
            raise ValueError(f"MinHashLSHBlocking: 'num_perm' must be a positive integer, got {num_perm!r}")
        if (bands is None) != (rows is None):
            raise ValueError("MinHashLSHBlocking: give both 'bands' and 'rows', or neither")
        if bands is None or rows is None:
            bands, rows = optimal_bands_rows(float(threshold), num_perm, *weights)
        elif bands < 1 or rows < 1 or bands * rows > num_perm:
            raise ValueError(f"MinHashLSHBlocking: bands × rows = {bands} × {rows} must be ≤ num_perm={num_perm}")
        if ngram < 1:
            raise ValueError(f"MinHashLSHBlocking: 'ngram' must be ≥ 1, got {ngram!r}")
        self.threshold = float(threshold)
        self.num_perm, self.bands, self.rows = num_perm, int(bands), int(rows)
        self.ngram, self.words, self.seed = int(ngram), bool(words), int(seed)
        self.normalizers = [make_normalizer(n) for n in normalizers]
        self.weights = tuple(weights)

    @property
    def n_slots(self) -> int:
        return self.bands

    def _columns(self, frame: pd.DataFrame) -> list[pd.Series]:
        return [normalize_column(frame[c], self.normalizers) for c in self.columns]

    def _shingles(self, text: str) -> set[str]:
        return shingles(text, self.ngram, self.words)

    def shingle_sets(self, frame: pd.DataFrame) -> list[set[str]]:
        return [set().union(*(self._shingles(v) for v in values if not is_missing(v)))
                for values in zip(*(column.tolist() for column in self._columns(frame)))]

    def signatures(self, frame: pd.DataFrame, shared: dict | None = None) -> np.ndarray:
        """Each record's signature (those of :func:`minhash_signatures` of its :meth:`shingle_sets`), and
        with ``shared``, once for every MinHash blocking of the same columns and permutations.

        A signature is the minimum of each permuted hash over the record's shingles, so it is the minimum
        of its words' signatures: each distinct word's is computed once (names and streets repeat), and a
        record's taken from its words' in numpy."""
        name = ("minhash signatures", repr(self.columns), repr(self.normalizers), self.ngram, self.words,
                self.num_perm, self.seed)
        if shared is not None and name in shared:
            return shared[name]
        words: dict[str, int] = {}
        records, word_ids = [], []
        for column in self._columns(frame):
            codes, values = pd.factorize(column, use_na_sentinel=True)
            split = [[] if is_missing(v) else [words.setdefault(w, len(words)) for w in str(v).split()]
                     for v in values]
            counts = np.fromiter(map(len, split), np.int64, len(split))
            flat = np.fromiter((w for ids in split for w in ids), np.int64, int(counts.sum()))
            # (each record's words: its value's run of ``flat``; a missing value, code -1, reads the last: none)
            per_record = np.append(counts, 0)[codes]
            starts = np.append(np.cumsum(counts) - counts, 0)[codes]
            records.append(np.repeat(np.arange(len(frame)), per_record))
            offsets = np.arange(int(per_record.sum())) - np.repeat(np.cumsum(per_record) - per_record, per_record)
            word_ids.append(flat[np.repeat(starts, per_record) + offsets])
        record_of = np.concatenate(records) if records else np.empty(0, np.int64)
        order = np.argsort(record_of, kind="stable")
        record_of, word_of = record_of[order], np.concatenate(word_ids)[order] if word_ids else record_of
        word_signatures = minhash_signatures([{w} if self.words else _word_shingles(w, self.ngram)
                                              for w in words], self.num_perm, self.seed)
        signatures = _group_minimum(word_signatures, word_of, np.bincount(record_of, minlength=len(frame)))
        if shared is not None:
            shared[name] = signatures
        return signatures

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": self.name, "bands": self.bands, "rows": self.rows,
                "threshold": self.threshold}

    def keys(self, frame: pd.DataFrame, side: str, shared: dict | None = None) -> np.ndarray:
        signatures = self.signatures(frame, shared)
        present = (signatures != _EMPTY).any(axis=1)
        keys = np.empty((len(frame), self.bands), dtype=np.uint64)
        for band in range(self.bands):
            h = np.full(len(frame), band + 1, dtype=np.uint64)
            for column in signatures[:, band * self.rows:(band + 1) * self.rows].T:
                h = fold64(h, column)
            keys[:, band] = salted_keys(h, f"minhash:{self.columns}:{band}", present)
        return keys
