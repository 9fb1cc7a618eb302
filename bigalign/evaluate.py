"""Quality of links and of a blocking against known true pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["DEDUPE_ONLY", "LINK_AND_DEDUPE", "LINK_ONLY", "LINK_TYPES", "ClusterQuality", "LinkQuality",
           "blocking_quality", "cluster_quality", "cross_product", "isin_sorted", "link_quality"]


# How the records of several sets are paired (Splink's names): across the sets, within each, or both.
LINK_ONLY, DEDUPE_ONLY, LINK_AND_DEDUPE = "link_only", "dedupe_only", "link_and_dedupe"
LINK_TYPES = (LINK_ONLY, DEDUPE_ONLY, LINK_AND_DEDUPE)


def isin_sorted(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_values)`` for a sorted right side: one binary
    search per value (np.isin sorts or hashes both sides on every call)."""
    if len(sorted_values) == 0:
        return np.zeros(len(values), dtype=bool)
    if len(sorted_values) > CACHED_SEARCH_VALUES and len(values) > 1:
        # Past the CPU's caches, a random search misses them at every step down; values searched
        # in order start where the last search ended.
        order = np.argsort(values, kind="stable")
        found = np.empty(len(values), dtype=bool)
        found[order] = _found(values[order], sorted_values)
        return found
    return _found(values, sorted_values)


# Sorted values up to which a random binary search stays in the CPU's caches (8 bytes each: 1 MB;
# past it, searching in order wins, measured: 1.8× at 400k values, 5× at 8M).
CACHED_SEARCH_VALUES = 1 << 17


def _found(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def _distinct_pair_codes(links: pd.DataFrame, truth: pd.DataFrame,
                         unordered: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs of each frame as sorted int64 codes, equal codes for
    equal pairs (ids coded over both frames; sorting, not Python tuples).
    ``unordered``: (a, b) and (b, a) are one pair (a deduplication's)."""
    if unordered:
        n = len(links) + len(truth)
        both, _ = pd.factorize(pd.concat([links["align_id"], truth["align_id"], links["target_id"],
                                          truth["target_id"]], ignore_index=True))
        both = both.astype(np.int64)
        codes = [np.minimum(both[:n], both[n:]), np.maximum(both[:n], both[n:])]
    else:
        codes = [pd.factorize(pd.concat([links[c], truth[c]], ignore_index=True))[0].astype(np.int64)
                 for c in ("align_id", "target_id")]
    pairs = codes[0] * (codes[1].max(initial=0) + 1) + codes[1]
    out = []
    for part in (pairs[:len(links)], pairs[len(links):]):
        part = np.sort(part)
        out.append(part[np.r_[True, part[1:] != part[:-1]]] if len(part) else part)
    return out[0], out[1]


@dataclass
class LinkQuality:
    """Precision, recall and F1 of links against the truth."""

    links: int
    true_pairs: int
    true_positives: int
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def link_quality(links: pd.DataFrame, truth: pd.DataFrame, unordered: bool = False) -> LinkQuality:
    """Compare ``links`` and ``truth`` (both with ``align_id`` and ``target_id``);
    ``unordered`` for a deduplication, whose pairs have no side."""
    found, true = _distinct_pair_codes(links, truth, unordered)
    tp = int(isin_sorted(found, true).sum())
    precision = tp / len(found) if len(found) else 0.0
    recall = tp / len(true) if len(true) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LinkQuality(len(found), len(true), tp, precision, recall, f1)


@dataclass
class ClusterQuality:
    """Clusters against known entities: over the pairs of records put in one
    cluster (pairwise), and per record (B-cubed: the share of its cluster
    that is its entity, and of its entity that is its cluster)."""

    records: int
    clusters: int
    entities: int
    pair_precision: float
    pair_recall: float
    pair_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _pairs(sizes: np.ndarray) -> float:
    return float((sizes * (sizes - 1) / 2).sum())


def cluster_quality(clusters: pd.DataFrame, entities: pd.DataFrame) -> ClusterQuality:
    """Compare ``clusters`` (``id``, ``cluster_id``, and ``set`` when there
    are several) with ``entities`` (``id``, ``entity``, and ``set``): over
    the records of ``entities``; one missing from ``clusters`` is a cluster
    of its own."""
    keys = ["set", "id"] if "set" in clusters.columns and "set" in entities.columns else ["id"]
    # Each known record's cluster, by one dictionary encoding of both sets of record keys in Arrow (pandas'
    # join of object columns took 2.4 s for a million records); a record missing from the clusters, or
    # without a cluster, is a cluster of its own.
    found_keys, true_keys = _record_keys(clusters, keys), _record_keys(entities, keys)
    codes = pc.dictionary_encode(pa.concat_arrays([found_keys, true_keys])).indices.to_numpy()
    found_codes, true_codes = codes[:len(found_keys)], codes[len(found_keys):]
    for what, mine, text in (("clusters", found_codes, found_keys), ("entities", true_codes, true_keys)):
        counts = np.bincount(mine, minlength=1)
        if counts.max() > 1:
            twice = text[int(np.flatnonzero(counts[mine] > 1)[0])].as_py()
            raise ValueError(f"{what}: record {twice.replace(chr(0), ':')!r} appears more than once")
    row_of = np.full(len(codes) and int(codes.max()) + 1, -1, dtype=np.int64)
    row_of[found_codes] = np.arange(len(found_codes))
    at = row_of[true_codes]
    cluster_codes = _codes(clusters["cluster_id"])
    cluster = np.where(at >= 0, cluster_codes[np.maximum(at, 0)], -1)
    lone = cluster < 0
    cluster[~lone] = pd.factorize(cluster[~lone])[0]  # (the clusters of known records alone count)
    cluster[lone] = cluster.max(initial=-1) + 1 + np.arange(int(lone.sum()))
    entity = _codes(entities["entity"])
    width = entity.max(initial=0) + 1
    pairs, n_ij = np.unique(cluster.astype(np.int64) * width + entity, return_counts=True)
    n_ij = n_ij.astype(np.float64)
    a = np.bincount(cluster).astype(np.float64)
    b = np.bincount(entity).astype(np.float64)
    together, found_pairs, true_pairs = _pairs(n_ij), _pairs(a), _pairs(b)
    p = together / found_pairs if found_pairs else 1.0
    r = together / true_pairs if true_pairs else 1.0
    c_of, e_of = pairs // width, pairs % width
    bp = float((n_ij ** 2 / a[c_of]).sum() / len(true_keys))
    br = float((n_ij ** 2 / b[e_of]).sum() / len(true_keys))
    return ClusterQuality(len(true_keys), len(a), len(b), p, r, _f1(p, r), bp, br, _f1(bp, br))


def _text(values: pd.Series) -> pa.Array:
    """A column as Arrow text (missing values null)."""
    try:
        text = pa.array(values, pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # (numbers, or an object column of other things than text)
        text = pa.array(values.astype(str).where(values.notna()), pa.string(), from_pandas=True)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _codes(values: pd.Series) -> np.ndarray:
    """Each value's code (equal values, equal codes; missing ones −1)."""
    return pc.dictionary_encode(_text(values)).indices.fill_null(-1).to_numpy()


def _record_keys(frame: pd.DataFrame, keys: list[str]) -> pa.Array:
    """Each record's key as text (``set`` and ``id`` joined by a NUL when there are sets)."""
    text = _text(frame[keys[-1]])
    return pc.binary_join_element_wise(_text(frame["set"]), text, "\x00") if len(keys) == 2 else text


def cross_product(n_align: int, n_target: int, dedupe: bool = False) -> int:
    """Pairs a blocking chooses from: every align × target pair, or every
    unordered pair of one set when deduplicating it."""
    return n_align * (n_align - 1) // 2 if dedupe else n_align * n_target


def blocking_quality(candidate_pairs: int, true_pairs_kept: int, true_pairs: int, n_align: int,
                     n_target: int, dedupe: bool = False) -> dict:
    """Pair completeness (share of true pairs among the candidates) and
    reduction ratio (1 − candidates / cross product)."""
    return {
        "candidate_pairs": candidate_pairs,
        "pair_completeness": true_pairs_kept / true_pairs if true_pairs else float("nan"),
        "reduction_ratio": 1.0 - candidate_pairs / max(1, cross_product(n_align, n_target, dedupe)),
    }
