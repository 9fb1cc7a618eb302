"""What the tasks see of their blocks and pairs, summed for the summary and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..blocking.base import Blocking
from ..scorers import Scorer, WeightedDistance
from ..treatments import Treatment, treatment_pair_distances
from ..values.sets import shown
from ..weights import distance_weight

__all__ = ["AlignmentRun", "BlockStats", "distance_bins", "distance_histogram", "record_for_report"]


# Blocks, and pairs near the threshold, each task keeps for the report.
REPORT_BLOCKS = 10


REPORT_PAIRS = 20


# Bins of the distance histograms: [0, 2 × threshold], the last bin taking everything above.
HISTOGRAM_BINS = 60
# With a learned model and a truth, candidates are also counted by match weight (2 bits a bin, the
# first and last bins taking everything beyond): how many, how many true, how many the model expects.
CALIBRATION_EDGES = np.arange(-24.0, 25.0, 2.0)


@dataclass
class BlockStats:
    """What one task (or, summed, the whole run) saw of its blocks and pairs."""

    blocks: int = 0
    block_pairs: int = 0
    largest_block_pairs: int = 0
    excluded_blocks: int = 0
    excluded_pairs: int = 0
    dense_blocks: int = 0
    candidate_pairs: int = 0
    links_under_threshold: int = 0
    true_pairs_kept: int = 0
    # log2 of block pairs → number of blocks
    block_size_histogram: dict[int, int] = field(default_factory=dict)
    # (pairs, align rows, target rows, slot, an align id, a target id) of the largest blocks;
    # tasks know records by id hash, the run puts the ids in
    largest_blocks: list[tuple] = field(default_factory=list)
    # distance histograms of scored candidates: "all", and "true"/"false" with a truth
    distance_histograms: dict[str, np.ndarray] = field(default_factory=dict)
    # candidates nearest the threshold, with per-treatment distances
    near_threshold: pd.DataFrame | None = None
    # (key, pairs) of the blocks set aside to be paired by several tasks
    split_blocks: list[tuple[int, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The statistics as JSON data (``near_threshold`` apart: a frame)."""
        data = {k: v for k, v in vars(self).items() if k != "near_threshold"}
        data["block_size_histogram"] = [[int(k), int(v)] for k, v in self.block_size_histogram.items()]
        data["distance_histograms"] = {k: np.asarray(v).tolist() for k, v in self.distance_histograms.items()}
        data["largest_blocks"] = [[v.item() if isinstance(v, np.generic) else v for v in b]
                                  for b in self.largest_blocks]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "BlockStats":
        stats = cls(**{k: v for k, v in data.items() if k not in ("block_size_histogram", "distance_histograms",
                                                                  "largest_blocks", "split_blocks")})
        stats.block_size_histogram = {int(k): int(v) for k, v in data["block_size_histogram"]}
        stats.distance_histograms = {k: np.array(v) for k, v in data["distance_histograms"].items()}
        stats.largest_blocks = [tuple(b) for b in data["largest_blocks"]]
        stats.split_blocks = [tuple(b) for b in data["split_blocks"]]
        return stats

    def __add__(self, other: "BlockStats") -> "BlockStats":
        counts = ("blocks", "block_pairs", "excluded_blocks", "excluded_pairs", "dense_blocks", "candidate_pairs",
                  "links_under_threshold", "true_pairs_kept")
        total = BlockStats(**{k: getattr(self, k) + getattr(other, k) for k in counts})
        total.largest_block_pairs = max(self.largest_block_pairs, other.largest_block_pairs)
        total.block_size_histogram = dict(self.block_size_histogram)
        for k, v in other.block_size_histogram.items():
            total.block_size_histogram[k] = total.block_size_histogram.get(k, 0) + v
        total.largest_blocks = sorted(self.largest_blocks + other.largest_blocks, key=lambda b: (-b[0], b[3], b[4]))
        total.largest_blocks = total.largest_blocks[:REPORT_BLOCKS]
        total.split_blocks = self.split_blocks + other.split_blocks
        total.distance_histograms = {
            k: np.asarray(self.distance_histograms.get(k, 0)) + np.asarray(other.distance_histograms.get(k, 0))
            for k in set(self.distance_histograms) | set(other.distance_histograms)}
        samples = [f for f in (self.near_threshold, other.near_threshold) if f is not None and len(f)]
        total.near_threshold = pd.concat(samples, ignore_index=True) if samples else None
        return total


@dataclass
class AlignmentRun:
    """Links of a run and what was seen on the way."""

    links: pd.DataFrame
    stats: BlockStats
    seconds: dict[str, float] = field(default_factory=dict)
    shuffle_partitions: int = 0
    # with uniq: the distance of each align record's best candidate when over the threshold
    best_rejected: np.ndarray | None = None
    # the scorer as fitted: its threshold_ (as the user reads it) and distance_threshold_ (on ``distance``)
    scorer: Scorer = field(default_factory=WeightedDistance)
    # the blocking as the run used it (fitted: k-means centroids), None: the job's as given
    blocking: Blocking | None = None


def distance_bins(threshold: float) -> np.ndarray:
    """Edges of the distance histograms of a run."""
    top = 2 * threshold if np.isfinite(threshold) and threshold > 0 else 1.0
    return np.linspace(0.0, top, HISTOGRAM_BINS + 1)


def distance_histogram(distances: np.ndarray, threshold: float) -> np.ndarray:
    """Counts of distances over :func:`distance_bins`; the last bin takes everything above."""
    edges = distance_bins(threshold)
    clipped = np.minimum(np.asarray(distances, dtype=np.float64), edges[-1] - 1e-12 * edges[-1])
    return np.histogram(clipped, bins=edges)[0]


def _shown(values: pd.DataFrame) -> list[str]:
    """Each row's values as one text (rows as arrays: a Series per row costs a task ~50 ms)."""
    return [", ".join(shown(v) for v in row) for row in values.to_numpy(dtype=object)]


def _count_calibration(stats: BlockStats, distance: np.ndarray, true: np.ndarray, threshold: float) -> None:
    """A learned model's candidates against the truth (see :data:`CALIBRATION_EDGES`), and those it links:
    ``"calibration: linked"`` is [pairs, true, expected] of the pairs at the threshold or under."""
    probability = 1.0 - distance
    bins = len(CALIBRATION_EDGES) - 1
    at = np.clip(np.searchsorted(CALIBRATION_EDGES, distance_weight(distance), "right") - 1, 0, bins - 1)
    linked = distance <= threshold
    for name, counts in (("pairs", np.bincount(at, minlength=bins)),
                         ("true", np.bincount(at, weights=true.astype(np.float64), minlength=bins)),
                         ("expected", np.bincount(at, weights=probability, minlength=bins)),
                         ("linked", np.array([linked.sum(), true[linked].sum(), probability[linked].sum()]))):
        key = f"calibration: {name}"
        stats.distance_histograms[key] = stats.distance_histograms.get(key, 0) + counts


def record_for_report(stats: BlockStats, treatments: Sequence[Treatment], encoded_a: list, encoded_b: list,
                       ra: np.ndarray, rb: np.ndarray, distance: np.ndarray, threshold: float,
                       align_ids: pd.Series, target_ids: pd.Series, true: np.ndarray | None,
                       scorer: Scorer) -> None:
    """Add pairs' distances to the histograms and keep those nearest the
    threshold, with their values and per-treatment distances (with a
    learned ``scorer``: weights too, the report's waterfalls)."""
    groups = {"all": np.ones(len(distance), dtype=bool)}
    if true is not None:
        groups.update({"true": true, "false": ~true})
    for name, mask in groups.items():
        counts = distance_histogram(distance[mask], threshold)
        stats.distance_histograms[name] = stats.distance_histograms.get(name, 0) + counts
    if true is not None and scorer.learns:
        _count_calibration(stats, distance, true, threshold)
    if not np.isfinite(threshold):
        return
    gap = np.abs(distance - threshold)
    within = np.arange(len(gap))
    if len(gap) > REPORT_PAIRS:  # (a partial sort, then the few in order: as a stable sort of all would give)
        kth = np.partition(gap, REPORT_PAIRS - 1)[REPORT_PAIRS - 1]
        within = within if np.isnan(kth) else np.flatnonzero(gap <= kth)
    nearest = within[np.argsort(gap[within], kind="stable")][:REPORT_PAIRS]
    sample = {"align_id": align_ids.take(ra[nearest]).to_numpy(), "target_id": target_ids.take(rb[nearest]).to_numpy(),
              "distance": distance[nearest]}
    # The sampled pairs' records alone: a metric prepares every record it is given (words, lengths...).
    values_a = [e.iloc[ra[nearest]].reset_index(drop=True) for e in encoded_a]
    values_b = [e.iloc[rb[nearest]].reset_index(drop=True) for e in encoded_b]
    each = treatment_pair_distances(treatments, values_a, values_b)
    weighted = scorer.report_weights(each, scorer.term_hashes(values_a))
    if weighted is not None:  # (a learned model: the prior's weight, then its comparisons')
        sample["prior_weight"] = np.full(len(nearest), weighted[0])
        for c, term in enumerate(weighted[2]):
            sample[f"{c}: {term} weight"] = weighted[1][:, c]
    for i, t in enumerate(treatments):
        name = f"{i}: {t}"
        sample[f"{name} distance"] = t.weight * each[:, i]  # (weighted, as the global distance adds it)
        sample[f"{name} values"] = [f"{x} | {y}" for x, y in zip(_shown(values_a[i]), _shown(values_b[i]))]
    frame = pd.DataFrame(sample)
    stats.near_threshold = frame if stats.near_threshold is None else pd.concat([stats.near_threshold, frame])
