"""Quality of links and of a blocking against known true pairs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

__all__ = ["LinkQuality", "blocking_quality", "cross_product", "link_quality"]


def _pairs(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["align_id"].tolist(), frame["target_id"].tolist()))


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


def link_quality(links: pd.DataFrame, truth: pd.DataFrame) -> LinkQuality:
    """Compare ``links`` and ``truth`` (both with ``align_id`` and ``target_id``)."""
    found, true = _pairs(links), _pairs(truth)
    tp = len(found & true)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return LinkQuality(len(found), len(true), tp, precision, recall, f1)


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
