"""Quality of links and of a blocking against known true pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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
    found = clusters[keys + ["cluster_id"]].astype({k: str for k in keys})
    truth = entities[keys + ["entity"]].astype({k: str for k in keys})
    both = truth.merge(found, on=keys, how="left", validate="one_to_one")
    cluster = pd.factorize(both["cluster_id"].astype(str).where(both["cluster_id"].notna()))[0]
    lone = cluster < 0
    cluster[lone] = cluster.max(initial=-1) + 1 + np.arange(int(lone.sum()))
    entity = pd.factorize(both["entity"])[0]
    cells = pd.DataFrame({"c": cluster, "e": entity}).value_counts()
    n_ij = cells.to_numpy(np.float64)
    a = np.bincount(cluster).astype(np.float64)
    b = np.bincount(entity).astype(np.float64)
    together, found_pairs, true_pairs = _pairs(n_ij), _pairs(a), _pairs(b)
    p = together / found_pairs if found_pairs else 1.0
    r = together / true_pairs if true_pairs else 1.0
    c_of, e_of = cells.index.get_level_values(0), cells.index.get_level_values(1)
    bp = float((n_ij ** 2 / a[c_of]).sum() / len(both))
    br = float((n_ij ** 2 / b[e_of]).sum() / len(both))
    return ClusterQuality(len(both), len(a), len(b), p, r, _f1(p, r), bp, br, _f1(bp, br))


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
