"""Match weights as the matching and the report read them: a distance (1 − the match probability), the
threshold a distance is compared with, the links as written, and the quality a model expects of its
candidates at each threshold (no truth needed), and the values' hashes and counts that term-frequency
weights read. Pure functions of arrays and frames: the learned model (:mod:`bigalign.fellegi_sunter`),
the scoring and the index's stored model read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import JobError
from .values.sets import has_value_sets

__all__ = ["AUTO_THRESHOLD_FLOOR", "THRESHOLD_SLACK_BITS", "best_threshold", "distance_threshold", "distance_weight",
           "match_probability", "quality_curve", "term_counts", "value_hashes", "weight_distance", "weighted_links"]

# The least match probability ``threshold = "auto"`` links at: a link is at least as likely as not.
AUTO_THRESHOLD_FLOOR = 0.5


def weight_distance(weights: np.ndarray) -> np.ndarray:
    """What the matching and the report read of a model's score: 1 − the match
    probability, lower is better, computed as 1 / (1 + 2^w) so that strong
    matches keep their order (1 − p would round them all to 0)."""
    return 1.0 / (1.0 + np.exp2(np.asarray(weights, dtype=np.float64)))


# Links need a match weight at least this far below the threshold's: a pattern whose probability the
# automatic threshold is, computed again for a pair through other roundings, is linked (to 3 decimals,
# the weights the expected quality is counted on, the same evidence).
THRESHOLD_SLACK_BITS = 0.0005


def distance_weight(distance: np.ndarray) -> np.ndarray:
    """The match weight of :func:`weight_distance`'s distances (its inverse, log2(1/d − 1))."""
    with np.errstate(divide="ignore"):
        return np.log2(1.0 / np.asarray(distance, dtype=np.float64) - 1.0)


def distance_threshold(probability: float) -> float:
    """What the matching compares a model's scores with (:func:`weight_distance`, lower is better): that of
    the threshold's match weight, less :data:`THRESHOLD_SLACK_BITS` (1 − p, computed apart, left out the
    very pairs whose probability an automatic threshold is)."""
    with np.errstate(divide="ignore"):
        weight = np.log2(probability) - np.log2(1.0 - probability)
    return float(weight_distance(weight - THRESHOLD_SLACK_BITS))


def weighted_links(links: pd.DataFrame) -> pd.DataFrame:
    """Links scored by a model (``distance``: :func:`weight_distance`) with
    ``match_weight`` and ``match_probability`` in its place."""
    distance = links["distance"].to_numpy(np.float64)
    links = links.drop(columns="distance")
    links.insert(2, "match_weight", distance_weight(distance))
    links.insert(3, "match_probability", 1.0 - distance)
    return links


def match_probability(weights: np.ndarray) -> np.ndarray:
    """2^w / (1 + 2^w) (0 where 2^−w overflows)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp2(-np.asarray(weights, dtype=np.float64)))


def quality_curve(weights: np.ndarray, counts: np.ndarray) -> pd.DataFrame:
    """What a model expects of links at each threshold, without any truth: for each match probability
    its candidates reach (``weights``, each pattern's or value's, standing for ``counts`` pairs), highest
    first, and its match weight, the precision, recall and F1 of linking every candidate at least that
    probable, the expected matches being Σ p over them."""
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-weights, kind="stable")
    probability = match_probability(weights[order])
    expected_true = np.cumsum(counts[order] * probability)
    precision = expected_true / np.maximum(np.cumsum(counts[order]), 1e-300)
    recall = expected_true / max(expected_true[-1] if len(expected_true) else 0.0, 1e-300)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    curve = pd.DataFrame({"match_weight": weights[order], "probability": probability, "precision": precision,
                          "recall": recall, "f1": f1})
    # (patterns of equal weight: one threshold, the last row counts them all)
    return curve.drop_duplicates("match_weight", keep="last").reset_index(drop=True)


def best_threshold(curve: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """The match probability of a :func:`quality_curve` with the best expected F1, and that expectation
    (precision, recall, F1).

    Never below :data:`AUTO_THRESHOLD_FLOOR`: a link is at least as likely as not. Where the F1 peaks
    lower, the model expects almost no match (two sets without common entities, a blocking that finds
    none of them), and the best it can do is to link the few that clear the floor.
    """
    probability = curve["probability"].to_numpy()
    f1 = np.where(probability >= AUTO_THRESHOLD_FLOOR, curve["f1"].to_numpy(), -1.0)
    if not len(f1) or f1.max() < 0:
        return AUTO_THRESHOLD_FLOOR, {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    best = int(np.argmax(f1))
    return float(max(probability[best], AUTO_THRESHOLD_FLOOR)), {k: float(curve[k].iloc[best])
                                                                 for k in ("precision", "recall", "f1")}


def value_hashes(encoded: pd.DataFrame) -> np.ndarray:
    """uint64 hash of each row of a treatment's encoded values: equal values, equal hashes."""
    if has_value_sets(encoded):
        raise JobError("term frequencies weigh the one value two records share; records hold several values "
                       "of this treatment's attribute: set term_frequency = false on it", field="treatments")
    return pd.util.hash_pandas_object(encoded, index=False).to_numpy(np.uint64)


def term_counts(values: Sequence[pd.DataFrame]) -> pd.Series:
    """How many records hold each value (by :func:`value_hashes`), over
    frames of one treatment's encoded values; missing values not counted."""
    hashes = [value_hashes(v)[~v.isna().any(axis=1).to_numpy()] for v in values]
    return pd.Series(np.concatenate(hashes), dtype=np.uint64).value_counts(sort=False)
